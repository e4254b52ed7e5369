"""ONNX export: a trained model and its whole input pipeline as one ONNX graph.

    import mlpfast
    proto = mlpfast.to_onnx(mlpfast.load("runs/adult"))   # an onnx.ModelProto
    mlpfast.export.write_onnx(run, "model.onnx")           # or `mlpfast export RUN --onnx FILE`

A Run (mlpfast.load, tabular.train) exports with its stored schema: the graph takes the raw
columns, one input per feature column named as the column, shape [N, 1]:

- numeric: float32, the value; NaN when missing (a numeric --na-values marker such as -999 is
  also recognised by value, compared in float32);
- boolean: float32, 1 for true, 0 for false; NaN when missing;
- date-time: float64 (double), seconds since 1970-01-01 UTC (a field without a zone is UTC, as
  training read it); NaN when missing. float32 would round today's timestamps to 2 minutes;
- categorical: string, the field's text as the file holds it. The graph canonicalises it as
  mlpfast does: surrounding blanks stripped (the 29 Unicode whitespace characters pyarrow
  strips), the missing-value markers ('' and pandas' default markers unless the model was
  trained with --no-default-na, plus --na-values; numeric markers also by value), numeric
  levels (a number column forced with --categorical) matched by value, so '101', ' 101.0' and
  '1.01e2' are one level; a value training did not see encodes as all zeros.

It imputes, standardises (the two float steps of mlpfast.tabular.schema, in float64 with the
same roundings to the model's dtype), one-hot encodes, runs the network and its output
activation, and gives:

- classification: `label` [N] (the classes as the schema stores them: strings, or int64 when
  every class is a whole number, else float64) and `probabilities` [N, n_classes] float64 in
  the order of the model's classes (binary models: [1 - p, p] of their one logistic output);
- regression: `value` [N] float64 in the target's own units (the standardised target mapped
  back in the graph).

What the graph cannot see: text read into numbers (numeric, boolean and date-time inputs are
parsed by the client, which writes NaN for every missing value, text markers such as '?'
included) and mlpfast's refusals (a non-number, an infinite value, a value too far outside the
training range: the graph computes with whatever it is given). In category text, numbers are
matched by value when written as a plain decimal number with at most 40 digits either side of
the point and an exponent of at most two digits (or inf / nan), preceded by ASCII blanks only;
any other spelling reads as text there (mlpfast reads any number; this matters only for levels
beyond 1e99 or a no-break space before a number). Models whose category columns need numbers
by value (numeric levels, numeric --na-values markers) and that read files with
--decimal ',' or --thousands are refused: the graph reads numbers with a '.' only, and would
encode such a field unlike mlpfast without saying so.

A fitted MLPClassifier / MLPRegressor alone (no schema) exports with one input 'X'
[N, n_features] in the network's dtype (float32 unless trained with dtype='float64') and the
outputs `label` [N] (the estimator's classes_; multilabel: [N, n_labels] int64 0/1) and
`probabilities` [N, n_classes] float64, or `value` ([N], or [N, n_outputs] for a 2-D y) in the
network's dtype.

The graph uses the standard ai.onnx domain only: opset 20 when it takes string columns
(RegexFullMatch; onnxruntime 1.17 or newer), else opset 17. It needs the `onnx` package
(`pip install 'mlpfast[onnx]'`, which brings onnxruntime to serve it).
"""
import json
import os

import numpy as np

from ._version import __version__
from .errors import MLPFastError

OUTPUTS_CLASSIFIER = ("label", "probabilities")
OUTPUTS_REGRESSOR = ("value",)
OPSET_STRINGS = 20   # RegexFullMatch, for category text
OPSET_NUMBERS = 17
# the characters pyarrow's utf8_trim_whitespace strips (and Python's str.strip): mlpfast strips
# every field with it before matching categories and markers
WHITESPACE = ("\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", " ", "\x85",
              "\xa0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005",
              "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f",
              "\u205f", "\u3000")
