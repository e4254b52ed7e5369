"""The CSV flow (mlpfast.tabular) on inputs of each kind the reader must handle: structure,
number formats, missing markers, column hygiene, numeric extremes, targets, splits, sources and
messages. Each test asserts the right value or the exact message, through the CLI or the library."""
import bz2
import gzip
import lzma
import os
import subprocess
import sys
import threading
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlpfast
from mlpfast import tabular
from mlpfast.cli.main import cli
from mlpfast.errors import DataError, DataNote

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
FAST = dict(hidden_layer_sizes=(8,), max_iter=2)


def run(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def rows(n, fn):
    return "".join(fn(i) for i in range(n))


def train_notes(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = tabular.train(path, **{**FAST, **kw})
    return r, [str(w.message) for w in caught if issubclass(w.category, DataNote)]


def error_of(path, **kw):
    with pytest.raises(DataError) as e:
        tabular.train(path, **{**FAST, **kw})
    return str(e.value)


# ---- structure

def test_duplicate_and_empty_header_names_refused(tmp_path):
    assert "names column 'a' more than once" in error_of(write(tmp_path, "d.csv", "a,b,a,y\n1,2,3,u\n" * 1 + "4,5,6,v\n"))
    msg = error_of(write(tmp_path, "e.csv", ",a,y\n0,1,u\n1,2,v\n"))
    assert "column 1 of the header has no name" in msg


def test_ragged_rows_name_the_file_line_with_blank_lines_and_quoted_newlines(tmp_path):
    p = write(tmp_path, "r.csv", 'a,b,y\n1,"two\nlines",u\n\n3,4,v\n5,6\n')
    assert "line 6 has 2 fields, the header has 3" in error_of(p)


# ---- number formats and separators

def test_decimal_comma_is_named_and_read_with_the_option(tmp_path):
    body = rows(40, lambda i: f"{i},{i % 7}.5;{i % 2}\n".replace(",", ";", 1).replace(".", ","))
    p = write(tmp_path, "dc.csv", "a;b;y\n" + body)
    msg = error_of(p, csv=tabular.CSVFormat(sep=";"))
    assert "column 'b' holds numbers written in another format ('0,5' at line 2); pass --decimal ','" in msg
    r = tabular.train(p, csv=tabular.CSVFormat(sep=";", decimal=","), val_fraction=0, **FAST)
    assert [c.role for c in r.schema.columns] == ["numeric", "numeric"]
    assert r.schema.columns[1].center == pytest.approx(np.mean([i % 7 + 0.5 for i in range(40)]), rel=1e-6)


def test_thousands_separators(tmp_path):
    p = write(tmp_path, "t.csv", "price,y\n" + rows(30, lambda i: f'"{i},{i:03d}",{i % 2}\n'))
    msg = error_of(p)
    assert ("holds numbers written in another format ('0,000' at line 2); pass --decimal ',' or "
            "--thousands ',', whichever the file means") in msg
    p2 = write(tmp_path, "t2.csv", "price,y\n" + rows(30, lambda i: f'"{i}.{i:03d},5",{i % 2}\n'))
    assert "pass --decimal ',' --thousands '.'" in error_of(p2)
    r = tabular.train(p, csv=tabular.CSVFormat(thousands=","), val_fraction=0, **FAST)
    assert r.schema.columns[0].role == "numeric"
    assert r.schema.columns[0].center == pytest.approx(np.mean([i * 1000 + i for i in range(30)]), rel=1e-6)


def test_separator_names_and_sniffing(tmp_path):
    text = "a\tb\ty\n" + rows(20, lambda i: f"{i}\t{i * 2}\t{i % 2}\n")
    p = write(tmp_path, "tab.csv", text)
    for sep in ("tab", "\\t", "\t"):
        r = tabular.train(p, csv=tabular.CSVFormat(sep=sep), **FAST)
        assert r.schema.names == ["a", "b"]
    r, notes = train_notes(p)
    assert r.schema.names == ["a", "b"]
    assert any("reading with separator tab, the one its header uses" in n for n in notes)
    msg = error_of(p, csv=tabular.CSVFormat(sep=";"))
    assert "looks separated by tab: pass --sep tab" in msg


# ---- missing values

def test_default_na_markers_are_said_and_can_be_kept(tmp_path):
    text = "country,x,y\n" + rows(40, lambda i: f"{['NA', 'FR', 'DE'][i % 3]},{i},{i % 2}\n")
    p = write(tmp_path, "na.csv", text)
    r, notes = train_notes(p)
    assert any("column 'country': 14 value(s) 'NA' (14) read as missing" in n and "--no-default-na" in n
               for n in notes)
    assert "<missing>" in r.schema.columns[0].levels
    r = tabular.train(p, default_na=False, **FAST)
    assert r.schema.columns[0].levels == ["DE", "FR", "NA"]


def test_na_values_option_and_imputation_note(tmp_path):
    p = write(tmp_path, "m.csv", "a,y\n" + rows(30, lambda i: f"{-999 if i % 10 == 0 else i},{i % 2}\n"))
    r, notes = train_notes(p, na_values=["-999"], val_fraction=0)
    assert any("column 'a': 3 missing value(s) imputed with the training median" in n for n in notes)
    X = r.transform(p)
    # a missing value encodes as the training median: the median row's value
    med = np.median([i for i in range(30) if i % 10])
    assert X[0, 0] == pytest.approx((med - r.schema.columns[0].center) / r.schema.columns[0].scale, abs=1e-6)


def test_mostly_numeric_column_with_markers_is_refused_whatever_the_seed(tmp_path):
    p = write(tmp_path, "q.csv", "age,y\n" + rows(60, lambda i: f"{'?' if i == 37 else i},{i % 2}\n"))
    for seed in range(4):
        msg = error_of(p, seed=seed)
        assert "column 'age' is numeric but for 1 value(s) ('?' at line 39)" in msg
        assert "--na-values '?'" in msg


# ---- column hygiene

def test_identifier_and_free_text_left_out_and_wide_categories_capped(tmp_path):
    words = ["alpha", "beta", "gamma", "delta"]
    text = "id,comment,city,x,y\n" + rows(300, lambda i: (
        f"ID-{i},{' '.join(words[(i + k) % 4] for k in range(12))} {i},c{i % 150},{i % 5},{i % 2}\n"))
    p = write(tmp_path, "h.csv", text)
    msg = error_of(p)
    assert "column 'city' has 150 distinct values, more than --max-categories 100" in msg
    r, notes = train_notes(p, max_categories=200)
    assert r.schema.dropped == ["id", "comment"]
    assert any("column 'id' looks like an identifier (300 distinct values in 300 rows)" in n for n in notes)
    assert any("column 'comment' holds free text" in n for n in notes)
    assert r.schema.n_features == 150 + 1


def test_numeric_identifier_is_named(tmp_path):
    p = write(tmp_path, "n.csv", "customer_id,x,y\n" + rows(200, lambda i: f"{1000 + 7 * i},{i % 5},{i % 2}\n"))
    r, notes = train_notes(p)
    assert any("column 'customer_id' looks like a numeric identifier" in n and "--drop 'customer_id'" in n
               for n in notes)
    r, notes = train_notes(write(tmp_path, "m.csv", "width,x,y\n" + rows(200, lambda i: f"{i},{i % 5},{i % 2}\n")))
    assert not any("identifier" in n for n in notes)


def test_categories_stored_without_padding(tmp_path):
    big = "z" * 500_000
    p = write(tmp_path, "big.csv", "c,y\n" + rows(40, lambda i: f"{big if i == 0 else 'ab'[i % 2]},{i % 2}\n"))
    out = tmp_path / "run"
    tabular.train(p, out=out, **FAST)
    assert os.path.getsize(out / "model.npz") < 700_000
    assert mlpfast.load(out).schema.columns[0].levels[-1] == big


def test_integer_codes_and_booleans_encode_the_same_in_every_spelling(tmp_path):
    train = "code,flag,y\n" + rows(40, lambda i: f"{101 + i % 3},{['True', 'false'][i % 2]},{i % 2}\n")
    p = write(tmp_path, "c.csv", train)
    r = tabular.train(p, categorical=["code"], val_fraction=0, **FAST)
    assert r.schema.columns[1].role == "boolean"
    other = write(tmp_path, "c2.csv", "y,flag,code\n" + rows(40, lambda i: (
        f"{i % 2},{['1', 'FALSE'][i % 2]},{101 + i % 3}.0\n")))
    assert np.array_equal(r.transform(p), r.transform(other))


def test_datetime_columns_train_and_predict_alike(tmp_path):
    text = "when,x,y\n" + rows(50, lambda i: f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00,{i},{i % 2}\n")
    p = write(tmp_path, "dt.csv", text)
    r = tabular.train(p, val_fraction=0, **FAST)
    assert r.schema.columns[0].role == "datetime"
    zoned = write(tmp_path, "dz.csv", "when,x,y\n" + rows(50, lambda i: (
        f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,{i},{i % 2}\n")))
    assert np.array_equal(r.transform(p), r.transform(zoned))
    bad = write(tmp_path, "db.csv", "when,x,y\n2024-13-01,1,0\n")
    with pytest.raises(DataError, match="column 'when' has 1 value\\(s\\) that are not an ISO date-time, first '2024-13-01' at line 2"):
        r.transform(bad)


# ---- numeric robustness

def test_extreme_values_have_finite_statistics_and_are_named(tmp_path):
    p = write(tmp_path, "x.csv", "a,b,y\n" + rows(50, lambda i: (
        f"{1e308 if i == 3 else -1e308 if i == 4 else i * 1e-3},{i},{i % 2}\n")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r, notes = train_notes(p)
    a = r.schema.columns[0]
    assert np.isfinite([a.c0, a.s0, a.m, a.s, a.fill]).all()
    assert np.isfinite(r.transform(p)).all()
    assert any("column 'a' spans extreme magnitudes" in n for n in notes)
    far = write(tmp_path, "far.csv", "a,b,y\n1e308,1,0\n")
    small = tabular.train(write(tmp_path, "s.csv", "a,b,y\n" + rows(30, lambda i: f"{i},{i},{i % 2}\n")), **FAST)
    with pytest.raises(DataError, match="column 'a' has 1e308 at line 2, too far outside the training range"):
        small.transform(far)


# ---- targets and splits

def test_regression_target_standardised_and_reported_in_its_units(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 400)
    p = write(tmp_path, "r.csv", "x,price\n" + "".join(f"{a:.4f},{1e6 * a + 5e5:.0f}\n" for a in x))
    r = tabular.train(p, hidden_layer_sizes=(16,), max_iter=60, learning_rate_init=0.01)
    assert r.schema.target_scale > 1e5
    res = r.evaluate(p)
    assert res["r2"] > 0.95 and 1e3 < res["mae"] < 1e5
    pred = r.predict(p)
    assert 4e5 < pred.mean() < 1.1e6


def test_numeric_labels_keep_their_values_and_validation_file_is_checked_first(tmp_path):
    p = write(tmp_path, "l.csv", "x,y\n" + rows(40, lambda i: f"{i},{[101, 202][i % 2]}\n"))
    good = write(tmp_path, "v.csv", "x,y\n1,101.0\n2,202\n")
    r = tabular.train(p, val=good, **FAST)
    assert list(r.classes) == [101, 202] and r.schema.classes == ["101", "202"]
    bad = write(tmp_path, "vb.csv", "x,y\n1,101\n2,303\n")
    started = []
    with pytest.raises(DataError, match="vb.csv: target column 'y' has label '303' at line 3"):
        tabular.train(p, val=bad, callback=lambda est, ev: started.append(ev), **FAST)
    assert started == []  # refused before training started
    with pytest.raises(DataError, match="missing column\\(s\\) \\['x'\\]"):
        tabular.train(p, test=write(tmp_path, "t.csv", "z,y\n1,101\n"), **FAST)


def test_single_row_class_same_outcome_for_every_seed(tmp_path):
    p = write(tmp_path, "s.csv", "x,y\n" + rows(30, lambda i: f"{i},{'ab'[i % 2]}\n") + "99,c\n")
    for seed in range(6):
        r, notes = train_notes(p, seed=seed)
        assert any("class of target 'y' with 1 row: 'c' (line 32): kept in the training rows" in n
                   for n in notes)
        assert r.summary["data"]["train_rows"] + r.summary["data"]["val_rows"] == 31


# ---- sources

@pytest.mark.parametrize("kind", ["gzip", "bz2", "xz", "zip"])
def test_compressed_files(tmp_path, kind):
    text = ("a,y\n" + rows(30, lambda i: f"{i},{i % 2}\n")).encode()
    p = tmp_path / f"data.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("data.csv", text)
    else:
        p.write_bytes({"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](text))
    plain = write(tmp_path, "plain.csv", text.decode())
    r = tabular.train(plain, val_fraction=0, **FAST)
    assert np.array_equal(r.transform(p), r.transform(plain))


def test_zip_with_two_files_refused(tmp_path):
    p = tmp_path / "two.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.csv", "a,y\n1,0\n")
        z.writestr("b.csv", "a,y\n1,0\n")
    assert "must hold exactly one CSV file; it holds 2" in error_of(p)


def test_stdin_pipe_and_fifo(tmp_path):
    text = "a,y\n" + rows(40, lambda i: f"{i},{i % 2}\n")
    p = write(tmp_path, "d.csv", text)
    out = tmp_path / "run"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run([sys.executable, "-m", "mlpfast", "train", "-", "--out", str(out),
                           "--epochs", "2", "--hidden", "4", "-q"], input=text, text=True,
                          capture_output=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "mlpfast", "predict", str(out), "-"],
                          input=text, text=True, capture_output=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 41
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(text))
    writer.start()
    r = mlpfast.load(out)
    got = r.predict(str(fifo))
    writer.join()
    assert np.array_equal(got, r.predict(p))


def test_encoding_error_names_the_byte_offset(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"name,y\n" + b"".join(b"abc,0\n" for _ in range(10)) + b"caf\xe9,1\n")
    msg = error_of(p)
    assert "cannot be decoded as utf-8 (invalid continuation byte at byte 70)" in msg
    assert "--encoding" in msg
    r = tabular.train(p, csv=tabular.CSVFormat(encoding="latin-1"), **FAST)
    assert "café" in r.schema.columns[0].levels


# ---- messages through the CLI

def test_cli_errors_are_one_line_and_predict_writes_nothing_on_refusal(tmp_path):
    p = write(tmp_path, "t.csv", "a,b,y\n" + rows(30, lambda i: f"{i},{i % 3},{i % 2}\n"))
    out = tmp_path / "run"
    assert run("train", p, "--out", out, "--epochs", 2, "-q").exit_code == 0
    bad = write(tmp_path, "bad.csv", "a,b\n" + rows(5, lambda i: f"{i},{i},\n"))
    r = run("predict", out, bad)
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == (f"Error: {bad}: line 2 has 3 fields, the header has 2 (the row ends "
                                "with a separator); fix the file")


def test_dataframe_with_pandas_na_predicts(tmp_path):
    p = write(tmp_path, "n.csv", "a,c,y\n" + rows(40, lambda i: f"{i},{'xy'[i % 2]},{i % 2}\n"))
    r = tabular.train(p, **FAST)
    df = pd.read_csv(p).convert_dtypes()
    df.loc[0, "a"] = pd.NA
    df.loc[1, "c"] = None
    assert len(r.predict(df)) == 40


def test_shifted_dataframe_is_named(tmp_path):
    # pandas reads a file whose rows end in a separator with its first column as the index:
    # every later column shifts and the last is empty
    p = write(tmp_path, "t.csv", "a,b,y\n" + rows(30, lambda i: f"{i},{i % 3},{i % 2}\n"))
    r = tabular.train(p, **FAST)
    shifted = write(tmp_path, "s.csv", "a,b\n" + rows(10, lambda i: f"{i},{i % 3},\n"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r.predict(pd.read_csv(shifted))
    assert any("column 'b': missing in every one of its 10 rows (is the data shifted?)" in str(w.message)
               for w in caught)


def test_later_files_are_read_as_the_training_file_was_written(tmp_path):
    text = "area;y\n" + rows(30, lambda i: f"{i},{i % 10};{i % 2}\n")
    p = write(tmp_path, "semi.csv", text)
    out = tmp_path / "run"
    assert run("train", p, "--decimal", ",", "--out", out, "--epochs", 2, "-q").exit_code == 0
    r = run("predict", out, p)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 31
    r = run("predict", out, p, "--decimal", ".")
    assert r.exit_code == 1 and "read now with --decimal '.'" in r.stderr
    assert mlpfast.load(out).schema.csv.decimal == ","


def test_target_in_another_number_format_or_with_a_label_per_row(tmp_path):
    p = write(tmp_path, "p.csv", "area;price\n" + rows(60, lambda i: f"{i};{i}.{i:03d},25\n"))
    msg = error_of(p, target="price", csv=tabular.CSVFormat(decimal=","))
    assert "target column 'price' holds numbers written in another format ('0.000,25' at line 2)" in msg
    assert "pass --thousands '.'" in msg  # --decimal ',' was given already
    r = tabular.train(p, target="price", csv=tabular.CSVFormat(decimal=",", thousands="."), **FAST)
    assert r.task == "regression"
    q = write(tmp_path, "q.csv", "x,name\n" + rows(80, lambda i: f"{i},n{i}\n"))
    assert "target column 'name' has 80 distinct text labels in 80 rows" in error_of(q)


def test_dataframe_trains_as_its_csv_would(tmp_path):
    p = write(tmp_path, "d.csv", "a,c,y\n" + rows(40, lambda i: f"{i * 0.5},{'xyz'[i % 3]},{i % 2}\n"))
    from_file = tabular.train(p, val_fraction=0, **FAST)
    from_frame = tabular.train(pd.read_csv(p), val_fraction=0, out=tmp_path / "f", **FAST)
    assert np.array_equal(from_file.transform(p), from_frame.transform(p))
    assert np.array_equal(from_file.estimator._theta, from_frame.estimator._theta)
    assert mlpfast.load(tmp_path / "f").summary["data"]["file"] == "DataFrame"


def test_second_round_kinds(tmp_path):
    # a repeated header (two files joined), nanosecond clocks, no-break-space thousands,
    # labels differing only in case, a numeric target with a stray '?', 'NA' as a label
    joined = write(tmp_path, "j.csv", "a,y\n" + rows(20, lambda i: f"{i},{i % 2}\n") + "a,y\n" +
                   rows(20, lambda i: f"{i},{i % 2}\n"))
    assert "line 22 repeats the header" in error_of(joined)
    ns = write(tmp_path, "ns.csv", "t,y\n" + rows(30, lambda i: f"2024-06-14 12:00:{i:02d}.123456789,{i % 2}\n"))
    assert tabular.train(ns, **FAST).schema.columns[0].role == "datetime"
    nb = write(tmp_path, "nb.csv", "amount,y\n" + rows(30, lambda i: f"1\u00a0{i:03d}\u00a0000,{i % 2}\n"))
    assert "pass --thousands $'\\u00a0' (a no-break space)" in error_of(nb)
    cased = write(tmp_path, "c.csv", "x,y\n" + rows(40, lambda i: f"{i},{['yes', 'Yes', 'no'][i % 3]}\n"))
    _, notes = train_notes(cased)
    assert any("labels that differ only in case are separate classes: 'yes' / 'Yes'" in n for n in notes)
    q = write(tmp_path, "q.csv", "x,price\n" + rows(60, lambda i: f"{i},{'?' if i == 50 else i * 1000}\n"))
    assert "target column 'price' is numeric but for 1 value(s), first '?' at line 52" in error_of(q, target="price")
    na = write(tmp_path, "na.csv", "x,region\n" + rows(40, lambda i: f"{i},{['NA', 'EU'][i % 2]}\n"))
    assert "pass --no-default-na if it is a label" in error_of(na)
    assert tabular.train(na, default_na=False, **FAST).schema.classes == ["EU", "NA"]


def test_evaluate_names_the_column_it_was_given_and_refuses_no_rows(tmp_path):
    p = write(tmp_path, "e.csv", "a,c,y\n" + rows(30, lambda i: f"{i},{'rg'[i % 2]},{i % 2}\n"))
    r = tabular.train(p, **FAST)
    with pytest.raises(DataError, match="target column 'c' has label 'r' at line 2"):
        r.evaluate(p, target="c")
    with pytest.raises(DataError, match="has a header but no data rows to evaluate"):
        r.evaluate(write(tmp_path, "h.csv", "a,c,y\n"))
