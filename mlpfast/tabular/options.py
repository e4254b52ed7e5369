"""`train`'s options by their command-line names (`--hidden`, `--lr`, `--epochs` ...): their
defaults, the keywords of mlpfast.tabular.train they become, and their checking and conversion
from TOML or JSON values, for the places that take options as data (sweep specs).

The command line (`mlpfast train`) takes its defaults from DEFAULTS, so that a trial of a sweep
with the same options is the same run as `mlpfast train` with them.
"""
import math

from ..errors import DataError

# option (as in the spec files: the command-line name with '_' or '-') -> default
DEFAULTS = {
    "target": None, "features": None, "drop": None, "categorical": None, "task": None,
    "val_fraction": 0.1, "val": None, "test": None, "on_missing": "impute", "na_values": None,
    "default_na": True, "max_categories": 100, "scale_target": True, "sample_weight": None,
    "class_weight": None, "sep": None, "encoding": "utf-8", "decimal": ".", "thousands": None,
    "hidden": "128", "activation": "relu", "optimizer": "adam", "lr": 1e-3, "batch_size": "auto",
    "epochs": 50, "momentum": 0.9, "alpha": 1e-4, "dropout": 0.0, "early_stopping": False,
    "patience": 10, "seed": 0, "device": "cpu", "dtype": "float32",
}

# option -> mlpfast.tabular.train's keyword (the CSV format options become csv=CSVFormat)
LIBRARY_NAMES = {
    "target": "target", "features": "features", "drop": "drop", "categorical": "categorical",
    "task": "task", "val_fraction": "val_fraction", "val": "val", "test": "test",
    "on_missing": "on_missing", "na_values": "na_values", "default_na": "default_na",
    "max_categories": "max_categories", "scale_target": "scale_target", "sep": "sep",
    "encoding": "encoding", "decimal": "decimal", "thousands": "thousands", "seed": "seed",
    "hidden": "hidden_layer_sizes", "activation": "activation", "optimizer": "solver",
    "lr": "learning_rate_init", "batch_size": "batch_size", "epochs": "max_iter",
    "momentum": "momentum", "alpha": "alpha", "dropout": "dropout",
    "early_stopping": "early_stopping", "patience": "n_iter_no_change", "device": "device",
    "dtype": "dtype", "sample_weight": "sample_weight", "class_weight": "class_weight"}

# options that name files: relative paths are taken from the spec file's folder
FILE_OPTIONS = ("val", "test")


def canonical(name):
    """An option's name as DEFAULTS keys it ('val-fraction', '--lr' -> 'val_fraction', 'lr')."""
    return str(name).lstrip("-").replace("-", "_")


