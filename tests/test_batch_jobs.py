"""Training as a batch job: SIGTERM and SIGHUP handled like Ctrl-C, Ctrl-C anywhere a one-line
exit, divergence stopped where it happens with the epochs before it kept."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import DATASETS

import mlpfast
from mlpfast import tabular
from mlpfast.errors import DivergenceError

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning",
                                        "ignore::mlpfast.errors.DataNote")
LETTERS = str(DATASETS / "letter-recognition.csv")


def start(args, cwd, **kw):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mlpfast", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(proc, text, timeout=120):
    """Read stderr lines until one holds `text` (the child is then past that point)."""
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}: {seen}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_scheduler_signal_mid_training_saves_like_ctrl_c(tmp_path, sig):
    out = tmp_path / "run"
    proc = start(["train", LETTERS, "--out", out, "--epochs", 2000, "--hidden", 16], tmp_path)
    wait_for(proc, "data:")
    end = time.time() + 120
    while not (out / "run.json").exists() and time.time() < end:  # the first checkpoint
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    name = signal.Signals(sig).name
    assert f"Interrupted ({name}) after epoch" in err and str(out) in err
    assert "Traceback" not in err
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.csv", "model.npz", "run.json"]
    summary = json.loads((out / "run.json").read_text())
    assert summary["interrupted"] is True and summary["epochs_run"] >= 1
    mlpfast.load(out).predict(LETTERS)


def test_signal_while_reading_is_one_line_and_leaves_nothing(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    out = tmp_path / "run"
    proc = start(["train", fifo, "--out", out], tmp_path)
    with open(fifo, "w") as w:  # a writer that stalls mid-file, as a slow network share does
        w.write("a,y\n1,0\n2,1\n")
        w.flush()
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Interrupted (SIGTERM)") and "nothing was saved" in last, err
    assert not out.exists()


def test_ctrl_c_during_predict_leaves_no_output_file(tmp_path):
    model = tmp_path / "m"
    tabular.train(LETTERS, target="Letter", out=model, hidden_layer_sizes=(8,), max_iter=1)
    big = tmp_path / "big.csv"
    with open(LETTERS) as f:
        header, *body = f.read().splitlines()
    big.write_text(header + "\n" + "".join(line + "\n" for line in body) * 50)
    dest = tmp_path / "pred.csv"
    proc = start(["predict", model, big, "--out", dest], tmp_path)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("prediction finished before the signal")
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Interrupted (SIGINT); nothing was written."
    assert not dest.exists() and not list(tmp_path.glob(".tmp-*"))


def test_divergence_stops_where_it_happens_and_keeps_the_epochs_before(tmp_path):
    def blow_up(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 3:
            est._lr = 1e12  # the next epoch's steps overflow
        return False

    out = tmp_path / "run"
    with pytest.raises(DivergenceError) as e:
        tabular.train(LETTERS, target="Letter", out=out, solver="sgd", hidden_layer_sizes=(16,),
                      max_iter=50, callback=blow_up)
    err = e.value
    assert err.epoch == 4 and err.step is not None and not np.isfinite(err.loss)
    assert "training diverged at epoch 4, by step" in str(err)
    assert err.folder == out and len(err.run.history) == 3
    run = mlpfast.load(out)
    assert np.isfinite(run.estimator._theta).all()
    assert json.loads((out / "run.json").read_text())["epochs_run"] == 3
    assert (run.predict(LETTERS) == run.predict(LETTERS)).all()


def test_divergence_through_the_cli_is_one_line(tmp_path):
    from click.testing import CliRunner

    from mlpfast.cli.main import cli
    p = tmp_path / "h.csv"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 300, 500)
    p.write_text("area,price\n" + "".join(f"{a:.1f},{1000 * a:.0f}\n" for a in x))
    r = CliRunner().invoke(cli, ["train", str(p), "--target", "price", "--optimizer", "sgd",
                                 "--lr", "10", "--no-scale-target", "--out", str(tmp_path / "r")])
    assert r.exit_code == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: training diverged at epoch 1, by step ")
    assert "lower --lr (now 10); nothing was saved" in last
    r = CliRunner().invoke(cli, ["train", str(p), "--lr", "inf"])
    assert r.exit_code == 2 and "inf is not a finite number" in r.stderr


@pytest.fixture
def small_run(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    out = tmp_path / "run"
    tabular.train(p, out=out, hidden_layer_sizes=(4,), max_iter=2)
    return p, out


def cli_run(*args):
    from click.testing import CliRunner

    from mlpfast.cli.main import cli
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_predict_never_replaces_its_inputs(small_run):
    data, model = small_run
    before = data.read_bytes()
    for target in (data, model / "model.npz"):
        r = cli_run("predict", model, data, "--out", target)
        assert r.exit_code == 1 and f"--out {target} is the input" in r.stderr
    assert data.read_bytes() == before
    mlpfast.load(model)


def test_predict_writes_through_devices_and_symlinks_and_keeps_permissions(small_run, tmp_path):
    data, model = small_run
    assert cli_run("predict", model, data, "--out", "/dev/null").exit_code == 0
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    real.chmod(0o600)
    new = tmp_path / "new.csv"
    old = os.umask(0o027)
    try:
        assert cli_run("predict", model, data, "--out", link).exit_code == 0
        assert cli_run("predict", model, data, "--out", new).exit_code == 0
    finally:
        os.umask(old)
    assert link.is_symlink() and real.read_text().startswith("prediction\n")
    assert (real.stat().st_mode & 0o777) == 0o600  # a replaced file keeps its permissions
    assert (new.stat().st_mode & 0o777) == 0o640   # a new one gets the umask's


def test_predict_prints_nothing_when_it_fails_midway(small_run, tmp_path):
    data, model = small_run
    bad = tmp_path / "bad.csv"
    # the bad value sits in the second block: the first block's rows must not reach stdout
    bad.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(600_000)) + "x,1\n")
    r = cli_run("predict", model, bad)
    assert r.exit_code == 1 and r.stdout == ""
    assert "column 'a' has 1 value(s) that are not a number, first 'x' at line 600002" in r.stderr


def test_run_folder_is_never_clobbered_and_replaced_whole_with_force(small_run, tmp_path):
    data, _ = small_run
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = cli_run("train", data, "--out", out, "--epochs", 1, "-q")
    assert r.exit_code == 1 and "already holds files; pass --force" in r.stderr
    assert sorted(os.listdir(out)) == ["notes.txt"]
    r = cli_run("train", data, "--out", out, "--epochs", 1, "-q", "--force")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.csv", "model.npz", "run.json"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".taken") and not p.endswith(".lock")]


def test_a_second_process_on_the_same_folder_fails_at_once(small_run, tmp_path):
    from mlpfast.tabular.folder import lock
    data, _ = small_run
    out = tmp_path / "busy"
    with lock(out):
        proc = start(["train", data, "--out", out, "--epochs", 1, "-q"], tmp_path)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"another mlpfast process is writing the run folder {out}" in err
    assert not out.exists()


def test_read_only_install_caches_kernels_in_the_temporary_folder(monkeypatch, caplog):
    from numba import config

    import mlpfast.kernels as kernels
    monkeypatch.setattr(kernels._os, "access", lambda path, mode: False)
    folder = kernels.choose_cache_dir("/usr/lib/site/mlpfast/kernels", "/home/u/.cache/numba")
    assert folder.startswith(kernels._tempfile.gettempdir()) and "mlpfast-numba-cache" in folder
    monkeypatch.setattr(config, "CACHE_DIR", "")
    with caplog.at_level("WARNING", logger="mlpfast"):
        kernels._route_cache()
    assert config.CACHE_DIR == folder
    assert "kernels are cached in" in caplog.text and "NUMBA_CACHE_DIR" in caplog.text
    def no_temporary_folder():
        raise FileNotFoundError("No usable temporary directory found")
    monkeypatch.setattr(kernels._tempfile, "gettempdir", no_temporary_folder)
    monkeypatch.setattr(config, "CACHE_DIR", "")
    caplog.clear()
    with caplog.at_level("WARNING", logger="mlpfast"):
        assert kernels._route_cache() is False  # the kernels are then compiled uncached
    assert "kernels are not cached" in caplog.text
    monkeypatch.setattr(kernels._os, "access", lambda path, mode: True)
    assert kernels.choose_cache_dir("/x", "/y") is None


def test_unwritable_numba_cache_dir_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    """NUMBA_CACHE_DIR naming a file or a folder this user cannot write: Numba would fail every
    kernel's decoration ('no locator available'), so the temporary folder is used, and said."""
    from numba import config

    import mlpfast.kernels as kernels
    a_file = tmp_path / "cache"
    a_file.write_text("")
    monkeypatch.setattr(config, "CACHE_DIR", str(a_file))
    with caplog.at_level("WARNING", logger="mlpfast"):
        assert kernels._route_cache() is True
    assert config.CACHE_DIR == kernels._temporary_cache()
    assert f"NUMBA_CACHE_DIR={a_file} is not a writable folder" in caplog.text
    assert "chmod -R a+rwX" in caplog.text
    # a writable folder is kept as it is, quietly
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "new" / "cache"))
    caplog.clear()
    with caplog.at_level("WARNING", logger="mlpfast"):
        assert kernels._route_cache() is True
    assert config.CACHE_DIR == str(tmp_path / "new" / "cache") and not caplog.text
    # read-only, and no temporary folder either: uncached
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels._os, "access", lambda path, mode: False)
    with caplog.at_level("WARNING", logger="mlpfast"):
        assert kernels._route_cache() is False
    assert "kernels are not cached" in caplog.text and config.CACHE_DIR == ""


