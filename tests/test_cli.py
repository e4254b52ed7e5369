"""The command line through Click's CliRunner: end to end on the shipped data, the run folder's
schema, model round trips, and the error matrix (exit code, one-line message, no partial files)."""
import csv
import json
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import DATASETS

import mlpfast
from mlpfast.cli.main import cli

LETTERS = str(DATASETS / "letter-recognition.csv")
ADULT = str(DATASETS / "adult.csv")

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")


def run(*args, **kw):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, **kw)
    return result


@pytest.fixture
def small_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({
        "x1": rng.standard_normal(n),
        "x2": rng.integers(0, 10, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "flag": rng.random(n) > 0.5,
    })
    df["label"] = np.where(df.x1 + (df.colour == "red") > 0.5, "yes", "no")
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def trained(tmp_path, small_csv):
    out = tmp_path / "run"
    r = run("train", small_csv, "--out", out, "--epochs", 5, "--hidden", "8", "--quiet")
    assert r.exit_code == 0, r.output
    return out


def _files(folder):
    return sorted(os.listdir(folder)) if os.path.exists(folder) else []


# ---- end to end on the shipped data

@pytest.mark.slow
def test_letters_train_predict_evaluate(tmp_path):
    out = tmp_path / "letters"
    r = run("train", "--out", out, "--hidden", "128", "--epochs", 40)
    assert r.exit_code == 0, r.output
    assert _files(out) == ["checkpoint.npz", "metrics.csv", "model.npz", "run.json"]
    assert "task: classification (target 'Letter' has 26 text labels" in r.stderr
    summary = json.loads((out / "run.json").read_text())
    assert summary["best"]["val_accuracy"] > 0.92
    r = run("predict", out, LETTERS, "--proba")
    lines = r.stdout.splitlines()
    assert len(lines) == 20001 and lines[0].split(",")[:2] == ["prediction", "proba_A"]
    r = run("evaluate", out, LETTERS, "--json")
    result = json.loads(r.stdout)
    assert result["accuracy"] > 0.93 and len(result["confusion_matrix"]) == 26
    assert sum(map(sum, result["confusion_matrix"])) == 20000


@pytest.mark.slow
def test_adult_matches_sklearn_within_one_point(tmp_path):
    # scikit-learn on the same split and encoding: one hidden layer of 64, 20 epochs
    sknn = pytest.importorskip("sklearn.neural_network")
    out = tmp_path / "adult"
    r = run("train", ADULT, "--out", out, "--hidden", "64", "--epochs", 20, "--val-fraction", 0.2)
    assert r.exit_code == 0, r.output
    assert "6 numeric, 8 categorical" in r.stderr
    trained_run = mlpfast.load(out)
    frame = pd.read_csv(ADULT)
    from mlpfast.tabular.split import split
    codes = np.unique(frame["income"].to_numpy(), return_inverse=True)[1]
    tr, va, _ = split(len(frame), 0.2, 0, codes)
    X = trained_run.transform(ADULT)
    X_tr, X_va = X[tr], X[va]
    y_tr, y_va = frame["income"].iloc[tr].to_numpy(), frame["income"].iloc[va].to_numpy()
    theirs = sknn.MLPClassifier((64,), max_iter=20, random_state=0).fit(X_tr, y_tr).score(X_va, y_va)
    ours = json.loads((out / "run.json").read_text())["final"]["val_accuracy"]
    assert ours >= theirs - 0.01, (ours, theirs)
    r = run("evaluate", out, ADULT)
    assert "accuracy" in r.stdout and "<=50K" in r.stdout


def test_run_folder_schema_and_round_trip(tmp_path, small_csv, trained):
    with open(trained / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                             "learning_rate", "epoch_seconds", "samples_per_second"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    summary = json.loads((trained / "run.json").read_text())
    for key in ("config", "data", "device", "versions", "compile_seconds", "total_seconds",
                "best_epoch", "final", "best"):
        assert key in summary
    assert len(summary["data"]["sha256"]) == 64 and summary["data"]["rows"] == 300
    # the model file needs no pickle, and predicting from it equals predicting from the run
    with np.load(trained / "model.npz", allow_pickle=False) as npz:
        assert "theta" in npz.files
    loaded = mlpfast.load(trained / "model.npz")
    expected = loaded.predict(small_csv)
    assert list(loaded.predict(pd.read_csv(small_csv))) == list(expected)
    out = tmp_path / "pred.csv"
    assert run("predict", trained, small_csv, "--out", out).exit_code == 0
    assert list(pd.read_csv(out)["prediction"]) == list(expected)


def test_regression_task_inferred(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.standard_normal(200), "b": rng.standard_normal(200)})
    df["y"] = 2 * df.a - df.b + 0.01 * rng.standard_normal(200)
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    r = run("train", path, "--out", tmp_path / "r", "--epochs", 100, "--lr", 0.01, "--hidden", "16")
    assert r.exit_code == 0, r.output
    assert "task: regression (target 'y' has 200 distinct numeric values" in r.stderr
    with open(tmp_path / "r" / "metrics.csv") as f:
        assert next(csv.reader(f)) == ["epoch", "train_loss", "val_loss", "val_r2",
                                       "learning_rate", "epoch_seconds", "samples_per_second"]
    res = json.loads(run("evaluate", tmp_path / "r", path, "--json").stdout)
    assert set(res) >= {"mse", "mae", "r2", "loss"} and res["r2"] > 0.9


def test_config_file_and_command_line_precedence(tmp_path, small_csv):
    conf = tmp_path / "c.toml"
    conf.write_text('hidden = [5, 3]\nepochs = 2\nactivation = "tanh"\n')
    out = tmp_path / "run"
    r = run("train", small_csv, "--config", conf, "--epochs", 3, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "run.json").read_text())["config"]
    assert cfg["hidden_layer_sizes"] == [5, 3] and cfg["activation"] == "tanh"
    assert cfg["max_iter"] == 3
    conf.write_text('hiden = [5]\n')
    r = run("train", small_csv, "--config", conf, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "unknown option 'hiden'" in r.output


def test_progress_hidden_when_not_a_terminal(tmp_path, small_csv):
    r = run("train", small_csv, "--out", tmp_path / "p", "--epochs", 3)
    assert r.exit_code == 0
    assert "epoch/s" not in r.stderr and "|" not in r.stderr
    assert r.stdout == ""  # stdout carries only what a command is asked to print
    assert "wrote" in r.stderr


def test_unseen_category_warns(tmp_path, small_csv, trained):
    df = pd.read_csv(small_csv)
    df.loc[:4, "colour"] = "purple"
    path = tmp_path / "new.csv"
    df.to_csv(path, index=False)
    r = run("predict", trained, path)
    assert r.exit_code == 0
    assert "note:" in r.stderr and "column 'colour' has 5 value(s) not seen in training" in r.stderr
    assert len(r.stdout.splitlines()) == 301


def test_ctrl_c_saves_metrics_and_best_model(tmp_path, small_csv, monkeypatch):
    from mlpfast.cli import train as train_mod
    original = train_mod._Monitor.__call__

    def interrupt_at_three(self, est, event):
        original(self, est, event)
        if event["kind"] == "epoch" and event["record"]["epoch"] == 3:
            raise KeyboardInterrupt
    monkeypatch.setattr(train_mod._Monitor, "__call__", interrupt_at_three)
    out = tmp_path / "int"
    r = run("train", small_csv, "--out", out, "--epochs", 50)
    assert r.exit_code == 130
    assert "Interrupted (SIGINT) after epoch 3" in r.stderr and str(out) in r.stderr
    assert _files(out) == ["checkpoint.npz", "metrics.csv", "model.npz", "run.json"]
    assert len(pd.read_csv(out / "metrics.csv")) == 3
    assert json.loads((out / "run.json").read_text())["interrupted"] is True
    mlpfast.load(out)


def test_python_dash_m_runs_the_cli(tmp_path):
    import subprocess
    import sys
    # run outside the checkout: there `-m` would import the source folder, which has no
    # mlpfast/cli (cli/ is mapped into the package at install time)
    out = subprocess.run([sys.executable, "-m", "mlpfast", "--version"], capture_output=True,
                         text=True, check=True, cwd=tmp_path)
    assert out.stdout.startswith("mlpfast, version")


def test_info_and_version():
    r = run("info")
    assert r.exit_code == 0 and "numba threading layer" in r.stdout and "cuda:" in r.stdout
    r = run("--version")
    assert r.exit_code == 0 and "mlpfast" in r.stdout
    for cmd in ("train", "predict", "evaluate", "info"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.stdout


# ---- the error matrix: exit code, one line naming the problem, no partial files

def _write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


ERRORS = [
    ("missing file", lambda t: t / "nope.csv", [], "nope.csv: file not found"),
    ("empty file", lambda t: _write(t, "e.csv", ""), [], "the file is empty"),
    ("header only", lambda t: _write(t, "h.csv", "a,b,c\n"), [], "has a header but no data rows"),
    ("binary", lambda t: _write(t, "b.csv", b"\x89PNG\x00\x01\x02", "wb"), [], "not a text CSV file"),
    ("ragged", lambda t: _write(t, "r.csv", "a,b,c\n1,2,x\n3,4,y\n5,6,7,8\n"), [],
     "line 4 has 4 fields, the header has 3"),
    ("no target", lambda t: _write(t, "n.csv", "a,b\n1,2\n3,4\n"), ["--target", "price"],
     "no target column 'price'; columns are ['a', 'b']"),
    ("one class", lambda t: _write(t, "o.csv", "a,y\n" + "1,k\n2,k\n3,k\n"), ["--task", "classification"],
     "has a single class ('k')"),
    ("too few rows", lambda t: _write(t, "f.csv", "a,y\n1,u\n2,v\n"), [], "too few to hold out"),
    ("infinite", lambda t: _write(t, "i.csv", "a,b,y\n1,2,u\n2,inf,v\n3,4,u\n4,5,v\n"), ["--val-fraction", 0.25],
     "column 'b' has an infinite value (inf) at line 3"),
    ("empty column", lambda t: _write(t, "c.csv", "a,b,y\n1,,u\n2,,v\n3,,u\n4,,v\n"), ["--val-fraction", 0.25],
     "column 'b' is entirely empty"),
    ("mostly numeric", lambda t: _write(t, "m.csv", "price,y\n" + "".join(f"{i},u\n" for i in range(30)) + "ten,v\n"),
     [], "column 'price' is numeric but for 1 value(s) ('ten' at line 32)"),
    ("unreadable config", lambda t: t / "x.csv", ["--config", "/nonexistent.toml"], None),
]


@pytest.mark.parametrize("case,make,args,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_train_errors(tmp_path, case, make, args, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    r = run("train", path, "--out", out, *args)
    if message is None:
        assert r.exit_code == 2  # a usage error, as Click reports it
        return
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and message in lines[-1], r.stderr
    assert "Traceback" not in r.output
    assert not (out / "model.npz").exists() and not list(tmp_path.glob("**/.tmp-*"))


def test_invalid_option_values_are_usage_errors(tmp_path, small_csv):
    for args in (["--epochs", 0], ["--activation", "swish"], ["--hidden", "10,x"],
                 ["--batch-size", "big"], ["--dropout", 1.5], ["--device", "tpu"]):
        r = run("train", small_csv, "--out", tmp_path / "o", *args)
        assert r.exit_code == 2, (args, r.output)
        assert "Invalid value" in r.stderr
    assert not (tmp_path / "o" / "model.npz").exists()


def test_device_cuda_without_gpu(tmp_path, small_csv, monkeypatch):
    from mlpfast import engine
    monkeypatch.setattr(engine, "cuda_status", lambda: (False, "no CUDA GPU or driver was found"))
    monkeypatch.setattr(engine, "simulator_enabled", lambda: False)
    out = tmp_path / "cuda"
    r = run("train", small_csv, "--device", "cuda", "--out", out)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "Error: device 'cuda' is not usable: no CUDA GPU or driver was found; use device='cpu' or 'auto' (--device cpu)")
    assert not out.exists()  # refused before the run folder is made
    r = run("train", small_csv, "--device", "auto", "--out", out, "--epochs", 2)
    assert r.exit_code == 0 and json.loads((out / "run.json").read_text())["device"] == "cpu"
    assert "device: auto -> cpu (no CUDA GPU or driver was found)" in r.stderr


def test_predict_errors(tmp_path, small_csv, trained):
    df = pd.read_csv(small_csv).drop(columns=["colour", "x2"])
    path = tmp_path / "cols.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "p.csv"
    r = run("predict", trained, path, "--out", out)
    assert r.exit_code == 1
    assert "missing column(s) ['x2', 'colour']" in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    bad = _write(tmp_path, "bad.npz", b"this is not a zip", "wb")
    r = run("predict", bad, small_csv)
    assert r.exit_code == 1 and "bad.npz: not a readable mlpfast model file" in r.stderr
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    r = run("evaluate", foreign, small_csv)
    assert r.exit_code == 1 and "not an mlpfast model file" in r.stderr
    r = run("evaluate", tmp_path / "nothing", small_csv)
    assert r.exit_code == 1 and "model file not found" in r.stderr