def library_options(values, where="options"):
    """tabular.train's keywords for a dict of options by their command-line names (DEFAULTS
    for those not given), each checked as `mlpfast train` checks it. Values may be TOML/JSON
    types or the command line's text ('128,64', 'auto', 'A=2,B=1'). Raises DataError naming
    `where`, the option and the value, for an unknown option or a value it cannot take."""
    from ..registry import ACTIVATIONS, DEVICES, DTYPES, SOLVERS
    from .reader import CSVFormat
    opts = dict(DEFAULTS)
    for key, value in values.items():
        name = canonical(key)
        if name not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise DataError(f"{where}: unknown option {key!r}; the options are {known}")
        opts[name] = value

    def bad(name, expected):
        return DataError(f"{where}: {name} = {opts[name]!r} is not {expected}")

    def number(name, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
        v = opts[name]
        kind = "a whole number" if integer else "a number"
        if isinstance(v, bool):
            raise bad(name, kind)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise bad(name, kind) from None
        if integer and math.isfinite(v) and v != int(v):
            raise bad(name, kind)
        if not math.isfinite(v) or (lo is not None and (v < lo or (lo_open and v == lo))) or (
                hi is not None and (v > hi or (hi_open and v == hi))):
            rng = ("" if lo is None else (">" if lo_open else ">=") + f" {lo}") + \
                  ("" if hi is None else (" and " if lo is not None else "") +
                   ("<" if hi_open else "<=") + f" {hi}")
            raise bad(name, f"a finite number {rng}".strip())
        return int(v) if integer else float(v)

    def choice(name, allowed):
        if opts[name] not in allowed:
            raise bad(name, "one of " + ", ".join(map(str, allowed)))
        return opts[name]

    def flag(name):
        v = opts[name]
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        raise bad(name, "true or false")

    def names(name):
        v = opts[name]
        if v is None:
            return None
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        if isinstance(v, (list, tuple)):
            return [str(s) for s in v]
        raise bad(name, "a list of column names (or one comma-separated text)")

    def text(name):
        v = opts[name]
        if v is not None and not isinstance(v, str):
            raise bad(name, "a text")
        return v

    out = {
        "target": text("target"), "features": names("features"), "drop": names("drop"),
        "categorical": names("categorical") or (), "task": None if opts["task"] is None else
        choice("task", ("classification", "regression")),
        "val_fraction": number("val_fraction", 0, 1, hi_open=True),
        "val": text("val"), "test": text("test"),
        "on_missing": choice("on_missing", ("impute", "error")),
        "na_values": names("na_values") or (), "default_na": flag("default_na"),
        "max_categories": number("max_categories", 1, integer=True),
        "scale_target": flag("scale_target"), "seed": number("seed", integer=True),
        "hidden_layer_sizes": _hidden(opts["hidden"], bad),
        "activation": choice("activation", list(ACTIVATIONS)),
        "solver": choice("optimizer", list(SOLVERS)),
        "learning_rate_init": number("lr", 0, lo_open=True),
        "batch_size": _batch_size(opts["batch_size"], bad),
        "max_iter": number("epochs", 1, integer=True),
        "momentum": number("momentum", 0, 1), "alpha": number("alpha", 0),
        "dropout": number("dropout", 0, 1, hi_open=True),
        "early_stopping": flag("early_stopping"),
        "n_iter_no_change": number("patience", 1, integer=True),
        "device": choice("device", list(DEVICES)), "dtype": choice("dtype", list(DTYPES)),
        "sample_weight": text("sample_weight"),
        "class_weight": _class_weight(opts["class_weight"], bad),
    }
    # as the command line: tol 0 (every epoch counts) unless early stopping asks for one
    out["tol"] = 1e-4 if out["early_stopping"] else 0.0
    for key in ("sep", "encoding", "decimal", "thousands"):
        text(key)
    out["csv"] = CSVFormat(opts["sep"], opts["encoding"], opts["decimal"], opts["thousands"])
    return out


def _hidden(value, bad):
    if isinstance(value, int) and not isinstance(value, bool):
        sizes = (value,)
    else:
        try:
            items = value.split(",") if isinstance(value, str) else list(value)
            sizes = tuple(int(str(v).strip()) for v in items if str(v).strip())
        except (TypeError, ValueError):
            raise bad("hidden", "a comma-separated list of layer widths such as '128,64'") from None
    if any(s < 1 for s in sizes):
        raise bad("hidden", "a list of layer widths of at least 1")
    return sizes


def _batch_size(value, bad):
    if value is None or str(value).strip() == "auto":
        return "auto"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise bad("batch_size", "'auto' or a whole number") from None
    if isinstance(value, bool) or n < 1 or n != float(value):
        raise bad("batch_size", "'auto' or a whole number of at least 1")
    return n


def _class_weight(value, bad):
    """'balanced', 'A=2,B=1' or a table {A = 2, B = 1} -> what tabular.train takes (the
    labels are matched to the classes, and the weights checked, by train)."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise bad("class_weight", "'balanced' or label=weight pairs such as 'A=2,B=1'")
    if value.strip().lower() == "balanced":
        return "balanced"
    out = {}
    for item in value.split(","):
        if not item.strip():
            continue
        label, eq, weight = item.rpartition("=")
        try:
            out[label.strip()] = float(weight)
        except ValueError:
            raise bad("class_weight", "'balanced' or label=weight pairs such as 'A=2,B=1'") from None
        if not eq or not label.strip():
            raise bad("class_weight", "'balanced' or label=weight pairs such as 'A=2,B=1'")
    return out
