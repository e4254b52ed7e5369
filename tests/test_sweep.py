"""mlpfast sweep and predict over many files, on a real dask.distributed LocalCluster of two
worker processes (not a mock): grids over files, failing trials, reruns, a worker killed
mid-trial, a stopped sweep, spec errors, and trials equal to `train` alone."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import mlpfast  # noqa: E402
from mlpfast import DataError, tabular  # noqa: E402
from mlpfast.sweeps import load_spec, trials_of  # noqa: E402
from mlpfast.tabular.options import DEFAULTS, library_options  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # no NUMBA_NUM_THREADS here: the Nanny would set it after the workers imported Numba,
    # which then refuses it at its next compilation (mlpfast.cluster sets threads per task)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address="127.0.0.1:0")
    with cluster, distributed.Client(cluster) as c:
        yield c


def _shop(path, seed, rows=400, broken=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    frame = pd.DataFrame(X, columns=list("abcd"))
    if not broken:
        frame["y"] = y
    frame.to_csv(path, index=False)


@pytest.fixture
def shops(tmp_path):
    (tmp_path / "shops").mkdir()
    for k in range(2):
        _shop(tmp_path / "shops" / f"s{k}.csv", k)
    return tmp_path


SPEC = """data = ["shops/*.csv"]
target = "y"
[options]
epochs = 4
[grid]
hidden = ["8", "16,8"]
seed = [0, 1]
"""


def _weights(folder):
    run = tabular.load(folder)
    return [np.array(c) for c in run.estimator.coefs_ + run.estimator.intercepts_]


def test_grid_over_two_files_each_trial_equals_train_alone(shops, client):
    (shops / "spec.toml").write_text(SPEC)
    out = shops / "sw"
    res = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    assert len(res) == 8 and set(res["status"]) == {"finished"}
    assert list(res.columns[:4]) == ["trial", "data", "hidden", "seed"]
    assert res["val_accuracy"].notna().all() and (res["epochs_run"] == 4).all()
    table = pd.read_csv(out / "results.csv")
    assert list(table["trial"]) == list(res["trial"])
    info = json.loads((out / "results.json").read_text())
    assert set(info["best"]) == {str(shops / "shops" / "s0.csv"), str(shops / "shops" / "s1.csv")}
    for data, trial in info["best"].items():
        rows = res[res["data"] == data]
        assert rows.loc[rows["trial"] == trial, "val_accuracy"].iloc[0] == rows["val_accuracy"].max()
    # a trial is the run `train` makes with its options, bit for bit (the worker's data cache
    # and the many trials before it change nothing)
    for k in (0, 7):
        row = res.iloc[k]
        alone = tabular.train(row["data"], target="y", max_iter=4, seed=int(row["seed"]),
                              hidden_layer_sizes=tuple(int(v) for v in str(row["hidden"]).split(",")),
                              **{key: v for key, v in library_options({}).items()
                                 if key in ("learning_rate_init", "alpha", "tol", "batch_size",
                                            "momentum", "n_iter_no_change")})
        got = _weights(row["folder"])
        want = [np.array(c) for c in alone.estimator.coefs_ + alone.estimator.intercepts_]
        assert all(np.array_equal(a, b) for a, b in zip(got, want))
        assert (pd.read_csv(os.path.join(row["folder"], "metrics.csv"))["epoch"] == [1, 2, 3, 4]).all()


def test_failing_trials_are_rows_and_the_rest_finish_and_a_rerun_skips(shops, client):
    _shop(shops / "shops" / "s2.csv", 2, broken=True)  # no target column
    (shops / "spec.toml").write_text(SPEC.replace('seed = [0, 1]', 'lr = [0.001, -1]'))
    out = shops / "sw"
    res = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    assert len(res) == 12
    bad_lr = res[res["lr"] == -1]
    assert set(bad_lr["status"]) == {"failed"}
    assert all("lr = -1" in e for e in bad_lr["error"])
    no_target = res[(res["data"].str.endswith("s2.csv")) & (res["lr"] == 0.001)]
    assert set(no_target["status"]) == {"failed"}
    assert all("'y'" in e for e in no_target["error"])
    good = res[(res["lr"] == 0.001) & ~res["data"].str.endswith("s2.csv")]
    assert len(good) == 4 and set(good["status"]) == {"finished"}
    again = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    assert list(again["status"]) == ["skipped" if s == "finished" else "failed"
                                     for s in res["status"]]
    assert (again.loc[again["status"] == "skipped", "val_accuracy"].values ==
            good["val_accuracy"].values).all()
    # a changed data file makes its trials run again
    _shop(shops / "shops" / "s0.csv", 10)
    third = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    s0 = third[third["data"].str.endswith("s0.csv") & (third["lr"] == 0.001)]
    assert set(s0["status"]) == {"finished"}
    s1 = third[third["data"].str.endswith("s1.csv") & (third["lr"] == 0.001)]
    assert set(s1["status"]) == {"skipped"}


def test_a_worker_killed_mid_trial_is_retried_from_its_checkpoint(shops, client):
    _shop(shops / "shops" / "s0.csv", 0, rows=20000)
    (shops / "spec.toml").write_text('data = "shops/s0.csv"\ntarget = "y"\n[options]\n'
                                     'epochs = 60\npatience = 60\nhidden = "256,256"\n')
    out = shops / "sw"
    folder = None
    killed = {}

    def killer():
        nonlocal folder
        deadline = time.time() + 120
        while time.time() < deadline:
            trials = list((out / "trials").glob("*/run.json")) if (out / "trials").exists() else []
            if trials:
                summary = json.loads(trials[0].read_text())
                if summary.get("status") == "running" and summary.get("epochs_run", 0) >= 3:
                    folder = trials[0].parent
                    killed["epochs"] = summary["epochs_run"]
                    pids = client.run(os.getpid)
                    busy = [a for a, tasks in client.processing().items() if tasks]
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    res = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    t.join()
    assert killed, "the trial was never seen running"
    row = res.iloc[0]
    # dask gives the task of a dead worker to another (up to allowed-failures times), which
    # resumes the trial from its checkpoint: the run an unkilled run makes, bit for bit
    assert row["status"] == "finished", row["error"]
    assert row["epochs_run"] == 60
    alone = tabular.train(str(shops / "shops" / "s0.csv"), target="y", max_iter=60,
                          n_iter_no_change=60, hidden_layer_sizes=(256, 256), tol=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(
        _weights(row["folder"]),
        [np.array(c) for c in alone.estimator.coefs_ + alone.estimator.intercepts_]))
    metrics = pd.read_csv(os.path.join(row["folder"], "metrics.csv"))
    assert list(metrics["epoch"]) == list(range(1, 61))


def test_a_stopped_sweep_writes_its_results_and_resumes(shops, client):
    _shop(shops / "shops" / "s0.csv", 0, rows=20000)
    (shops / "spec.toml").write_text('data = "shops/s0.csv"\ntarget = "y"\n[options]\n'
                                     'epochs = 60\npatience = 60\nhidden = "256,256"\n'
                                     '[grid]\nseed = [0, 1, 2, 3, 4, 5]\n')
    out = shops / "sw"
    stop = threading.Event()

    def stopper():
        deadline = time.time() + 120
        while time.time() < deadline and not stop.is_set():
            if list((out / "trials").glob("*/checkpoint.npz")) if (out / "trials").exists() else []:
                stop.set()
            time.sleep(0.05)

    t = threading.Thread(target=stopper)
    t.start()
    res = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out), stop=stop)
    t.join()
    assert res.attrs["interrupted"]
    assert "interrupted" in set(res["status"])
    assert set(res["status"]) <= {"interrupted", "not started", "finished"}
    assert list(pd.read_csv(out / "results.csv")["status"]) == list(res["status"])
    again = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(out))
    assert set(again["status"]) <= {"finished", "skipped"}
    assert (again["epochs_run"] == 60).all()


def test_random_draws_are_fixed_by_the_seed_and_in_range(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    spec = {"data": str(tmp_path / "d.csv"), "n_trials": 5, "random_seed": 3,
            "random": {"lr": {"log_uniform": [1e-4, 1e-2]}, "hidden": ["8", "16"],
                       "patience": {"int": [2, 4]}, "alpha": {"uniform": [0, 0.1]}},
            "grid": {"seed": [0, 1]}}
    one = trials_of(*load_spec(spec)[:2])
    two = trials_of(*load_spec(spec)[:2])
    assert [t.name for t in one] == [t.name for t in two] and len(one) == 10
    for t in one:
        assert 1e-4 <= t.varied["lr"] <= 1e-2 and t.varied["hidden"] in ("8", "16")
        assert t.varied["patience"] in (2, 3, 4) and 0 <= t.varied["alpha"] <= 0.1
    other = trials_of(*load_spec(dict(spec, random_seed=4))[:2])
    assert {t.name for t in other} != {t.name for t in one}


@pytest.mark.parametrize("spec, message", [
    ({"data": "x.csv", "epochs": 3}, "train options go in [options]"),
    ({"data": "nothing-*.csv"}, "matches no file"),
    ({"data": "d.csv", "grid": {"hiden": ["8"]}}, "'hiden' is not a train option"),
    ({"data": "d.csv", "grid": {"lr": 0.1}}, "is not a list of values"),
    ({"data": "d.csv", "n_trials": 3}, "has none"),
    ({"data": "d.csv", "n_trials": 3, "random": {"lr": {"log_uniform": [0, 1]}}}, "is not a range"),
    ({"data": "d.csv", "random": {"lr": [0.1]}}, "needs n_trials"),
    ({"target": "y"}, "no data"),
])
def test_spec_errors_name_the_key(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        trials_of(*load_spec(spec)[:2])


def test_spec_file_paths_are_relative_to_the_spec(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text("a,y\n1,0\n2,1\n")
    (tmp_path / "sub" / "s.toml").write_text('data = "d.csv"\n[options]\nval = "d.csv"\n')
    [trial] = trials_of(*load_spec(str(tmp_path / "sub" / "s.toml"))[:2])
    assert trial.data == str(tmp_path / "sub" / "d.csv")
    assert trial.options["val"] == str(tmp_path / "sub" / "d.csv")


def test_library_options_check_values_as_the_command_line_does():
    out = library_options({"hidden": "128,64", "lr": 0.01, "batch-size": 32, "epochs": 3,
                           "class_weight": "A=2,B=1", "features": "a, b"})
    assert out["hidden_layer_sizes"] == (128, 64) and out["learning_rate_init"] == 0.01
    assert out["batch_size"] == 32 and out["max_iter"] == 3 and out["features"] == ["a", "b"]
    assert out["class_weight"] == {"A": 2.0, "B": 1.0} and out["tol"] == 0.0
    for bad, message in [({"lr": 0}, "lr = 0"), ({"epochs": 2.5}, "epochs = 2.5"),
                         ({"hidden": "64,x"}, "hidden"), ({"optimizer": "rmsprop"}, "one of"),
                         ({"dropout": 1}, "dropout = 1"), ({"early_stopping": "yes"}, "true or false"),
                         ({"nope": 1}, "unknown option 'nope'")]:
        with pytest.raises(DataError, match=message):
            library_options(bad)


def test_the_command_line_defaults_are_the_library_defaults():
    from mlpfast.cli.train import train
    names = {"val_file": "val", "test_file": "test"}
    for p in train.params:
        name = names.get(p.name, p.name)
        if name in DEFAULTS:
            given = None if type(p.default).__name__ == "Sentinel" else p.default
            assert given == DEFAULTS[name], name


def test_predict_many_files_equals_predict_each(shops, client):
    tabular.train(str(shops / "shops" / "s0.csv"), target="y", max_iter=3,
                  hidden_layer_sizes=(8,), out=str(shops / "run"))
    _shop(shops / "shops" / "s2.csv", 2, broken=True)  # no target: predicts all the same
    (shops / "shops" / "bad.csv").write_text("a,b\n1,2\n")  # columns missing
    from mlpfast.tabular.many import predict_files
    results = predict_files(str(shops / "run"), [str(shops / "shops" / "*.csv")],
                            str(shops / "preds"), proba=True, client=client)
    by = {os.path.basename(r["data"]): r for r in results}
    assert by["bad.csv"]["status"] == "failed" and "'c'" in by["bad.csv"]["error"]
    assert not (shops / "preds" / "bad.csv").exists()
    run = tabular.load(str(shops / "run"))
    for name in ("s0.csv", "s1.csv", "s2.csv"):
        assert by[name]["status"] == "written"
        got = pd.read_csv(shops / "preds" / name)
        assert list(got["prediction"]) == list(run.predict(str(shops / "shops" / name)))
        assert by[name]["rows"] == len(got)
    with pytest.raises(DataError, match="would both be predicted"):
        (shops / "other").mkdir()
        _shop(shops / "other" / "s0.csv", 3)
        predict_files(str(shops / "run"), [str(shops / "shops" / "s0.csv"),
                                           str(shops / "other" / "s0.csv")],
                      str(shops / "preds"), client=client)


def _cli(args, cwd, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "mlpfast", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, **kwargs)


def test_cli_sweep_on_its_own_local_cluster(shops):
    (shops / "spec.toml").write_text(SPEC.replace("seed = [0, 1]", 'lr = [0.001, -1]'))
    r = _cli(["sweep", "spec.toml", "--workers", "2"], shops, timeout=600)
    assert r.returncode == 1, r.stderr
    assert "8 trials: 4 finished, 4 failed" in r.stderr
    assert "best for s0.csv:" in r.stderr and "best for s1.csv:" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("Error: 4 of 8 trials failed (first: ")
    assert "Traceback" not in r.stderr
    assert len(pd.read_csv(shops / "sweeps" / "spec" / "results.csv")) == 8
    r = _cli(["predict", str(shops / "sweeps" / "spec" / "trials" /
                             pd.read_csv(shops / "sweeps" / "spec" / "results.csv")["trial"][0]),
              "shops/*.csv", "--out-dir", "preds", "--workers", "2"], shops, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "wrote 2 files (800 rows) to preds" in r.stderr
    assert sorted(os.listdir(shops / "preds")) == ["s0.csv", "s1.csv"]


def test_cli_sweep_sigterm_stops_with_results_so_far(shops):
    _shop(shops / "shops" / "s0.csv", 0, rows=20000)
    (shops / "spec.toml").write_text('data = "shops/s0.csv"\ntarget = "y"\n[options]\n'
                                     'epochs = 2000\npatience = 2000\nhidden = "256,256"\n'
                                     '[grid]\nlr = [0.001, 0.002, 0.003]\n')
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mlpfast"), "sweep",
                          "spec.toml", "--workers", "2"], cwd=shops, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    trials = shops / "sweeps" / "spec" / "trials"
    while time.time() < deadline and not (trials.exists() and list(trials.glob("*/checkpoint.npz"))):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("Interrupted (SIGTERM): ")
    assert "Traceback" not in err
    table = pd.read_csv(shops / "sweeps" / "spec" / "results.csv")
    assert "interrupted" in set(table["status"])


def test_without_dask_sweep_says_what_to_install(monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(mlpfast.MLPFastError, match=r"pip install 'mlpfast\[dask\]'"):
        mlpfast.sweep({"data": "x.csv"})


def test_a_file_is_read_once_per_process_with_the_cache_and_trains_the_same(shops, monkeypatch):
    from mlpfast.tabular import flow
    calls = []
    real = flow.learn_schema

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    path = str(shops / "shops" / "s0.csv")
    plain = [tabular.train(path, target="y", max_iter=2, hidden_layer_sizes=(8,), seed=s)
             for s in (0, 1)]
    monkeypatch.setattr(flow, "learn_schema", counted)
    flow.cache_data(True)
    try:
        cached = [tabular.train(path, target="y", max_iter=2, hidden_layer_sizes=(8,), seed=s)
                  for s in (0, 1)]
        assert len(calls) == 1  # read (both passes) once, not once per run
        # another option that changes how the file is read is another entry
        tabular.train(path, target="y", max_iter=1, hidden_layer_sizes=(8,), drop=["d"])
        assert len(calls) == 2
        # a changed file is read again
        _shop(shops / "shops" / "s0.csv", 5)
        tabular.train(path, target="y", max_iter=1, hidden_layer_sizes=(8,))
        assert len(calls) == 3
    finally:
        flow.cache_data(False)
    for a, b in zip(plain, cached):
        assert all(np.array_equal(x, y) for x, y in zip(a.estimator.coefs_, b.estimator.coefs_))
        assert a.schema.columns[0].m == b.schema.columns[0].m


def test_trials_trained_together_equal_their_runs_alone(shops, client):
    (shops / "spec.toml").write_text('data = "shops/s0.csv"\ntarget = "y"\n[options]\n'
                                     'epochs = 3\nhidden = "16"\nbatch_size = 32\n'
                                     '[grid]\nlr = [0.001, 0.003]\nalpha = [0.0001, 0.01]\n'
                                     'dropout = [0.0, 0.2]\n')
    together = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(shops / "a"))
    alone = mlpfast.sweep(str(shops / "spec.toml"), client=client, out=str(shops / "b"),
                          together=False)
    assert list(together["together"]) == [8] * 8 and list(alone["together"]) == [1] * 8
    assert set(together["status"]) == set(alone["status"]) == {"finished"}
    for a, b in zip(together["folder"], alone["folder"]):
        assert all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))
        assert (pd.read_csv(os.path.join(a, "metrics.csv"))["train_loss"].values ==
                pd.read_csv(os.path.join(b, "metrics.csv"))["train_loss"].values).all()


def test_predict_many_refuses_to_replace_files_unless_forced(shops, client):
    from mlpfast.tabular.many import predict_files
    tabular.train(str(shops / "shops" / "s0.csv"), target="y", max_iter=2,
                  hidden_layer_sizes=(8,), out=str(shops / "run"))
    (shops / "preds").mkdir()
    (shops / "preds" / "s1.csv").write_text("precious\n")
    with pytest.raises(DataError, match="s1.csv exist.* already; pass --force"):
        predict_files(str(shops / "run"), [str(shops / "shops" / "*.csv")],
                      str(shops / "preds"), client=client)
    assert (shops / "preds" / "s1.csv").read_text() == "precious\n"
    assert not (shops / "preds" / "s0.csv").exists()
    results = predict_files(str(shops / "run"), [str(shops / "shops" / "*.csv")],
                            str(shops / "preds"), client=client, force=True)
    assert [r["status"] for r in results] == ["written", "written"]
    assert (shops / "preds" / "s1.csv").read_text().startswith("prediction\n")


def test_spec_target_given_twice_must_agree(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    spec = {"data": str(tmp_path / "d.csv"), "target": "y", "options": {"target": "a"}}
    with pytest.raises(DataError, match="disagree"):
        trials_of(*load_spec(spec)[:2])
    [t] = trials_of(*load_spec(dict(spec, options={"target": "y"}))[:2])
    assert t.options["target"] == "y"


def test_equal_values_spelt_differently_are_one_trial(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    spec = {"data": str(tmp_path / "d.csv"),
            "grid": {"seed": [1, 1.0, "1"], "hidden": ["8", 8, [8], "8,"]}}
    assert len(trials_of(*load_spec(spec)[:2])) == 1


@pytest.mark.parametrize("spec, message", [
    ({"data": []}, "names no file"),
    ({"data": "d.csv", "together": "false"}, "together = 'false' is not true or false"),
])
def test_more_spec_errors(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    with pytest.raises(DataError, match=message):
        mlpfast.sweep(spec, out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("address, message", [
    ("nonsense", "not a scheduler address"),
    ("tcp://127.0.0.1:1", "cannot reach the dask scheduler at tcp://127.0.0.1:1"),
])
def test_a_scheduler_that_cannot_be_reached_is_one_error_and_leaves_nothing(tmp_path, address,
                                                                              message,
                                                                              monkeypatch):
    from mlpfast import cluster
    from mlpfast.cluster import ClusterError
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 3.0)
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    with pytest.raises(ClusterError, match=message):
        mlpfast.sweep({"data": str(tmp_path / "d.csv")}, out=str(tmp_path / "o"),
                      scheduler=address)
    assert not (tmp_path / "o").exists()


def _say_pending(pending):
    # on a worker: its compiling.pending answers `pending` (None: the real one again)
    from mlpfast import compiling
    if pending is None:
        compiling.pending = compiling._real_pending
    else:
        compiling._real_pending = getattr(compiling, "_real_pending", compiling.pending)
        compiling.pending = lambda kernels, dtype: [k for k in kernels if k in pending]


def test_workers_about_to_compile_are_announced_and_the_end_logged(client, caplog):
    # an empty kernel cache on a worker cannot be had in a test's time (a minute of
    # compiling): the workers' answer to "will it compile" is set, the warm-up itself is real
    from mlpfast import cluster
    client.run(_say_pending, ["train", "shuffle"])
    try:
        with caplog.at_level("INFO", logger="mlpfast"):
            assert cluster.warm_up(client, kernels=("train",), dtypes=("float32",))
    finally:
        client.run(_say_pending, None)
    notices = [r for r in caplog.records if getattr(r, "mlpfast_compiling", None)]
    ends = [r for r in caplog.records if getattr(r, "mlpfast_compiled", None)]
    assert len(notices) == 1 and notices[0].levelname == "WARNING"
    assert set(notices[0].mlpfast_compiling) == {"shuffle", "train"}
    assert "on the sweep's workers" in notices[0].getMessage()
    assert "mlpfast compile" in notices[0].getMessage()
    assert len(ends) == 1 and set(ends[0].mlpfast_compiled) == {"shuffle", "train"}
    # nothing pending (the real answer after the warm-up above): no notice
    caplog.clear()
    with caplog.at_level("INFO", logger="mlpfast"):
        assert cluster.warm_up(client, kernels=("train",), dtypes=("float32",))
    assert not [r for r in caplog.records if getattr(r, "mlpfast_compiling", None)]


def test_kernels_of_a_sweep_follow_its_trials(tmp_path):
    from mlpfast.sweeps import _groups, _kernels_of
    (tmp_path / "a.csv").write_text("x,y\n1,0\n2,1\n")
    spec = tmp_path / "s.toml"
    spec.write_text('data = ["a.csv"]\ntarget = "y"\n[grid]\nlr = [0.001, 0.002]\n'
                    'optimizer = ["adam", "sgd"]\ndtype = ["float32", "float64"]\n')
    trials = trials_of(*load_spec(str(spec))[:2])
    kernels, dtypes, auto = _kernels_of(_groups(trials, True))
    assert set(kernels) == {"train", "predict", "together"}
    assert dtypes == ("float32", "float64") and auto == ()
    kernels, _, _ = _kernels_of(_groups(trials, False))
    assert "together" not in kernels
    # device 'auto' is the CPU on a worker without a GPU: its dtypes go to the workers apart
    spec.write_text('data = ["a.csv"]\ntarget = "y"\n[options]\ndevice = "auto"\n'
                    'dtype = "float64"\n[grid]\nseed = [0, 1]\n')
    kernels, dtypes, auto = _kernels_of(_groups(trials_of(*load_spec(str(spec))[:2]), True))
    assert dtypes == () and auto == ("float64",)
    from mlpfast import cluster
    from mlpfast.engine import resolve_device
    assert cluster._cpu_dtypes((), auto) == (["float64"] if resolve_device("auto") == "cpu"
                                              else [])
