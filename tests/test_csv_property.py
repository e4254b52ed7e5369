"""Property: a file encodes the same way however it arrives.

Hypothesis draws small frames (5-40 rows) with columns of the kinds CSV exports hold: floats
(everyday magnitudes, or any finite double), integer-valued floats written as '3.0' in some
rows and '3' in others, integers with blanks, booleans in mixed spellings, short text
categories with blanks. It adds a binary target with both classes present at least twice. The
frame is written in several dialects (separator ',' ';' or tab, all fields quoted or only where
needed, '\\n' or '\\r\\n' line ends) and trained on with val_fraction=0, so the training
matrix's rows are the file's rows in order. The float32 feature matrix must then be identical:
- training's own matrix = run.transform(file);
- run.transform(file with its rows shuffled), un-shuffled = run.transform(file);
- the file encoded by the stored schema in blocks of a few rows (encode_file with a tiny
  block_bytes, so rows fall on both sides of block boundaries) = run.transform(file);
- run.transform(the DataFrame pandas reads from the file, with its own type inference)
  = run.transform(file);
and training with a tiny block_bytes makes the same column decisions and, to float32
precision, the same matrix.

How training's matrix is obtained: tabular.train writes the whole matrix X once. Pass two
writes each row at its position, then finish_numeric completes the numeric scaling in place,
and fit gets X[:n_train], which is all of X with val_fraction=0. The test wraps
mlpfast.tabular.flow.finish_numeric (unittest.mock.patch, for one call of train only) with a
spy that calls the real function and copies X after it. That copy is the matrix the estimator
trains on, and train's own steps are not re-implemented here. As a cross-check, predict_proba
on the file must equal the estimator's predict_proba on that matrix.
"""
import csv
import os
import tempfile
import warnings
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlpfast import tabular
from mlpfast.tabular import learn as learn_module
from mlpfast.tabular.learn import encode_file
from mlpfast.tabular.reader import CSVFormat, Source, Table

pytestmark = [pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::mlpfast.errors.DataNote")]

KINDS = ("float", "intfloat", "int_blank", "bool_mixed", "category")
BOOL_SPELLINGS = ("True", "true", "1", "False", "false", "0")
CATEGORIES = ("red", "dark blue", "a,b", "x;y", " padded ", 'say "hi"')


@st.composite
def column(draw, kind, n):
    """A column of n fields as they are written in the file (text)."""
    if kind == "float":
        # everyday magnitudes, or any finite double (up to +-1.8e308: statistics must not overflow)
        values = draw(st.one_of(
            st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n),
            st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n)))
        return [repr(v) for v in values]
    if kind == "intfloat":
        values = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
        dotted = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return [f"{v}.0" if d else str(v) for v, d in zip(values, dotted)]
    if kind == "int_blank":
        values = draw(st.lists(st.one_of(st.none(), st.integers(-10**6, 10**6)),
                               min_size=n, max_size=n))
        # at least one value (an empty column is refused, rightly)
        values[draw(st.integers(0, n - 1))] = draw(st.integers(-10**6, 10**6))
        return ["" if v is None else str(v) for v in values]
    if kind == "bool_mixed":
        return draw(st.lists(st.sampled_from(BOOL_SPELLINGS), min_size=n, max_size=n))
    values = draw(st.lists(st.sampled_from(CATEGORIES + ("",)), min_size=n, max_size=n))
    values[draw(st.integers(0, n - 1))] = draw(st.sampled_from(CATEGORIES))
    return values


@st.composite
def frames(draw):
    """(header, rows) of text fields: feature columns, then the binary target 'y'."""
    n = draw(st.integers(5, 40))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    names = [f"{kind}_{k}" for k, kind in enumerate(kinds)]
    cols = [draw(column(kind, n)) for kind in kinds]
    # both classes at least twice, in drawn places
    labels = draw(st.permutations([0, 0, 1, 1] + draw(st.lists(st.integers(0, 1), min_size=n - 4,
                                                               max_size=n - 4))))
    spelled = draw(st.sampled_from([("0", "1"), ("no", "yes")]))
    cols.append([spelled[v] for v in labels])
    return names + ["y"], [list(row) for row in zip(*cols)]


def write_csv(path, header, rows, sep, quoting, lineterminator):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep, quoting=quoting, lineterminator=lineterminator)
        w.writerow(header)
        w.writerows(rows)


