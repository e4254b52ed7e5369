"""The field cases H1-H6: CSV situations that users have reported in public, each with the
outcome a user rightly expects, through the command line and through the Python API.

The inputs are rebuilt here, so the repository stands alone. `write_field_cases` copies the
generator of the field-case notes (field/make_cases.py, H1-H6). Those small synthetic files
rebuild public bug reports and Q&A threads about training models on CSV files; none holds
real data. The only addition is the labelled trailing-delimiter file h1_trailing_labelled.csv,
which `evaluate` and `train` need.
"""
import datetime
import json
import os
import random
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlpfast
from mlpfast import tabular
from mlpfast.cli.main import cli
from mlpfast.errors import DataError, DataNote
from mlpfast.tabular.split import split

pytestmark = [pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::mlpfast.errors.DataNote")]


# ---- the inputs (copied from field/make_cases.py; each random.seed(k) there is a
# random.Random(k) here, which draws the same numbers, so the files are byte for byte the same)

def _write(out, name, header, rows):
    with open(os.path.join(out, name), "w", newline="") as f:
        f.write(header + "\n" + "".join(r + "\n" for r in rows))


def write_field_cases(out):
    """Write the inputs of field cases H1-H6 into the folder `out`."""
    os.makedirs(out, exist_ok=True)

    # H1: every data row of the file to score ends with a delimiter (an exporter's habit)
    rnd = random.Random(2)
    pts = [(rnd.random(), rnd.random(), rnd.random()) for _ in range(400)]
    _write(out, "h1_train.csv", "a,b,c,y", [f"{a:.3f},{b:.3f},{c:.3f},{int(a > 0.5)}" for a, b, c in pts])
    _write(out, "h1_score_trailing.csv", "a,b,c", [f"{a:.3f},{b:.3f},{c:.3f}," for a, b, c in pts])
    _write(out, "h1_score_clean.csv", "a,b,c", [f"{a:.3f},{b:.3f},{c:.3f}" for a, b, c in pts])
    # (added here) the same exporter's habit on a labelled file, for evaluate and train
    _write(out, "h1_trailing_labelled.csv", "a,b,c,y",
           [f"{a:.3f},{b:.3f},{c:.3f},{int(a > 0.5)}," for a, b, c in pts])

    # H2: one class has a single row (the last one)
    rnd = random.Random(0)
    rows = []
    for _ in range(120):
        v, t = rnd.random(), rnd.random()
        rows.append(f"{v:.3f},{t:.3f},{'none' if v < 0.6 else 'bearing'}")
    rows.append("0.990,0.990,rotor")
    _write(out, "h2_singleton_class.csv", "vibration,temp,fault", rows)

    # H3: a finite sentinel value (1e300) in a tenth of the rows of one column
    rnd = random.Random(0)
    rows = []
    for i in range(300):
        r = rnd.random()
        rows.append(f"{'1e300' if i % 10 == 0 else f'{r:.3f}'},{rnd.random():.3f},{'hi' if r > 0.5 else 'lo'}")
    _write(out, "h3_sentinel.csv", "reading,other,label", rows)

    # H4: a regression target in the hundreds of thousands
    rnd = random.Random(0)
    rows = []
    for _ in range(2000):
        r = rnd.randint(1, 8); a = rnd.uniform(30, 300); g = rnd.randint(0, 100)  # noqa: E702
        rows.append(f"{r},{a:.1f},{g},{1000 * a + 5000 * r - 300 * g + rnd.gauss(0, 5000):.0f}")
    _write(out, "h4_houses.csv", "rooms,area,age,price", rows)

    # H5: a date-time column next to ordinary features (with pyarrow installed, as in many stacks)
    rnd = random.Random(0)
    t0 = datetime.datetime(2023, 1, 1)
    rows = []
    for _ in range(400):
        v = rnd.randint(0, 40)
        ts = t0 + datetime.timedelta(minutes=rnd.randint(0, 500000))
        rows.append(f"{ts},{v},{rnd.choice(['free', 'pro'])},{int(v > 20)}")
    _write(out, "h5_events.csv", "created_at,visits,plan,upgraded", rows)

    # H6: an order export: a unique id and an ISO timestamp ride along with two real features
    rnd = random.Random(0)
    rows = []
    for i in range(20000):
        amt = rnd.uniform(5, 500); items = rnd.randint(1, 9)  # noqa: E702
        ts = (datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=17 * i)).isoformat()
        rows.append(f"ORD-{100000 + i},{ts},{amt:.2f},{items},{int(amt > 300 and items < 3)}")
    _write(out, "h6_orders.csv", "order_id,created_at,amount,items,returned", rows)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("field")
    write_field_cases(str(folder))
    return folder