def test_info_survives_an_unloadable_threading_layer(tmp_path):
    env = {**os.environ, "NUMBA_THREADING_LAYER": "tbb"}
    try:
        import tbb  # noqa: F401
        pytest.skip("tbb is installed here")
    except ImportError:
        pass
    done = subprocess.run([sys.executable, "-m", "mlpfast", "info"], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "numba threading layer: unavailable (No threading layer could be loaded)" in done.stdout


def _model_arrays(model):
    with np.load(model / "model.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("case,change,message", [
    ("integer weights", lambda a: a.update(theta=a["theta"].astype(np.int32)), "field 'theta' is int32"),
    ("complex weights", lambda a: a.update(theta=a["theta"].astype(np.complex64)), "field 'theta' is complex64"),
    ("float16 weights", lambda a: a.update(theta=a["theta"].astype(np.float16)), "weights of dtype float16"),
    ("text weights", lambda a: a.update(theta=a["theta"].astype(str)), "field 'theta' is <U"),
    ("too few weights", lambda a: a.update(theta=a["theta"][:3]), "(3,) weights declared for a network"),
    ("nan weights", lambda a: a["theta"].__setitem__(0, np.nan), "the weights hold non-finite values"),
    ("bad format field", lambda a: a.update(format_version=np.array("two")), "field 'format_version'"),
    ("no weights", lambda a: a.pop("theta"), "no field 'theta'"),
    ("unknown task", lambda a: a.update(schema_target=np.array(
        a["schema_target"].item().replace('"classification"', '"ranking"'))), "unknown task 'ranking'"),
    ("one class", lambda a: a.update(schema_class_offsets=a["schema_class_offsets"][:2],
                                     schema_class_bytes=a["schema_class_bytes"][:1]),
     "the model file is damaged"),
    ("too few roles", lambda a: a.update(schema_affine=a["schema_affine"][:1]), "rows of scaling"),
])
def test_damaged_model_files_are_one_line(small_run, tmp_path, case, change, message):
    data, model = small_run
    arrays = _model_arrays(model)
    change(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    r = cli_run("predict", bad, data)
    assert r.exit_code == 1, r.output
    line = r.stderr.strip()
    assert line.startswith("Error: ") and "\n" not in line and message in line, line


def test_a_model_declaring_huge_arrays_is_refused_before_reading(tmp_path):
    import zipfile
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (40_000_000_000,)
    bad = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bad, "w") as z:
        with z.open("theta.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 64)
    r = cli_run("predict", bad, "x.csv")
    assert r.exit_code == 1
    assert "member theta.npy declares 160,000,000,000 bytes and holds" in r.stderr


def _fit_in_child(seed):
    X = np.random.default_rng(seed).standard_normal((64, 3))
    try:
        mlpfast.MLPClassifier((4,), max_iter=2).fit(X, (X[:, 0] > 0).astype(int))
        return "trained"
    except mlpfast.DeviceError as exc:
        return str(exc)


def test_fork_after_fit_fails_at_once_instead_of_hanging():
    import multiprocessing
    import numba
    X = np.random.default_rng(0).standard_normal((256, 3))
    mlpfast.MLPClassifier((4,), max_iter=2).fit(X, (X[:, 0] > 0).astype(int))
    layer = numba.threading_layer()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map_async(_fit_in_child, [1, 2]).get(timeout=120)
    if layer == "omp":
        assert all("cannot train in a process forked after mlpfast trained" in g for g in got)
        assert all("get_context('spawn')" in g for g in got)
    else:
        assert got == ["trained", "trained"]


def test_a_stop_in_the_first_epoch_saves_a_checkpoint_that_resumes(tmp_path):
    import threading
    stop = threading.Event()
    chunks = []

    def watch(est, event):
        if event["kind"] == "chunk":
            chunks.append(event["rows_done"])
            if len(chunks) == 3:
                stop.set()
        return False
    kw = dict(target="Letter", hidden_layer_sizes=(32,), max_iter=3, batch_size=8)
    whole = tabular.train(LETTERS, out=tmp_path / "whole", **kw)
    run = tabular.train(LETTERS, out=tmp_path / "part", callback=watch, stop=stop, **kw)
    assert run.interrupted is not None and run.history == [] and chunks[-1] < 18000
    summary = json.loads((tmp_path / "part" / "run.json").read_text())
    assert summary["status"] == "interrupted" and summary["best"] is None
    done = tabular.resume(tmp_path / "part")
    assert np.array_equal(done.estimator._theta, whole.estimator._theta)
    assert [r["train_loss"] for r in done.history] == [r["train_loss"] for r in whole.history]


def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_last_complete_folder(tmp_path, monkeypatch):
    import errno

    from mlpfast.tabular import folder
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(60)))
    out = tmp_path / "run"
    tabular.train(data, out=out, hidden_layer_sizes=(4,), max_iter=2)
    before = {p: (out / p).read_bytes() for p in os.listdir(out)}
    real = folder.write_json

    def full_disk(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(folder, "write_json", full_disk)
    r = cli_run("train", data, "--out", out, "--force", "--epochs", 2, "-q")
    monkeypatch.setattr(folder, "write_json", real)
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines()[-1] == (f"Error: cannot write the run folder {out}: No "
                                                 "space left on device")
    assert {p: (out / p).read_bytes() for p in os.listdir(out)} == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".run.") and not p.endswith(".lock")]