# a number that the graph's Cast (strtod) reads whole and within range: it skips C's blanks
# before a number and stops at the first character after it
_C_SPACE = "[\\t\\n\\x0b\\x0c\\r ]*"
_NUMBER = (r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,2})?"
           r"|[+-]?(?i:inf|infinity|nan)")


class ExportError(MLPFastError, ValueError):
    """A model cannot be exported as asked (a column the graph cannot encode as mlpfast does,
    a name taken, a file that would be overwritten)."""


class MissingExtraError(MLPFastError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingExtraError("ONNX export needs the onnx package: pip install "
                                "'mlpfast[onnx]'") from None
    return onnx


def to_onnx(model):
    """The ONNX graph (an onnx.ModelProto) of a Run or of a fitted MLPClassifier /
    MLPRegressor, as the module docstring describes: a Run's graph takes the raw feature
    columns (one [N, 1] input each: float32 numeric and boolean, float64 date-time, string
    categorical) and gives `label` [N] and `probabilities` [N, n_classes] float64, or `value`
    [N] float64; an estimator's takes 'X' [N, n_features] in its dtype.

    Raises MissingExtraError without the onnx package, NotFittedError for an unfitted
    estimator, and ExportError for a model the graph cannot reproduce (a feature column named
    as an output; numbers in category text read with --decimal ',' or --thousands) or an
    object that is no model."""
    onnx = _onnx()
    from .estimators import MLPClassifier, MLPRegressor
    from .tabular.run import Run
    if isinstance(model, Run):
        est, schema = model.estimator, model.schema
    elif isinstance(model, (MLPClassifier, MLPRegressor)):
        est, schema = model, None
    else:
        raise ExportError(f"to_onnx takes a Run (mlpfast.load) or a fitted MLPClassifier / "
                          f"MLPRegressor, not {type(model).__name__}")
    est._check_fitted()
    g = _Graph(onnx, [c.name for c in schema.columns] if schema is not None else ["X"])
    dtype = np.dtype(est._theta.dtype)
    if schema is not None:
        _check_schema(schema)
        X = _features(g, schema, dtype)
    else:
        X = g.input("X", dtype, ["N", est.n_features_in_],
                    f"the {est.n_features_in_} features, {dtype} (as fit took X)")
    Z = _network(g, est, X, dtype)
    if isinstance(est, MLPClassifier):
        _classifier_outputs(g, est, schema, Z)
    else:
        _regressor_outputs(g, est, schema, Z, dtype)
    opset = OPSET_STRINGS if g.strings else OPSET_NUMBERS
    graph = onnx.helper.make_graph(g.nodes, "mlpfast", g.inputs, g.outputs, g.inits,
                                   doc_string=_describe(est, schema))
    ops = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=ops, producer_name="mlpfast",
                                   producer_version=__version__,
                                   ir_version=onnx.helper.find_min_ir_version_for(ops))
    meta = {"mlpfast.version": __version__, "mlpfast.task": _task(est),
            "mlpfast.inputs": json.dumps(g.contract)}
    if schema is not None:
        meta["mlpfast.target"] = schema.target
        meta["mlpfast.na_values"] = json.dumps(list(schema.missing.markers))
    onnx.helper.set_model_props(proto, meta)
    return proto