def cli_run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def notes_of(caught):
    return [str(w.message) for w in caught if issubclass(w.category, DataNote)]


def r2(pred, y):
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    return 1.0 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()


# ---- H1: a trailing delimiter on every data row

def _assert_trailing_refusal(message, name):
    assert "\n" not in message.strip(), message
    assert name in message, message
    assert "line 2" in message, message
    assert "ends with a separator" in message, message


def _h1_labels(cases):
    return (pd.read_csv(cases / "h1_score_clean.csv").a > 0.5).astype(int).to_numpy()


H1_TRAIN = ("--hidden", 8, "--epochs", 50, "--lr", 0.01, "-q")


@pytest.fixture(scope="module")
def h1_run(cases):
    out = cases / "h1_run"
    r = cli_run("train", cases / "h1_train.csv", "--out", out, *H1_TRAIN)
    assert r.exit_code == 0, r.output
    return out


def test_h1_cli_predict_refuses_trailing_delimiter(cases, h1_run):
    for extra in ((), ("--proba",)):
        r = cli_run("predict", h1_run, cases / "h1_score_trailing.csv", *extra)
        assert r.exit_code == 1, r.output
        assert r.stdout == ""
        assert r.stderr.count("Error:") == 1, r.stderr
        error = next(line for line in r.stderr.splitlines() if line.startswith("Error:"))
        _assert_trailing_refusal(error, "h1_score_trailing.csv")
    # with --out, no file is left behind
    target = cases / "h1_pred_trailing.csv"
    r = cli_run("predict", h1_run, cases / "h1_score_trailing.csv", "--out", target)
    assert r.exit_code == 1 and r.stdout == ""
    _assert_trailing_refusal(r.stderr, "h1_score_trailing.csv")
    assert not target.exists()


def test_h1_cli_evaluate_and_train_refuse_trailing_delimiter(cases, h1_run):
    # the labelled file with the same habit: evaluate and train read it with the same reader
    labelled = cases / "h1_trailing_labelled.csv"
    for args in (("evaluate", h1_run, labelled), ("evaluate", h1_run, labelled, "--json"),
                 ("train", labelled, "--out", cases / "h1_never", *H1_TRAIN)):
        r = cli_run(*args)
        assert r.exit_code == 1, (args, r.output)
        assert r.stdout == "", args
        _assert_trailing_refusal(r.stderr.strip().splitlines()[-1], "h1_trailing_labelled.csv")
    assert not (cases / "h1_never").exists()
    # the unlabelled file cannot be evaluated either: refused, naming the file, nothing on stdout
    r = cli_run("evaluate", h1_run, cases / "h1_score_trailing.csv")
    assert r.exit_code == 1 and r.stdout == ""
    assert "Error:" in r.stderr and "h1_score_trailing.csv" in r.stderr