def test_early_stopping_never_keeps_a_nan_epoch(monkeypatch):
    from mlpfast import MLPRegressor
    X = np.random.default_rng(0).standard_normal((300, 3))
    y = X @ [1.0, 2.0, 3.0]
    monkeypatch.setattr(MLPRegressor, "_validation_figures",
                        lambda self, X_val, y_val, w_val=None: {"val_loss": float("nan"), "val_score": float("nan")})
    with pytest.raises(ValueError, match="the validation score was never finite"):
        MLPRegressor(hidden_layer_sizes=(4,), early_stopping=True, max_iter=5, random_state=0).fit(X, y)


@pytest.fixture
def stopped_run(tmp_path):
    """A run stopped by request after its second epoch: a folder to resume."""
    import threading
    stop = threading.Event()

    def watch(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
            stop.set()
        return False
    out = tmp_path / "stopped"
    run = tabular.train(LETTERS, target="Letter", out=out, hidden_layer_sizes=(8,), max_iter=6,
                        callback=watch, stop=stop)
    assert run.interrupted is not None
    return out


@pytest.mark.parametrize("damage,message", [
    (lambda a: a.update(order=a["order"] + 10 ** 9), "row order is not a permutation"),
    (lambda a: a.update(theta=a["theta"].astype(np.int32)), "'theta' is int32"),
    (lambda a: a.update(opt1=a["opt1"].reshape(1, -1)), "'opt1' is float32 with 2 dimension(s)"),
    (lambda a: a.update(values=np.array("[1, 2]")), "'values' are damaged"),
    (lambda a: a.pop("rng"), "has no 'rng'"),
    (lambda a: a.update(rng=a["rng"][:0]), "generator or step counters are damaged"),
    (lambda a: a.update(counters=-a["counters"] - 1), "step counters are negative"),
])
def test_a_damaged_checkpoint_is_one_line(stopped_run, damage, message):
    path = stopped_run / "checkpoint.npz"
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    damage(arrays)
    np.savez(path, **arrays)
    r = cli_run("train", "--resume", stopped_run)
    assert r.exit_code == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: {stopped_run}: cannot resume: ") and message in last, last


def test_a_damaged_run_json_is_one_line(stopped_run):
    (stopped_run / "run.json").write_text("[1, 2]")
    r = cli_run("train", "--resume", stopped_run)
    assert r.exit_code == 1 and "run.json is damaged" in r.stderr


def test_resume_refuses_other_data_in_python():
    from mlpfast import MLPClassifier
    X = np.random.default_rng(0).standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    saved = {}

    def cb(est, event):
        if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
            saved["state"] = est.checkpoint()
            raise KeyboardInterrupt
        return False
    with pytest.raises(KeyboardInterrupt):
        MLPClassifier((4,), max_iter=5, random_state=0).fit(X, y, callback=cb)
    with pytest.raises(ValueError, match="the data differ from the checkpointed fit's"):
        MLPClassifier((4,), max_iter=5, random_state=0).resume(saved["state"], X[::-1], y[::-1])


def test_output_streams_append_and_a_full_disk_is_one_line(small_run, tmp_path):
    data, model = small_run
    log = tmp_path / "log.txt"
    log.write_text("earlier\n")
    with open(log, "a") as f:
        done = subprocess.run([sys.executable, "-m", "mlpfast", "predict", str(model), str(data),
                               "--out", "/dev/stdout"], stdout=f, stderr=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    assert done.returncode == 0 and log.read_text().startswith("earlier\nprediction\n")
    if os.path.exists("/dev/full"):
        r = cli_run("predict", model, data, "--out", "/dev/full")
        assert r.exit_code == 1 and r.stderr.strip() == "Error: cannot write /dev/full: No space left on device"


def test_a_refused_process_leaves_the_lock_to_its_holder(tmp_path):
    from mlpfast.errors import DataError
    from mlpfast.tabular.folder import lock
    out = tmp_path / "busy"
    with lock(out):
        for _ in range(2):  # the second try must be refused too
            with pytest.raises(DataError, match="another mlpfast process"):
                with lock(out):
                    pass


def test_a_writer_killed_between_the_renames_is_recovered(small_run, tmp_path):
    import shutil
    data, model = small_run
    # what a writer killed after its first rename leaves: the old folder aside, the new one
    # complete beside it, no folder under the name
    shutil.copytree(model, tmp_path / ".run.old-x")
    shutil.copytree(model, tmp_path / ".run.tmp-y")
    shutil.rmtree(model)
    assert len(mlpfast.load(model).predict(data)) == 40
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".run.")) == [".run.lock"]


