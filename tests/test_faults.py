"""Fault injection: SIGTERM, SIGINT and SIGKILL at random moments of `mlpfast train` and
`mlpfast predict` (the writes slowed down to widen the window between them). After each, the
run folder is absent or complete and loadable, a predictions file absent or complete, and a
stopped run resumed with --resume ends bit-identical (weights and every epoch's loss) to the
run that was never stopped, whichever thread count each part ran on."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DATASETS

import mlpfast

LETTERS = str(DATASETS / "letter-recognition.csv")
TRAIN = ["--target", "Letter", "--epochs", 60, "--hidden", "64,64", "--dropout", 0.1, "--seed", 5]
pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.DataNote")


def mlpfast_cmd(args, cwd, threads=2, pause=0.0):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_NUM_THREADS": str(threads),
           "MLPFAST_TEST_WRITE_PAUSE": str(pause)}
    return subprocess.Popen([sys.executable, "-m", "mlpfast", *map(str, args)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_until_started(lock, proc, timeout=120):
    """Until the run holds its folder's lock (its imports and checks behind it)."""
    end = time.time() + timeout
    while not lock.exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.02)


def losses(folder):
    with open(folder / "metrics.csv") as f:
        return [line.split(",")[:2] for line in f.read().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run that is never stopped, and how long it takes."""
    where = tmp_path_factory.mktemp("reference")
    t0 = time.time()
    code, _, err = finish(mlpfast_cmd(["train", LETTERS, "--out", where / "run", "-q", *TRAIN], where))
    assert code == 0, err
    return where / "run", time.time() - t0


def check_folder(folder):
    """Absent, or complete: every file there and loadable."""
    if not folder.exists():
        return None
    assert sorted(os.listdir(folder)) == ["checkpoint.npz", "metrics.csv", "model.npz", "run.json"]
    mlpfast.load(folder)
    return json.loads((folder / "run.json").read_text())["status"]


SCENARIOS = [(sig, k) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL) for k in range(2)]


@pytest.mark.parametrize("sig,k", SCENARIOS, ids=[f"{signal.Signals(s).name}-{k}" for s, k in SCENARIOS])
def test_signal_at_a_random_moment_then_resume(tmp_path, reference, sig, k):
    ref, seconds = reference
    rng = random.Random(1000 * sig + k)
    threads, resume_threads = rng.choice([(1, 2), (2, 1), (2, 2)])
    pause = rng.choice([0.0, 0.05])
    out = tmp_path / "run"
    proc = mlpfast_cmd(["train", LETTERS, "--out", out, "-q", *TRAIN], tmp_path, threads, pause)
    wait_until_started(tmp_path / ".run.lock", proc)
    time.sleep(rng.uniform(0.0, 0.8 * seconds))
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert "Traceback" not in err, err
    status = check_folder(out)
    if sig != signal.SIGKILL:
        assert code in (0, 128 + sig), err
        if code == 128 + sig:
            assert err.strip().splitlines()[-1].startswith("Interrupted (")
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".run.") and not p.endswith(".lock")]
    if status is None or status == "finished":
        if status is None:  # stopped before the first checkpoint: nothing to resume
            assert not leftovers or sig == signal.SIGKILL
            return
    else:
        code, _, err = finish(mlpfast_cmd(["train", "--resume", out, "-q"], tmp_path, resume_threads))
        assert code == 0, err
        assert check_folder(out) == "finished"
    assert losses(out) == losses(ref)
    ours, theirs = mlpfast.load(out).estimator._theta, mlpfast.load(ref).estimator._theta
    assert np.array_equal(ours, theirs)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".run.") and not p.endswith(".lock")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_during_predict_leaves_no_partial_file(tmp_path, reference, sig):
    ref, _ = reference
    big = tmp_path / "big.csv"
    with open(LETTERS) as f:
        header, *body = f.read().splitlines()
    big.write_text(header + "\n" + "".join(line + "\n" for line in body) * 30)
    dest = tmp_path / "pred.csv"
    dest.write_text("an earlier complete file\n")
    proc = mlpfast_cmd(["predict", ref, big, "--out", dest], tmp_path)
    time.sleep(random.Random(sig).uniform(1.0, 3.0))
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert "Traceback" not in err
    text = dest.read_text()
    # the earlier file, or the whole new one (a kill may land after the rename): never a part
    if code == 0 or text != "an earlier complete file\n":
        assert len(text.splitlines()) == 30 * len(body) + 1
    if sig == signal.SIGTERM:
        assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