def test_h1_cli_predicts_clean_file(cases, h1_run):
    r = cli_run("predict", h1_run, cases / "h1_score_clean.csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 401
    pred = np.array([int(v) for v in lines[1:]])
    assert (pred == _h1_labels(cases)).mean() >= 0.95


def test_h1_python_api(cases, tmp_path):
    run = tabular.train(str(cases / "h1_train.csv"), hidden_layer_sizes=(8,), max_iter=50,
                        learning_rate_init=0.01, out=str(tmp_path / "run"))
    for call in (lambda: run.predict(str(cases / "h1_score_trailing.csv")),
                 lambda: run.predict_proba(str(cases / "h1_score_trailing.csv")),
                 lambda: run.transform(str(cases / "h1_score_trailing.csv"))):
        with pytest.raises(DataError) as err:
            call()
        _assert_trailing_refusal(str(err.value), "h1_score_trailing.csv")
    with pytest.raises(DataError) as err:
        run.evaluate(str(cases / "h1_trailing_labelled.csv"))
    _assert_trailing_refusal(str(err.value), "h1_trailing_labelled.csv")
    with pytest.raises(DataError) as err:
        tabular.train(str(cases / "h1_trailing_labelled.csv"), hidden_layer_sizes=(8,), max_iter=1)
    _assert_trailing_refusal(str(err.value), "h1_trailing_labelled.csv")

    y = _h1_labels(cases)
    assert (run.predict(str(cases / "h1_score_clean.csv")) == y).mean() >= 0.95
    loaded = mlpfast.load(str(tmp_path / "run"))
    frame = pd.read_csv(cases / "h1_score_clean.csv")
    pred = loaded.predict(frame)
    assert (pred == y).mean() >= 0.95
    np.testing.assert_array_equal(pred, run.predict(str(cases / "h1_score_clean.csv")))


# ---- H2: a class with a single row, whatever the seed

def test_h2_singleton_class_same_outcome_every_seed(cases, tmp_path):
    path = cases / "h2_singleton_class.csv"
    outcomes = set()
    for seed in range(8):
        r = cli_run("train", path, "--out", tmp_path / f"s{seed}", "--seed", seed,
                    "--epochs", 1, "--hidden", 8, "-q")
        assert r.exit_code == 0, (seed, r.output)
        assert "np.str_" not in r.output
        notes = [line for line in r.stderr.splitlines() if "rotor" in line]
        assert len(notes) == 1, (seed, r.stderr)
        note = notes[0]
        assert note.startswith("note:")
        assert "'rotor'" in note and "1 row" in note and "line 122" in note, note
        outcomes.add((r.exit_code, note))
    assert len(outcomes) == 1, outcomes


def test_h2_python_api_keeps_the_row_in_training(cases):
    path = str(cases / "h2_singleton_class.csv")
    codes = pd.read_csv(path).fault.map({"bearing": 0, "none": 1, "rotor": 2}).to_numpy()
    for seed in range(8):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = tabular.train(path, seed=seed, hidden_layer_sizes=(8,), max_iter=1)
        rotor = [n for n in notes_of(caught) if "rotor" in n]
        assert len(rotor) == 1 and "1 row" in rotor[0] and "line 122" in rotor[0], rotor
        assert run.schema.classes == ["bearing", "none", "rotor"]
        train_idx, val_idx, small = split(len(codes), 0.1, seed, codes)
        assert 120 in train_idx and 120 not in val_idx and small == [2]


# ---- H3: a finite sentinel (1e300) in one column

def test_h3_sentinel_statistics_finite_and_named(cases, tmp_path):
    path = str(cases / "h3_sentinel.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tabular.train(path, hidden_layer_sizes=(8,), max_iter=2, out=str(tmp_path / "run"))
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert runtime == [], runtime
    loaded = mlpfast.load(str(tmp_path / "run"))
    for col in loaded.schema.columns:
        if col.role == "numeric":
            stats = [col.c0, col.s0, col.m, col.s, col.fill, col.center, col.scale]
            assert np.isfinite(stats).all(), (col.name, stats)
            assert col.s0 > 0 and col.s > 0
    X = loaded.transform(path)
    assert np.isfinite(X).all()
    notes = [n for n in notes_of(caught) if "'reading'" in n]
    assert notes, notes_of(caught)
    assert not any("'other'" in n for n in notes_of(caught))


def test_h3_suggested_na_value_restores_accuracy(cases, tmp_path):
    path = cases / "h3_sentinel.csv"
    r = cli_run("train", path, "--out", tmp_path / "raw", "--epochs", 1, "--hidden", 8, "-q")
    assert r.exit_code == 0, r.output
    assert "RuntimeWarning" not in r.output and "overflow" not in r.output
    note = next(line for line in r.stderr.splitlines() if "'reading'" in line)
    assert note.startswith("note:")
    suggested = re.search(r"--na-values (\S+?)[,;.]?(\s|$)", note)
    assert suggested, note
    value = suggested.group(1)
    r = cli_run("train", path, "--out", tmp_path / "na", "--na-values", value,
                "--epochs", 30, "--hidden", 16, "--lr", 0.01, "-q")
    assert r.exit_code == 0, r.output
    assert not any("'reading'" in line and "extreme" in line for line in r.stderr.splitlines())
    best = json.loads((tmp_path / "na" / "run.json").read_text())["best"]
    assert best["val_accuracy"] >= 0.9, best


# ---- H4: a price-scale regression target

@pytest.fixture(scope="module")
def h4_run(cases):
    out = cases / "h4_run"
    r = cli_run("train", cases / "h4_houses.csv", "--target", "price", "--out", out, "-q")
    assert r.exit_code == 0, r.output
    return out


def test_h4_cli_defaults_reach_r2(cases, h4_run):
    summary = json.loads((h4_run / "run.json").read_text())
    assert summary["best"]["val_r2"] >= 0.95, summary["best"]
    r = cli_run("evaluate", h4_run, cases / "h4_houses.csv", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["r2"] >= 0.95, result
    # in price units: the noise alone is N(0, 5000), so an MAE of thousands, not ~0.1
    assert 1000 <= result["mae"] <= 20000, result
    r = cli_run("predict", h4_run, cases / "h4_houses.csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "prediction" and len(lines) == 2001
    pred = np.array([float(v) for v in lines[1:]])
    price = pd.read_csv(cases / "h4_houses.csv").price.to_numpy()
    assert r2(pred, price) >= 0.95
    assert abs(pred.mean() - price.mean()) < 0.05 * price.mean()


def test_h4_python_api(cases, tmp_path):
    path = str(cases / "h4_houses.csv")
    run = tabular.train(path, target="price", hidden_layer_sizes=(128,), max_iter=50,
                        out=str(tmp_path / "run"))
    assert run.summary["best"]["val_r2"] >= 0.95
    result = run.evaluate(path)
    assert result["r2"] >= 0.95 and 1000 <= result["mae"] <= 20000, result
    frame = pd.read_csv(path)
    pred = mlpfast.load(str(tmp_path / "run")).predict(frame.drop(columns="price"))
    assert r2(pred, frame.price) >= 0.95
    np.testing.assert_allclose(pred, run.predict(path), rtol=1e-6)


# ---- H5: a date-time column, and one stored schema for every command

def test_h5_cli_train_evaluate_predict_same_file(cases, tmp_path):
    path, out = cases / "h5_events.csv", tmp_path / "run"
    r = cli_run("train", path, "--out", out, "--epochs", 3, "--hidden", 8, "-q")
    assert r.exit_code == 0, r.output
    r = cli_run("evaluate", out, path, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == 400
    r = cli_run("predict", out, path)
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 401
    roles = json.loads((out / "run.json").read_text())["data"]["roles"]
    assert roles["created_at"] == "datetime"
    schema = {c.name: c.role for c in mlpfast.load(str(out)).schema.columns}
    assert schema["created_at"] == "datetime"


def test_h5_python_api_frames_predict_like_the_file(cases, tmp_path):
    path = str(cases / "h5_events.csv")
    run = tabular.train(path, hidden_layer_sizes=(8,), max_iter=20, learning_rate_init=0.01,
                        out=str(tmp_path / "run"))
    assert {c.name: c.role for c in run.schema.columns}["created_at"] == "datetime"
    loaded = mlpfast.load(str(tmp_path / "run"))
    from_file = run.predict(path)
    np.testing.assert_array_equal(loaded.predict(path), from_file)
    frames = {"default": pd.read_csv(path),
              "parse_dates": pd.read_csv(path, parse_dates=["created_at"]),
              "pyarrow engine": pd.read_csv(path, engine="pyarrow"),
              "pyarrow engine and dtypes": pd.read_csv(path, engine="pyarrow",
                                                       dtype_backend="pyarrow")}
    for how, frame in frames.items():
        np.testing.assert_array_equal(loaded.transform(frame), run.transform(path), err_msg=how)
        np.testing.assert_array_equal(loaded.predict(frame), from_file, err_msg=how)
    assert loaded.evaluate(path)["rows"] == 400


# ---- H6: an identifier and a timestamp beside two real features

def test_h6_cli_id_left_out_timestamp_numeric(cases, tmp_path):
    out = tmp_path / "run"
    r = cli_run("train", cases / "h6_orders.csv", "--target", "returned", "--epochs", 2,
                "--out", out, "-q")
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if "'order_id'" in line]
    assert notes and notes[0].startswith("note:") and "left out" in notes[0], r.stderr
    data = json.loads((out / "run.json").read_text())["data"]
    assert data["left_out"] == ["order_id"] and "order_id" not in data["columns"]
    assert data["roles"]["created_at"] == "datetime"
    assert data["n_features"] < 10, data


def test_h6_python_api(cases):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = tabular.train(str(cases / "h6_orders.csv"), target="returned",
                            hidden_layer_sizes=(8,), max_iter=1)
    assert any("'order_id'" in n for n in notes_of(caught)), notes_of(caught)
    assert run.schema.dropped == ["order_id"]
    assert {c.name: c.role for c in run.schema.columns}["created_at"] == "datetime"
    assert run.schema.n_features < 10