def test_a_signal_right_at_startup_is_one_line(tmp_path):
    for delay in (0.25, 0.5):  # importing, before any command code runs
        proc = start(["train", LETTERS, "--out", tmp_path / "r"], tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            continue
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("Interrupted (SIGINT)")


def test_resume_names_conflicts_as_options_are_written(stopped_run):
    r = cli_run("train", "--resume", stopped_run, "--hidden", "16,8", "--target", "Letter")
    assert r.exit_code == 1
    assert "options differ from the run's: --hidden 16,8 (the run has 8)" in r.stderr
    assert "--target" not in r.stderr  # the run's target, given or not, is no conflict
    r = cli_run("train", "--resume", stopped_run, "--out", stopped_run)
    assert r.exit_code == 2 and "leave out --out" in r.stderr
    r = cli_run("train", "--resume", stopped_run, "--checkpoint-every", "nan")
    assert r.exit_code == 2 and "nan is not a finite number" in r.stderr


def test_weights_past_float_range_are_never_checkpointed(tmp_path):
    # an epoch whose loss is still finite can end with infinite weights (validation NaN); a
    # checkpoint of them left a folder saying 'running' for a run reported as saving nothing
    import mlpfast
    from mlpfast import tabular
    rng = np.random.default_rng(0)
    path = tmp_path / "d.csv"
    X = rng.standard_normal((600, 3))
    with open(path, "w") as f:
        f.write("a,b,c,y\n")
        for r in X:
            f.write(f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{r @ [3.0, -1.0, 2.0] + 15:.5f}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(mlpfast.DivergenceError) as caught:
            tabular.train(str(path), target="y", solver="sgd", learning_rate_init=1e4,
                          max_iter=5, out=str(tmp_path / "run"))
    assert caught.value.folder is not None or not (tmp_path / "run").exists()
    if (tmp_path / "run").exists():
        assert np.isfinite(mlpfast.load(str(tmp_path / "run")).estimator._theta).all()


def _raw_object_cache_notify(then):
    # named as llvmlite's hook that C calls back for each object Numba compiles
    return then(sys._getframe())


def test_a_signal_inside_a_c_callback_is_sent_again_outside_it(monkeypatch):
    """An exception raised in a Python function called back from C is dropped by Python: a
    signal during a first run's compile was lost (the run went on) or broke Numba's state (a
    traceback). The handler sends it again a moment later instead of raising there."""
    from mlpfast.cli import signals
    sent = []
    monkeypatch.setattr(signals.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    stop = signals.StopRequest()
    stop.active = True
    assert _raw_object_cache_notify(lambda frame: stop.handle(signal.SIGTERM, frame)) is None
    end = time.time() + 5
    while not sent and time.time() < end:
        time.sleep(0.01)
    assert sent == [(os.getpid(), signal.SIGTERM)]
    # outside a callback: raised at once, as before
    with pytest.raises(signals.Interrupted):
        stop.handle(signal.SIGTERM, sys._getframe())