def train_capturing_matrix(path, fmt, **kw):
    """(run, X): X is the matrix the estimator was fitted on (see the module docstring)."""
    captured = {}
    real = learn_module.finish_numeric

    def spy(schema, X, n_train, dtype):
        filled = real(schema, X, n_train, dtype)
        captured["X"], captured["n_train"] = X.copy(), n_train
        return filled

    with mock.patch("mlpfast.tabular.flow.finish_numeric", spy):
        run = tabular.train(path, csv=fmt, val_fraction=0, hidden_layer_sizes=(8,), max_iter=2,
                            **kw)
    assert captured["n_train"] == len(captured["X"])
    return run, captured["X"]


def describe(schema):
    return ([(c.name, c.role, c.levels, c.numeric_levels) for c in schema.columns],
            schema.dropped, schema.task, schema.classes, schema.n_features)


# found by this test: finite values near the largest double (see test_largest_doubles_train)
WIDE = (["float_0", "y"], [["0.0", "0"], ["0.0", "0"], ["1.7976931348623157e+308", "1"],
                           ["-8.9884656743116e+307", "1"], ["-8.988465674311563e+307", "0"]])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames(),
       sep=st.sampled_from([",", ";", "\t"]),
       quoting=st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]),
       lineterminator=st.sampled_from(["\n", "\r\n"]),
       block=st.integers(64, 256),
       order_seed=st.integers(0, 2**32 - 1))
@example(frame=WIDE, sep=",", quoting=csv.QUOTE_ALL, lineterminator="\n", block=64, order_seed=0)
def test_file_encodes_the_same_however_it_arrives(frame, sep, quoting, lineterminator, block,
                                                  order_seed):
    header, rows = frame
    n = len(rows)
    fmt = CSVFormat(sep=sep)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = os.path.join(tmp, "data.csv")
        write_csv(path, header, rows, sep, quoting, lineterminator)

        run, X_train = train_capturing_matrix(path, fmt)
        assert X_train.dtype == np.float32 and X_train.shape == (n, run.schema.n_features)
        T = run.transform(path, csv=fmt)
        assert T.dtype == np.float32
        np.testing.assert_array_equal(T, X_train)
        assert np.isfinite(T).all()
        np.testing.assert_array_equal(run.predict_proba(path, csv=fmt),
                                      run.estimator.predict_proba(X_train))

        # (a) the same rows in another order
        perm = np.random.default_rng(order_seed).permutation(n)
        shuffled = os.path.join(tmp, "shuffled.csv")
        write_csv(shuffled, header, [rows[k] for k in perm], sep, quoting, lineterminator)
        np.testing.assert_array_equal(run.transform(shuffled, csv=fmt), T[perm])

        # (b) the same file read in blocks of a few rows by the stored schema. A block must
        # hold a whole row, so B is at least twice the longest line; it is also at most a
        # third of the file, so the rows fall into several blocks.
        with open(path, "rb") as f:
            data = f.read()
        longest = max(len(line) for line in data.splitlines()) + 2
        B = max(2 * longest, min(block, len(data) // 3))
        with Source(path) as src:
            table = Table(src, fmt, block_bytes=B)
            firsts = [first for first, _ in table]
        assert len(firsts) >= 2, (B, len(data))
        out = np.full((n, run.schema.n_features), np.nan, np.float32)
        with Source(path) as src:
            got, _, _ = encode_file(src, fmt, run.schema, out, block_bytes=B)
        assert got == n
        np.testing.assert_array_equal(out, T)

        # (c) the DataFrame pandas makes of the file with its own type inference
        frame_read = pd.read_csv(path, sep=sep)
        np.testing.assert_array_equal(run.transform(frame_read), T)

        # (d) training itself in blocks of B bytes (both passes): the same column decisions
        # (scan.py: they never depend on the block size). The scaling statistics are summed
        # block by block, so they may differ in the last float64 bits: the matrix is compared
        # to float32 precision, not bit for bit.
        run_b, X_b = train_capturing_matrix(path, fmt, block_bytes=B)
        assert describe(run_b.schema) == describe(run.schema)
        np.testing.assert_allclose(X_b, X_train, rtol=1e-5, atol=1e-5)


def test_largest_doubles_train(tmp_path):
    """Finite values near +-1.8e308 are numbers like any other: the whole-file statistics
    (c0, s0) and the encoded column stay finite, as H3's 1e300 sentinel does (schema.py: 'every
    p is finite'), and the model trains and predicts."""
    path = tmp_path / "wide.csv"
    write_csv(path, *WIDE, ",", csv.QUOTE_MINIMAL, "\n")
    run, X = train_capturing_matrix(str(path), CSVFormat())
    col = run.schema.columns[0]
    assert col.role == "numeric"
    assert np.isfinite([col.c0, col.s0, col.m, col.s, col.fill]).all()
    assert np.isfinite(X).all()
    np.testing.assert_array_equal(run.transform(str(path)), X)
    assert run.predict(str(path)).shape == (5,)