def write_onnx(model, path, force=False):
    """Write to_onnx(model) to `path`: to a temporary file beside it, renamed into place when
    complete (mlpfast.model_io.replace_with), so a reader never sees half a file. An existing
    file is replaced only with force; a folder, or the model's own file, never. Returns the
    ModelProto. Raises ExportError for those refusals and when the file cannot be written,
    and what to_onnx raises."""
    from .model_io import replace_with
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ExportError(f"{path} is a folder; name the .onnx file to write")
    folder = getattr(model, "folder", None)
    own = os.path.join(folder, "model.npz") if folder else None
    if os.path.exists(path):
        if own and os.path.exists(own) and os.path.samefile(path, own):
            raise ExportError(f"{path} is the model file itself; write the ONNX file elsewhere")
        # the run folder's own files (run.json, metrics.csv, checkpoint.npz, ...) are never
        # replaced, even with --force; an .onnx file there is
        real = os.path.realpath(path)
        if folder and os.path.dirname(real) == os.path.realpath(folder) and \
                not real.endswith(".onnx"):
            raise ExportError(f"{path} is a file of the run folder {folder}; write the ONNX "
                              "file elsewhere (or name it .onnx)")
        if not force:
            raise ExportError(f"{path} already exists; pass --force to replace it")
    proto = to_onnx(model)
    data = proto.SerializeToString()
    try:
        with replace_with(os.path.realpath(path)) as f:
            f.write(data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return proto


# ---- the graph

class _Graph:
    """Nodes, initializers, inputs and outputs, with names that never meet a column's."""

    def __init__(self, onnx, taken):
        self.onnx, self.h = onnx, onnx.helper
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.taken = set(taken) | set(OUTPUTS_CLASSIFIER) | set(OUTPUTS_REGRESSOR)
        self.count = 0
        self.strings = False
        self.contract = []

    def name(self, hint):
        while True:
            self.count += 1
            name = f"_{hint}_{self.count}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def const(self, value, hint="c", dtype=None):
        from onnx import numpy_helper
        name = self.name(hint)
        if dtype == "string":
            arr = np.asarray(value, dtype=object)
            t = self.h.make_tensor(name, self.onnx.TensorProto.STRING, arr.shape,
                                   [str(v).encode("utf-8") for v in arr.ravel()])
        else:
            t = numpy_helper.from_array(np.asarray(value, dtype), name)
        self.inits.append(t)
        return name

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.h.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def elem(self, dtype):
        T = self.onnx.TensorProto
        if dtype == "string":
            return T.STRING
        return {np.dtype(np.float32): T.FLOAT, np.dtype(np.float64): T.DOUBLE,
                np.dtype(np.int64): T.INT64, np.dtype(np.bool_): T.BOOL}[np.dtype(dtype)]

    def input(self, name, dtype, shape, doc, role=None):
        self.inputs.append(self.h.make_tensor_value_info(name, self.elem(dtype), shape, doc))
        self.contract.append({"name": name, "role": role or "features",
                              "type": "string" if dtype == "string" else str(np.dtype(dtype)),
                              "shape": shape})
        return name

    def output(self, source, name, dtype, shape, doc):
        self.nodes.append(self.h.make_node("Identity", [source], [name], name=name))
        self.outputs.append(self.h.make_tensor_value_info(name, self.elem(dtype), shape, doc))

    def cast(self, x, dtype):
        return self.op("Cast", [x], "cast", to=self.elem(dtype))


def _check_schema(schema):
    from .tabular.scan import CATEGORICAL
    outputs = OUTPUTS_CLASSIFIER if schema.task == "classification" else OUTPUTS_REGRESSOR
    for col in schema.columns:
        if col.name in outputs:
            raise ExportError(f"column {col.name!r} has the name of an output of the ONNX graph "
                              f"({', '.join(outputs)}); rename the column and train again, or "
                              f"leave it out with --drop {col.name!r}")
    fmt = schema.csv
    if fmt.decimal == "." and not fmt.thousands:
        return
    for col in schema.columns:
        if col.role != CATEGORICAL:
            continue
        why = ("matches its levels by value" if col.numeric_levels else
               "has numeric --na-values markers" if len(schema.missing._numbers) else None)
        if why:
            shown = (f"--decimal {fmt.decimal!r}" if fmt.decimal != "." else "") + \
                (" " if fmt.decimal != "." and fmt.thousands else "") + \
                (f"--thousands {fmt.thousands!r}" if fmt.thousands else "")
            raise ExportError(
                f"categorical column {col.name!r} {why}, and the model reads numbers with "
                f"{shown}; the ONNX graph reads numbers in category text with a '.' decimal "
                "mark only, so it would encode some fields unlike mlpfast. Train without "
                f"--categorical {col.name!r} (or without the numeric --na-values), or leave "
                f"the column out with --drop {col.name!r}")


def _features(g, schema, dtype):
    """The feature matrix [N, n_features] in the model's dtype, from one input per column."""
    from .tabular.scan import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC
    blocks = []
    for col in schema.columns:
        if col.role == NUMERIC:
            x = g.input(col.name, np.float32, ["N", 1], "numeric: float32; NaN when missing",
                        col.role)
            blocks.append(_scaled(g, col, x, np.float32, dtype, schema.missing._numbers))
        elif col.role == DATETIME:
            x = g.input(col.name, np.float64, ["N", 1], "date-time: float64 seconds since "
                        "1970-01-01 UTC (no zone: UTC); NaN when missing", col.role)
            blocks.append(_scaled(g, col, x, np.float64, dtype, ()))
        elif col.role == BOOLEAN:
            x = g.input(col.name, np.float32, ["N", 1], "boolean: float32 1 (true) or 0 "
                        "(false); NaN when missing", col.role)
            miss = g.op("IsNaN", [x], "missing")
            blocks.append(g.op("Where", [miss, g.const(col.fill, "fill", dtype), g.cast(x, dtype)],
                               "boolean"))
        elif col.role == CATEGORICAL:
            x = g.input(col.name, "string", ["N", 1], "categorical: string, the field's text; "
                        "'' (or a missing-value marker) when missing", col.role)
            g.strings = True
            if col.width:
                blocks.append(_one_hot(g, col, x, dtype, schema.missing))
        else:  # pragma: no cover - Schema.from_arrays refuses unknown roles
            raise ExportError(f"column {col.name!r} has the unknown role {col.role!r}")
    if len(blocks) == 1:
        return blocks[0]
    return g.op("Concat", blocks, "features", axis=1)


def _scaled(g, col, x, elem, dtype, markers):
    """A numeric or date-time column (input `x` of dtype `elem`) as mlpfast's
    Encoder._scalar: p = x / s0 - c0 / s0 and f = (p - m) / s in float64, each rounded to the
    model's dtype; missing (NaN, or a numeric marker compared in `elem`) -> fill."""
    xd = x if elem == np.float64 else g.cast(x, np.float64)
    p = g.op("Sub", [g.op("Div", [xd, g.const(col.s0, "s0", np.float64)]),
                     g.const(col.c0 / col.s0, "c0_s0", np.float64)], "step1")
    if dtype != np.float64:
        p = g.cast(g.cast(p, dtype), np.float64)
    f = g.op("Div", [g.op("Sub", [p, g.const(col.m, "m", np.float64)]),
                     g.const(col.s, "s", np.float64)], "step2")
    if dtype != np.float64:
        f = g.cast(f, dtype)
    miss = g.op("IsNaN", [x], "missing")
    for v in markers:
        with np.errstate(over="ignore"):  # a marker beyond float32 (1e300) is its inf
            marker = g.const(v, "marker", elem)
        miss = g.op("Or", [miss, g.op("Equal", [x, marker])], "missing")
    return g.op("Where", [miss, g.const(col.fill, "fill", dtype), f], "scaled")


def _re_literal(text):
    """An RE2 pattern matching exactly `text`: letters and digits as they are, every other
    character as \\x{hex}."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


_WS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]*"


def _stripped_is(g, x, texts, hint):
    """bool [N, 1]: the field, stripped of surrounding whitespace, is one of `texts`."""
    body = "|".join(_re_literal(t) for t in texts)
    return g.op("RegexFullMatch", [x], hint, pattern=f"{_WS}(?:{body}){_WS}")


def _number(g, x):
    """float64 [N, 1]: the field's number (NaN where it reads as no number), for numeric levels
    and numeric markers in category text."""
    ok = g.op("RegexFullMatch", [x], "is_number", pattern=f"{_C_SPACE}(?:{_NUMBER}){_WS}")
    text = g.op("Where", [ok, x, g.const(["nan"], "nan", "string")], "number_text")
    return g.cast(text, np.float64)


def _one_hot(g, col, x, dtype, missing):
    """A categorical column as mlpfast's Encoder._categorical: [N, len(levels)] of 0/1 in the
    model's dtype; the canonical key is matched, an unseen value is all zeros."""
    from .tabular.schema import MISSING_LEVEL
    # markers are compared with stripped fields: one with surrounding blanks never matches
    markers = [m for m in missing.markers if m == m.strip()]
    miss = _stripped_is(g, x, markers, "missing")
    numbers = missing._numbers
    value = _number(g, x) if col.numeric_levels or len(numbers) else None
    for v in numbers:
        miss = g.op("Or", [miss, g.op("Equal", [value, g.const(v, "marker", np.float64)])],
                    "missing")
    keys = [v for v in col.levels if v != MISSING_LEVEL]
    if not keys:
        hits = None
    elif col.numeric_levels:
        hits = g.op("Equal", [value, g.const([float(v) for v in keys], "levels", np.float64)],
                    "levels")
    else:
        parts = [_stripped_is(g, x, [k], "level") for k in keys]
        hits = parts[0] if len(parts) == 1 else g.op("Concat", parts, "levels", axis=1)
    if hits is not None:  # a missing field is never a level
        hits = g.op("And", [hits, g.op("Not", [miss], "present")], "seen")
    if MISSING_LEVEL in col.levels:  # the missing level where the schema has it (last)
        pos = col.levels.index(MISSING_LEVEL)
        blocks = [hits] if hits is not None else []
        if pos == len(keys):
            blocks.append(miss)
        else:
            def cut(a, b):
                return g.op("Slice", [hits, g.const([a], "at", np.int64),
                                      g.const([b], "at", np.int64), g.const([1], "axis", np.int64)])
            blocks = [cut(0, pos), miss, cut(pos, len(keys))]
        hits = blocks[0] if len(blocks) == 1 else g.op("Concat", blocks, "one_hot", axis=1)
    return g.cast(hits, dtype)


def _network(g, est, X, dtype):
    """The output layer's scores [N, n_outputs] in the model's dtype."""
    from .reference import LEAKY_SLOPE
    h = X
    layers = list(zip(est.coefs_, est.intercepts_))
    for i, (W, b) in enumerate(layers):
        weights = [g.const(np.asarray(W, dtype), "W"), g.const(np.asarray(b, dtype), "b")]
        h = g.op("Gemm", [h] + weights, f"layer{i + 1}")
        if i == len(layers) - 1:
            break
        act = est.activation
        if act == "relu":
            h = g.op("Relu", [h])
        elif act == "tanh":
            h = g.op("Tanh", [h])
        elif act == "logistic":
            h = g.op("Sigmoid", [h])
        elif act == "leaky_relu":  # the kernels' z > 0 ? z : slope * z, slope in the dtype
            zero, slope = g.const(0, "zero", dtype), g.const(LEAKY_SLOPE, "slope", dtype)
            h = g.op("Where", [g.op("Greater", [h, zero]), h, g.op("Mul", [h, slope])],
                     "leaky_relu")
        elif act != "identity":
            raise ExportError(f"hidden activation {act!r} has no ONNX form here")
    return h


def _classifier_outputs(g, est, schema, Z):
    n = len(est.classes_)
    multilabel = est._multilabel()
    Zd = g.cast(Z, np.float64)  # predict_proba takes the scores in float64
    out = est.out_activation_
    if out == "softmax":
        P = g.op("Softmax", [Zd], "probabilities", axis=1)
    elif out == "logistic" and multilabel:
        P = g.op("Sigmoid", [Zd], "probabilities")
    elif out == "logistic":
        if n != 2:
            raise ExportError(f"a logistic output for {n} classes")
        P = g.op("Concat", [g.op("Sigmoid", [g.op("Neg", [Zd])]), g.op("Sigmoid", [Zd])],
                 "probabilities", axis=1)
    else:
        raise ExportError(f"a classifier with the output activation {out!r}")
    if multilabel:
        label = g.cast(g.op("Greater", [P, g.const(0.5, "half", np.float64)]), np.int64)
        g.output(label, "label", np.int64, ["N", n], "each label's 0/1 (probability > 0.5)")
        g.output(P, "probabilities", np.float64, ["N", n], "each label's probability")
        return
    if schema is not None:
        values, dtype = _schema_labels(schema)
    else:
        values, dtype = _estimator_labels(est.classes_)
    index = g.op("ArgMax", [P], "index", axis=1, keepdims=0)
    label = g.op("Gather", [g.const(values, "classes", dtype), index], "label")
    g.output(label, "label", dtype, ["N"], "the predicted class (the most probable)")
    g.output(P, "probabilities", np.float64, ["N", n],
             "class probabilities, columns in the order of the classes: "
             + ", ".join(map(str, values[:50])) + (" ..." if n > 50 else ""))


def _schema_labels(schema):
    """The classes as the schema stores them: text, or numbers (int64 when all whole)."""
    if schema.class_numbers is None:
        return np.array(schema.classes, dtype=object), "string"
    nums = np.asarray(schema.class_numbers, np.float64)
    if (nums == np.round(nums)).all() and (np.abs(nums) < 2.0 ** 63).all():
        return nums.astype(np.int64), np.int64
    return nums, np.float64


def _estimator_labels(classes):
    c = np.asarray(classes)
    if c.dtype.kind in "US" or (c.dtype.kind == "O" and all(isinstance(v, str) for v in c)):
        return np.array([str(v) for v in c], dtype=object), "string"
    if c.dtype.kind == "b" or (c.dtype.kind == "O" and all(isinstance(v, (bool, np.bool_))
                                                           for v in c)):
        return c.astype(np.bool_), np.bool_
    if c.dtype.kind in "iu" or (c.dtype.kind == "O" and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in c)):
        return c.astype(np.int64), np.int64
    try:
        return c.astype(np.float64), np.float64
    except (TypeError, ValueError):
        raise ExportError(f"classes {c.tolist()[:10]!r} are neither all text nor all numbers; "
                          "the graph's label output holds one type") from None


