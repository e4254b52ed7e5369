"""CSV files to arrays: reading, column roles, one-hot maps, scaling, label maps, splits.

Everything learnt from the training rows (statistics, category lists, the label map, column
order) lives in a Preprocessor that turns into plain arrays for the model file, so `predict`
on a raw CSV reproduces exactly what training saw.
"""
import csv
import hashlib
import os
import warnings

import numpy as np
import pandas as pd

from .errors import DataError

NUMERIC, BOOLEAN, CATEGORICAL = 0, 1, 2
ROLE_NAMES = {NUMERIC: "numeric", BOOLEAN: "boolean", CATEGORICAL: "categorical"}
MISSING_LEVEL = "<missing>"
# an integer target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 50


def _engine():
    try:
        import pyarrow  # noqa: F401
        return "pyarrow"
    except ImportError:
        return "c"


def _check_readable(path):
    name = os.fspath(path)
    if not os.path.exists(name):
        raise DataError(f"{name}: file not found")
    if os.path.isdir(name):
        raise DataError(f"{name}: is a folder, not a CSV file")
    if not os.access(name, os.R_OK):
        raise DataError(f"{name}: permission denied")
    with open(name, "rb") as f:
        head = f.read(8192)
    if not head.strip():
        raise DataError(f"{name}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{name}: not a text CSV file (it holds binary data)")


def read_csv(path, sep=",", encoding="utf-8", chunksize=None):
    """A DataFrame (or an iterator of them with chunksize), with pandas' errors turned into
    one-line DataErrors that name the file and, for ragged rows, the line."""
    name = os.fspath(path)
    _check_readable(name)
    kw = dict(sep=sep, encoding=encoding)
    if chunksize is None and sep == "," and encoding.lower().replace("-", "") == "utf8":
        kw["engine"] = _engine()
    try:
        if chunksize is not None:
            return _chunks(name, pd.read_csv(name, chunksize=chunksize, **kw))
        df = pd.read_csv(name, **kw)
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: cannot be decoded as {encoding} ({exc.reason} at byte "
                        f"{exc.start}); pass --encoding") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{name}: {_ragged_message(name, sep, encoding) or _one_line(exc)}") from None
    _check_frame(df, name)
    return df


def _chunks(name, reader):
    try:
        for df in reader:
            yield df
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: cannot be decoded ({exc.reason}); pass --encoding") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{name}: {_one_line(exc)}") from None


def _check_frame(df, name):
    if df.shape[1] == 0:
        raise DataError(f"{name}: no columns found")
    if len(df) == 0:
        raise DataError(f"{name}: has a header but no data rows")
    dupes = df.columns[df.columns.duplicated()].tolist()
    if dupes:
        raise DataError(f"{name}: duplicate column names {dupes}")


def _ragged_message(name, sep, encoding):
    """'line N has K fields, the header has H' for the first ragged line, if any."""
    try:
        with open(name, newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=sep)
            header = next(reader, None)
            if header is None:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    return (f"line {reader.line_num} has {len(row)} fields, the header has "
                            f"{len(header)}")
    except (UnicodeDecodeError, csv.Error):
        return None
    return None


def _one_line(exc):
    return " ".join(str(exc).split())


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def infer_task(y):
    """('classification' | 'regression', reason) from a target column."""
    values = y.dropna()
    if values.dtype.kind in "biu" or (values.dtype.kind == "f" and (values == values.round()).all()):
        n = values.nunique()
        if values.dtype.kind == "b" or n <= MAX_INFERRED_CLASSES:
            return "classification", f"{n} distinct integer values"
        return "regression", f"{n} distinct numeric values"
    if values.dtype.kind == "f":
        return "regression", "non-integer numbers"
    return "classification", f"{values.nunique()} text labels"