def _regressor_outputs(g, est, schema, Z, dtype):
    k = est.n_outputs_
    v = Z
    if est.out_activation_ == "exp":  # predict: exp of the float64 scores, back in X's dtype
        v = g.cast(g.op("Exp", [g.cast(Z, np.float64)]), dtype)
    elif est.out_activation_ != "identity":
        raise ExportError(f"a regressor with the output activation {est.out_activation_!r}")
    if schema is not None:
        if k != 1:
            raise ExportError(f"a run with {k} regression outputs; runs have one target")
        v = g.cast(v, np.float64)
        v = g.op("Add", [g.op("Mul", [v, g.const(schema.target_scale, "scale", np.float64)]),
                         g.const(schema.target_center, "center", np.float64)], "value")
        v = g.op("Reshape", [v, g.const([-1], "shape", np.int64)], "value")
        g.output(v, "value", np.float64, ["N"], f"the predicted {schema.target!r} in its units")
        return
    one_d = getattr(est, "_y_1d", k == 1)
    if one_d:
        v = g.op("Reshape", [v, g.const([-1], "shape", np.int64)], "value")
    g.output(v, "value", dtype, ["N"] if one_d else ["N", k], "the predictions")


def _task(est):
    from .estimators import MLPClassifier
    return "classification" if isinstance(est, MLPClassifier) else "regression"


def _describe(est, schema):
    layers = "-".join(str(w) for w in est._widths)
    head = f"mlpfast {__version__} {type(est).__name__} {layers} ({est.activation})"
    if schema is None:
        return head + ": input X [N, n_features]"
    return (f"{head}, trained on {schema.describe()} to predict {schema.target!r}: one input "
            "per feature column, [N, 1]: float32 numeric and boolean (NaN when missing), "
            "float64 date-time (seconds since 1970 UTC), string categorical (the field's text; "
            "'' when missing)")


__all__ = ["to_onnx", "write_onnx", "ExportError", "MissingExtraError"]