def split(n, fraction, seed, strata=None):
    """(train_index, val_index): a seeded split, stratified by `strata` when given."""
    n_val = int(np.ceil(fraction * n))
    if n_val < 1 or n - n_val < 2:
        raise DataError(f"{n} rows are too few to hold out --val-fraction {fraction:g} "
                        "(need at least 1 validation row and 2 training rows)")
    rng = np.random.RandomState(seed)
    if strata is None:
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    codes = pd.factorize(np.asarray(strata))[0]
    order = rng.permutation(n)
    by_class = order[np.argsort(codes[order], kind="stable")]
    counts = np.bincount(codes)
    share = counts * n_val / n
    take = np.floor(share).astype(int)
    take[np.argsort(-(share - take), kind="stable")[: n_val - take.sum()]] += 1
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    val = np.concatenate([by_class[s: s + t] for s, t in zip(starts, take)])
    mask = np.zeros(n, bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


class Preprocessor:
    """Fitted column transforms: standardised numbers, 0/1 booleans, one-hot categories."""

    def __init__(self, columns, roles, center, scale, fill, categories, target, task, classes):
        self.columns = list(columns)
        self.roles = list(roles)
        self.center = np.asarray(center, np.float64)
        self.scale = np.asarray(scale, np.float64)
        self.fill = np.asarray(fill, np.float64)
        self.categories = [list(c) for c in categories]   # per column; [] unless categorical
        self.target = target
        self.task = task
        self.classes = classes                             # None for regression

    @property
    def n_features(self):
        return sum(len(c) if r == CATEGORICAL else 1 for r, c in zip(self.roles, self.categories))

    @classmethod
    def fit(cls, frame, target, task, categorical=(), on_missing="impute", name="data"):
        """Learn the transforms from the training rows of `frame` (features and target)."""
        roles, center, scale, fill, cats = [], [], [], [], []
        columns = [c for c in frame.columns if c != target]
        for col in columns:
            s = frame[col]
            where = f"{name}: column {col!r}"
            if s.isna().all():
                raise DataError(f"{where} is entirely empty; drop it with --drop {col!r}")
            if on_missing == "error" and s.isna().any():
                raise DataError(f"{where} has {int(s.isna().sum())} missing values, first at "
                                f"row {first_row(s.isna())}; fill them or drop --on-missing error")
            if col in categorical or _is_text(s):
                if col not in categorical:
                    _refuse_mostly_numeric(s, where)
                levels = sorted(set(_as_text(s.dropna())))
                if s.isna().any():
                    levels.append(MISSING_LEVEL)
                roles.append(CATEGORICAL)
                cats.append(levels)
                center.append(0.0)
                scale.append(1.0)
                fill.append(0.0)
                continue
            cats.append([])
            if s.dtype.kind == "b" or str(s.dtype) == "boolean":
                roles.append(BOOLEAN)
                center.append(0.0)
                scale.append(1.0)
                fill.append(0.0)
                continue
            v = s.to_numpy(np.float64, na_value=np.nan)
            _refuse_infinite(v, where, s.index)
            roles.append(NUMERIC)
            finite = v[~np.isnan(v)]
            mu, sd = finite.mean(), finite.std()
            center.append(mu)
            scale.append(sd if sd > 0 else 1.0)
            fill.append(np.median(finite))
        classes = None
        if task == "classification":
            classes = np.unique(_labels(frame[target]))
        return cls(columns, roles, center, scale, fill, cats, target, task, classes)

    def transform(self, frame, name="data", on_missing="impute"):
        """float32 feature matrix (rows, n_features) for the columns learnt at fit time."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name}: missing column(s) {missing}, which the model was trained "
                            f"on; columns present: {list(frame.columns)}")
        n = len(frame)
        out = np.zeros((n, self.n_features), np.float32)
        j = 0
        for col, role, mu, sd, med, levels in zip(self.columns, self.roles, self.center,
                                                  self.scale, self.fill, self.categories):
            s = frame[col]
            where = f"{name}: column {col!r}"
            if on_missing == "error" and s.isna().any():
                raise DataError(f"{where} has {int(s.isna().sum())} missing values, first at "
                                f"row {first_row(s.isna())}")
            if role == CATEGORICAL:
                text = np.where(s.isna().to_numpy(), MISSING_LEVEL,
                                np.asarray(_as_text(s.fillna("")), dtype=object))
                index = {v: k for k, v in enumerate(levels)}
                codes = np.array([index.get(v, -1) for v in text], np.int64)
                unseen = codes < 0
                if unseen.any():
                    warnings.warn(f"{where}: {int(unseen.sum())} value(s) not seen in training "
                                  f"(first {text[np.argmax(unseen)]!r}) are encoded as all zeros",
                                  UserWarning, stacklevel=2)
                rows = np.flatnonzero(~unseen)
                out[rows, j + codes[rows]] = 1.0
                j += len(levels)
                continue
            if role == BOOLEAN:
                v = _to_numbers(s, where)
            else:
                v = _to_numbers(s, where)
                _refuse_infinite(v, where, s.index)
            v = np.where(np.isnan(v), med, v)
            out[:, j] = (v - mu) / sd if role == NUMERIC else v
            j += 1
        return out

    def encode_target(self, series, name="data"):
        """Class indices (int64) or float targets for a target column."""
        if series.isna().any():
            raise DataError(f"{name}: target column {self.target!r} has {int(series.isna().sum())} "
                            f"missing values, first at row {first_row(series.isna())}")
        if self.task == "regression":
            v = _to_numbers(series, f"{name}: target column {self.target!r}")
            _refuse_infinite(v, f"{name}: target column {self.target!r}", series.index)
            return v
        labels = _labels(series)
        idx = np.searchsorted(self.classes, labels)
        idx = np.clip(idx, 0, len(self.classes) - 1)
        bad = self.classes[idx] != labels
        if bad.any():
            raise DataError(f"{name}: target column {self.target!r} has label "
                            f"{labels[np.argmax(bad)]!r} (row {int(np.argmax(bad)) + 2}) that "
                            "the model was not trained on")
        return idx

    # ---- plain arrays for the model file (no pickle)

    def to_arrays(self):
        flat = [v for levels in self.categories for v in levels]
        offsets = np.cumsum([0] + [len(c) for c in self.categories])
        out = {"columns": np.array(self.columns, dtype=str), "roles": np.array(self.roles, np.int64),
               "center": self.center, "scale": self.scale, "fill": self.fill,
               "cat_values": np.array(flat, dtype=str), "cat_offsets": offsets.astype(np.int64),
               "target": np.array(self.target), "task": np.array(self.task)}
        if self.classes is not None:
            out["classes"] = self.classes
        return out

    @classmethod
    def from_arrays(cls, a):
        offsets = a["cat_offsets"]
        values = a["cat_values"].tolist()
        cats = [values[offsets[k]: offsets[k + 1]] for k in range(len(offsets) - 1)]
        return cls(a["columns"].tolist(), a["roles"].tolist(), a["center"], a["scale"],
                   a["fill"], cats, str(a["target"]), str(a["task"]),
                   a["classes"] if "classes" in a else None)

    def describe(self):
        counts = {name: self.roles.count(role) for role, name in ROLE_NAMES.items()}
        return ", ".join(f"{v} {k}" for k, v in counts.items() if v)


def _is_text(s):
    return s.dtype.kind in "OSU" or str(s.dtype) in ("category", "string", "str")


def _as_text(s):
    return [str(v) for v in s]


def _labels(series):
    """Class labels as a sortable array: numbers stay numbers, everything else becomes text."""
    if series.dtype.kind in "biuf":
        return series.to_numpy()
    return np.array(_as_text(series), dtype=str)


def first_row(mask, index=None):
    """1-based data row number in the file (the header is line 1, so this is line - 1) of the
    first true entry; rows keep their file position in the frame's index through splits."""
    if index is None:
        index = getattr(mask, "index", None)
    k = int(np.argmax(np.asarray(mask)))
    if index is not None and np.issubdtype(np.asarray(index).dtype, np.integer):
        return int(index[k]) + 1
    return k + 1


def _to_numbers(s, where):
    if s.dtype.kind in "biuf":
        return s.to_numpy(np.float64, na_value=np.nan)
    v = pd.to_numeric(s, errors="coerce")
    bad = v.isna() & s.notna()
    if bad.any():
        raise DataError(f"{where} has {int(bad.sum())} non-numeric values, first at row "
                        f"{first_row(bad)}: {s[bad].iloc[0]!r}")
    return v.to_numpy(np.float64, na_value=np.nan)


def _refuse_mostly_numeric(s, where):
    """A text column whose values are nearly all numbers is a typo, not a category."""
    present = s.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    bad = numbers.isna()
    if len(present) >= 20 and 0 < bad.sum() <= 0.05 * len(present):
        first = present[bad].iloc[0]
        raise DataError(f"{where} has {int(bad.sum())} non-numeric values, first at row "
                        f"{first_row(s.notna() & pd.to_numeric(s, errors='coerce').isna())}: "
                        f"{first!r}; fix them, or pass --categorical {s.name!r} if the column "
                        "is categorical")


def _refuse_infinite(v, where, index=None):
    inf = np.isinf(v)
    if inf.any():
        raise DataError(f"{where} has an infinite value at row {first_row(inf, index)}")


def bundled_dataset(filename):
    """Path of a CSV shipped in datasets/ (a checkout) or installed as mlpfast.datasets."""
    import pathlib
    here = pathlib.Path(__file__).resolve().parent
    candidate = here.parent / "datasets" / filename
    if candidate.exists():
        return candidate
    try:
        from importlib import resources
        path = resources.files("mlpfast.datasets") / filename
        if path.is_file():
            return pathlib.Path(str(path))
    except (ImportError, ModuleNotFoundError, TypeError):
        pass
    raise DataError(f"the bundled dataset {filename} is not installed; pass a CSV file")
