"""Compiling ahead of time and the notice while kernels compile (mlpfast.compiling, `mlpfast
compile`): whether a kernel will compile is read from Numba's own cache index (a cache written
on another CPU does not count: field case H12), the library logs one WARNING, the command line
shows one line, and `mlpfast compile` leaves nothing for a later process to compile."""
import importlib.util
import logging
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from click.testing import CliRunner

from mlpfast import MLPClassifier, compiling
from mlpfast.cluster import cores
from mlpfast.errors import MLPFastError
from mlpfast.cli.main import cli

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")

TOY = """
import numba

@numba.njit(cache=True)
def toy(a, n):
    return a[0] * n


@numba.njit(cache=True)
def helper(a):
    a[0] += 1
"""


def _load_toy(folder, name):
    spec = importlib.util.spec_from_file_location(name, folder / "toykern.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def toy_kernel(tmp_path, monkeypatch):
    """A cached njit kernel in its own file and cache folder, registered as entry point 'toy'
    (its dtype argument: a). Returns a loader: a fresh dispatcher (nothing in memory) each
    call, as in a new process."""
    (tmp_path / "toykern.py").write_text(TOY)
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(compiling.ENTRY_POINTS, "toy", ("toy", "toy", "a"))
    current = {}

    def load(i=[0]):
        i[0] += 1
        current["toy"] = _load_toy(tmp_path, f"toykern_{i[0]}")
        return current["toy"].toy

    real = compiling._dispatcher
    monkeypatch.setattr(compiling, "_dispatcher", lambda module, function: (
        getattr(current["toy"], function) if module == "toy" else real(module, function)))
    return load


def test_an_entry_point_is_compiled_with_what_it_calls_by_address(toy_kernel, monkeypatch):
    # train_batches calls chunk_gradient through its address (kernels.addresses): a cache
    # holding train_batches alone still compiles chunk_gradient, and is reported so
    assert compiling.BY_ADDRESS["train"] == (("network", "chunk_gradient", "theta"),)
    monkeypatch.setitem(compiling.BY_ADDRESS, "toy", (("toy", "helper", "a"),))
    toy = toy_kernel()
    toy(np.ones(2, np.float32), 3)
    assert compiling.is_compiled("toy", np.float32) is False  # helper is not
    assert compiling.pending(["toy"], np.float32) == ["toy"]
    compiling._dispatcher("toy", "helper")(np.ones(2, np.float32))
    assert compiling.is_compiled("toy", np.float32) is True
    toy_kernel()  # new dispatchers: both from the disk cache
    assert compiling.is_compiled("toy", np.float32) is True
    assert compiling.is_compiled("toy", np.float64) is False


def test_is_compiled_reads_numbas_cache_index(toy_kernel, monkeypatch):
    toy = toy_kernel()
    assert compiling.is_compiled("toy", np.float32) is False
    toy(np.ones(2, np.float32), 3)  # compiles and writes the cache
    assert compiling.is_compiled("toy", np.float32) is True  # in memory
    toy_kernel()  # a new dispatcher: only the disk cache can answer
    assert compiling.is_compiled("toy", np.float32) is True
    assert compiling.is_compiled("toy", np.float64) is False  # another dtype compiles
    # field case H12: the cache was written for this CPU; under another CPU name Numba's index
    # key differs and the kernel compiles again
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    assert compiling.is_compiled("toy", np.float32) is False
    assert compiling.pending(["toy"], np.float32) == ["toy"]


def test_is_compiled_ignores_a_stale_cache(toy_kernel, tmp_path):
    toy = toy_kernel()
    toy(np.ones(2, np.float32), 3)
    # the source changed since the cache was written: Numba's index is stale, so it compiles
    (tmp_path / "toykern.py").write_text(TOY + "\n# changed\n")
    toy_kernel()
    assert compiling.is_compiled("toy", np.float32) is False


def _pending(monkeypatch, kernels):
    monkeypatch.setattr(compiling, "_announced", set())
    monkeypatch.setattr(compiling, "is_compiled", lambda name, dtype: name not in kernels)


def _fit(**kw):
    X = np.zeros((8, 2), np.float32)
    X[::2] = 1
    return MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, **kw).fit(X, [0, 1] * 4)


def _compile_records(caplog):
    return [r for r in caplog.records if r.name == "mlpfast" and hasattr(r, "mlpfast_compiling")]


def test_fit_logs_one_warning_when_kernels_compile(monkeypatch, caplog):
    _pending(monkeypatch, {"train", "shuffle"})
    with caplog.at_level(logging.INFO, logger="mlpfast"):
        est = _fit()
        est.predict(np.zeros((2, 2), np.float32))  # predict is not pending: no line
        _fit()  # announced once per process
    records = _compile_records(caplog)
    assert len(records) == 1
    r = records[0]
    # predict compiled nothing, and a fit's end of compiling is its first progress report
    assert not [r for r in caplog.records if hasattr(r, "mlpfast_compiled")]
    assert r.levelno == logging.WARNING and r.mlpfast_compiling == ("shuffle", "train")
    assert "float32" in r.getMessage() and "mlpfast compile" in r.getMessage()


def test_predict_and_float64_announce_their_own_kernels(monkeypatch, caplog):
    _pending(monkeypatch, {"predict", "train"})
    with caplog.at_level(logging.INFO, logger="mlpfast"):
        est = _fit()
        est.predict(np.zeros((2, 2), np.float32))
        _fit(dtype="float64")
        _fit(solver="lbfgs")  # its objective is not pending here
    assert [(r.mlpfast_compiling, "float64" in r.getMessage())
            for r in _compile_records(caplog)] == [
        (("train",), False), (("predict",), False), (("train",), True)]
    # predict says when its compiled call returned (the command line's time stops there)
    assert [r.mlpfast_compiled for r in caplog.records
            if hasattr(r, "mlpfast_compiled")] == [("predict",)]


def test_nothing_logged_when_cached(monkeypatch, caplog):
    _pending(monkeypatch, set())
    with caplog.at_level(logging.WARNING, logger="mlpfast"):
        _fit().predict(np.zeros((2, 2), np.float32))
    assert _compile_records(caplog) == []


@pytest.fixture
def small_csv(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "small.csv"
    x = rng.standard_normal(200)
    path.write_text("x1,x2,label\n" + "".join(f"{a:.4f},{i % 7},{'yes' if a > 0 else 'no'}\n"
                                            for i, a in enumerate(x)))
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_train_says_it_compiles_in_one_line(tmp_path, small_csv, monkeypatch):
    _pending(monkeypatch, {"train"})
    r = run("train", small_csv, "--out", tmp_path / "a", "--epochs", 1)
    assert r.exit_code == 0
    lines = [ln for ln in r.stderr.splitlines() if "compiling" in ln]
    assert len(lines) == 1 and lines[0].startswith("compiling the float32 kernels (train)")
    assert "mlpfast compile" in lines[0]
    assert "\r" not in r.stderr  # not a terminal: no moving time
    # cached: nothing said; quiet: nothing said either
    _pending(monkeypatch, set())
    r = run("train", small_csv, "--out", tmp_path / "b", "--epochs", 1)
    assert r.exit_code == 0 and "compiling" not in r.stderr
    _pending(monkeypatch, {"train"})
    r = run("train", small_csv, "--out", tmp_path / "c", "--epochs", 1, "-q")
    assert r.exit_code == 0 and "compiling" not in r.stderr


def test_float64_train_says_it_compiles(tmp_path, small_csv, monkeypatch):
    seen = []
    monkeypatch.setattr(compiling, "_announced", set())
    monkeypatch.setattr(compiling, "is_compiled",
                        lambda name, dtype: seen.append(np.dtype(dtype).name) or
                        not (name == "train" and np.dtype(dtype) == np.float64))
    r = run("train", small_csv, "--out", tmp_path / "a", "--epochs", 1, "--dtype", "float64")
    assert r.exit_code == 0 and "compiling the float64 kernels (train)" in r.stderr
    assert "float64" in seen


def test_predict_command_says_it_compiles(tmp_path, small_csv, monkeypatch):
    _pending(monkeypatch, set())
    assert run("train", small_csv, "--out", tmp_path / "run", "--epochs", 1).exit_code == 0
    _pending(monkeypatch, {"predict"})
    r = run("predict", tmp_path / "run", small_csv, "--out", tmp_path / "p.csv")
    assert r.exit_code == 0
    assert [ln for ln in r.stderr.splitlines() if "compiling" in ln] == [
        ln for ln in r.stderr.splitlines() if ln.startswith("compiling the float32 kernels "
                                                            "(predict)")]
    assert "compiling" in r.stderr


def test_ticker_moves_on_a_terminal_and_clears_its_line(monkeypatch):
    import io
    import time

    from mlpfast.cli.common import CompileNotice
    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err)
    notice = CompileNotice(every=0.01)
    record = logging.LogRecord("mlpfast", logging.WARNING, __file__, 1,
                               "mlpfast: compiling the float32 kernels (train): ...", None, None)
    record.mlpfast_compiling = ("train",)
    assert notice.filter(record) is False  # shown by the command line, not logged again
    time.sleep(0.2)
    done = logging.LogRecord("mlpfast", logging.INFO, __file__, 1, "mlpfast: compiled", None,
                             None)
    done.mlpfast_compiled = ("train",)
    assert notice.filter(done) is False  # the compiled call returned: the time stops
    assert notice._ticker is None
    text = err.getvalue()
    assert text.startswith("compiling the float32 kernels (train): ...\n")
    assert "\rcompiling, 0 s" in text and text.endswith("\r\033[K")
    plain = logging.LogRecord("mlpfast", logging.WARNING, __file__, 1, "other", None, None)
    assert notice.filter(plain) is True


def test_notice_goes_above_a_progress_bar_and_the_bar_carries_the_time(monkeypatch):
    import io
    import time

    from tqdm import tqdm

    from mlpfast.cli.common import CompileNotice
    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", err)
    notice = CompileNotice(every=0.01)
    notice.bar = tqdm(total=3, file=err)
    record = logging.LogRecord("mlpfast", logging.WARNING, __file__, 1,
                               "mlpfast: compiling the float32 kernels (train): ...", None, None)
    record.mlpfast_compiling = ("train",)
    notice.filter(record)
    time.sleep(0.2)
    notice.stop()
    text = err.getvalue()
    # the bar is cleared, the line written on its own, the bar drawn again below it
    assert "\rcompiling the float32 kernels (train): ...\n" in text
    assert "compiling, 0 s]" in text.split("(train): ...\n")[1]
    notice.bar.close()


def test_compile_command_reports_its_steps(monkeypatch):
    calls = []

    def fake(dtypes, on_step=None, processes=1):
        calls.append((tuple(dtypes), processes))
        return [compiling.Compiled(d, ("shuffle", "train"), 1.5, 0 if d == "float32" else 40)
                for d in dtypes]
    monkeypatch.setattr(compiling, "compile_kernels", fake)
    r = run("compile", "-j", "2")
    assert r.exit_code == 0 and calls == [(("float32", "float64"), 2)]
    assert "float32 shuffle, train: already cached in 1.5 s" in r.stderr
    assert "float64 shuffle, train: compiled 40 functions in 1.5 s" in r.stderr
    assert "kernels cached in " in r.stderr
    r = run("compile", "--dtype", "float64", "-q")
    assert r.exit_code == 0 and calls[-1][0] == ("float64",) and r.stderr == ""


def test_interrupted_compile_says_what_stays(monkeypatch):
    """Numba writes each kernel to the cache as it compiles: an interrupted compile keeps
    those (it does not claim nothing was written), exit 130."""
    def interrupted(dtypes, on_step=None, processes=1):
        raise KeyboardInterrupt
    monkeypatch.setattr(compiling, "compile_kernels", interrupted)
    r = CliRunner().invoke(cli, ["compile", "--dtype", "float32"])
    assert r.exit_code == 130
    assert r.stderr.strip() == ("Interrupted (SIGINT); the kernels compiled so far stay cached; "
                                "mlpfast compile again compiles the rest.")


def test_compile_command_fails_in_one_line_where_nothing_can_be_cached(monkeypatch):
    monkeypatch.setattr(compiling, "cache_folder", lambda: None)
    r = run("compile", "--dtype", "float32")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: the kernels cannot be cached here") and \
        "NUMBA_CACHE_DIR" in r.stderr and r.stderr.count("\n") == 1


def test_compile_cuda_without_numba_cuda_says_what_to_install(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_cuda(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "numba" and fromlist and "cuda" in fromlist:
            raise ImportError("No module named 'numba_cuda'")
        return real(name, globals, locals, fromlist, level)
    monkeypatch.setattr(builtins, "__import__", no_cuda)
    r = run("compile", "--device", "cuda")
    assert r.exit_code == 1
    assert r.stderr == ("Error: the CUDA engine needs numba-cuda: pip install "
                        "'mlpfast[cuda]'\n")


BROAD = """
import sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import scipy.sparse as sp
from numba.core import event
compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Listener())
from mlpfast import MLPClassifier, MLPRegressor
from mlpfast.engine.together import run_together
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 7)).astype(np.float32)
y = rng.integers(0, 3, 300)
kw = dict(hidden_layer_sizes=(16, 8), max_iter=2, random_state=0)
MLPClassifier(dropout=0.2, early_stopping=True, **kw).fit(
    X, y, sample_weight=rng.random(300)).predict_proba(X)
MLPClassifier(solver="sgd", batch_size=200, **kw).fit(sp.csr_matrix(X), y).predict(
    sp.csr_matrix(X))
MLPClassifier(**kw).fit(X, np.c_[y == 1, y == 2]).predict(X)
MLPRegressor(**kw).fit(X, X[:, 0]).predict(X)
MLPRegressor(loss="poisson", **kw).fit(X, np.abs(X[:, 0])).predict(X)
c = MLPClassifier(**kw)
c.partial_fit(X, y, classes=[0, 1, 2])
MLPClassifier(solver="lbfgs", **kw).fit(X, y).predict(X)
run_together([lambda: MLPClassifier(**kw).fit(X, y),
              lambda: MLPClassifier(learning_rate_init=0.01, **kw).fit(X, y)])
print("compiled:", compiled)
"""


@pytest.mark.slow
def test_compile_command_leaves_nothing_to_compile(tmp_path, small_csv):
    """`mlpfast compile --dtype float32` into an empty cache, then fits of every kind, predict,
    L-BFGS and run_together in a new process compile nothing, and so does `mlpfast train`;
    read on another CPU (H12) the same cache does not count."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_CPU_NAME", None)

    def py(*args, **extra):
        return subprocess.run([sys.executable, *args], env=dict(env, **extra),
                              capture_output=True, text=True, cwd=tmp_path)

    r = py("-m", "mlpfast", "compile", "--dtype", "float32")
    assert r.returncode == 0, r.stderr
    assert "kernels cached in " in r.stderr
    files = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    r = py("-c", BROAD)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "compiled: []"
    assert "compiling" not in r.stderr
    r = py("-m", "mlpfast", "train", small_csv, "--out", tmp_path / "run", "--epochs", "1",
           "--early-stopping")
    assert r.returncode == 0, r.stderr
    assert "compiling" not in r.stderr
    assert sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file()) == files
    check = textwrap.dedent("""
        from mlpfast import compiling
        print(compiling.pending(compiling.FIT_EVALUATING + ("lbfgs", "together"), "float32"),
              compiling.pending(compiling.FIT, "float64"))
    """)
    r = py("-c", check)
    assert r.stdout.split("\n")[0] == "[] ['train']", r.stderr  # shuffle has no dtype
    r = py("-c", check, NUMBA_CPU_NAME="generic")
    assert r.stdout.split("\n")[0] == (
        "['shuffle', 'train', 'predict', 'lbfgs', 'together'] ['shuffle', 'train']"), r.stderr


SAVER = """
import fcntl, sys, time
from numba.core.caching import IndexDataCacheFile
from mlpfast.kernels import _locked
folder, tag, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
f = IndexDataCacheFile(folder, "toy", ("stamp", 1))
save = _locked(f.save, folder, fcntl)
while time.time() < start:  # both processes start saving together
    pass
for k in range(n):
    save(f"{tag}-{k}", f"{tag}-{k}")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the lock is POSIX flock")
def test_cache_writes_from_two_processes_at_once_lose_no_signature(tmp_path):
    # Numba's index update is read-add-write: two processes saving different signatures of
    # one function together lost about half of 600 keys here and mapped a few to the other
    # signature's data (code for the wrong types); under the lock every key has its own data
    import time
    start = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path), tag, "300", start])
             for tag in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    from numba.core.caching import IndexDataCacheFile
    f = IndexDataCacheFile(str(tmp_path), "toy", ("stamp", 1))
    index = f._load_index()
    assert sorted(index) == sorted(f"{t}-{k}" for t in "ab" for k in range(300))
    assert all(f.load(key) == key for key in index)


def test_every_cached_kernel_writes_its_cache_under_the_lock():
    from numba.core.dispatcher import Dispatcher
    import mlpfast.kernels.network  # noqa: F401  (loads every CPU kernel module)
    cached = [obj for name, module in list(sys.modules.items())
              if name.startswith("mlpfast.kernels.") for obj in vars(module).values()
              if isinstance(obj, Dispatcher)
              and getattr(getattr(obj, "_cache", None), "_cache_file", None) is not None]
    if not cached:
        pytest.skip("kernels are not cached here")
    assert all(d._cache._cache_file.mlpfast_locked for d in cached)
    assert {"train_batches", "chunk_gradient", "predict_raw"} <= {d.__name__ for d in cached}


APART = """
import sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from mlpfast import MLPClassifier, config
from mlpfast.kernels import network
config.COMPILE_APART = sys.argv[1] == "on"
X = np.random.default_rng(0).standard_normal((300, 5)).astype(np.float32)
y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
c = MLPClassifier(hidden_layer_sizes=(7,), max_iter=2, batch_size=50, random_state=0).fit(X, y)
np.save(sys.argv[2], np.concatenate([a.ravel() for a in c.coefs_ + c.intercepts_]))
c.predict_proba(X)
(types,) = network.chunk_gradient.overloads
(ptypes,) = network.predict_raw.overloads
print(network.chunk_gradient._cache_hits[types], network.chunk_gradient._cache_misses[types],
      network.predict_raw._cache_hits[ptypes], network.predict_raw._cache_misses[ptypes],
      len(network.train_batches.overloads))
"""


@pytest.mark.slow
def test_first_fit_compiles_chunk_gradient_in_a_child_and_loads_it(tmp_path):
    """A first fit on a cold cache: this process compiles train_batches while a child
    compiles chunk_gradient and predict_raw into the cache; the fit and the predict then load
    them (cache hits, no compile here), with the bits of a fit compiled in one process."""
    if cores() < 2 or not compiling.cache_folder():
        pytest.skip("needs two CPUs and a kernel cache")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", APART, "on", str(tmp_path / "w.npy")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # chunk_gradient and predict_raw loaded from the child's cache entries
    assert r.stdout.split() == ["1", "0", "1", "0", "1"]
    X = np.random.default_rng(0).standard_normal((300, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    c = MLPClassifier(hidden_layer_sizes=(7,), max_iter=2, batch_size=50, random_state=0)
    c.fit(X, y)
    here = np.concatenate([a.ravel() for a in c.coefs_ + c.intercepts_])
    assert np.array_equal(np.load(tmp_path / "w.npy"), here)


def test_compile_apart_declines_what_is_compiled_and_reports_a_failed_child(caplog):
    from mlpfast import config
    from mlpfast.kernels import network
    X = np.zeros((8, 2), np.float32)
    MLPClassifier(hidden_layer_sizes=(2,), max_iter=1, batch_size=4).fit(X, [0, 1] * 4)
    (compiled,) = [t for t in network.chunk_gradient.overloads
                   if t[7] == numba.types.float32[::1]]
    assert compiling.compile_apart([("network", "chunk_gradient", compiled)]) is None
    if cores() < 2 or not compiling.cache_folder():
        return
    # types chunk_gradient cannot be compiled for: the child fails, the caller is told so
    # (and compiles the kernel itself)
    bogus = (numba.types.int64,)
    apart = compiling.compile_apart([("network", "chunk_gradient", bogus)])
    assert apart is not None
    with caplog.at_level(logging.DEBUG, logger="mlpfast"):
        assert apart.wait_for("chunk_gradient") is False
    assert "compiling chunk_gradient in another process failed" in caplog.text
    assert apart.finish() is False and apart not in compiling._running
    old = config.COMPILE_APART
    config.COMPILE_APART = False
    try:
        assert compiling.compile_apart([("network", "chunk_gradient", bogus)]) is None
    finally:
        config.COMPILE_APART = old


def test_compile_kernels_runs_the_other_dtypes_in_a_child_at_once(monkeypatch):
    """processes=2: float64 compiles in a child process meanwhile (here mostly from the
    cache this test run filled); its steps come back in order, and a failing child is one
    error with its last line."""
    seen = []
    steps = compiling.compile_kernels(["float32", "float64"], kernels=("train",),
                                      on_step=lambda d, k: seen.append((d, k)), processes=2)
    assert [(s.dtype, s.kernels) for s in steps] == [
        ("float32", ("shuffle", "train")), ("float64", ("shuffle", "train"))]
    assert all(s.seconds > 0 and s.compiled >= 0 for s in steps)
    assert sorted(seen) == [("float32", "train"), ("float64", "train")]
    monkeypatch.setattr(compiling, "_STEPS_CHILD", "import sys; sys.exit('no compiler here')")
    with pytest.raises(MLPFastError, match="compiling in a child process failed: no compiler"):
        compiling.compile_kernels(["float32", "float64"], kernels=("train",), processes=2)


def test_a_child_compiling_apart_is_collected_and_cannot_block_on_its_stderr(monkeypatch):
    """The child's stderr goes to a file: one that writes much there (a debug setting, a
    flood of warnings) once blocked on a full pipe, and the fit waiting for it with it. A
    child left compiling after the kernel the fit waited for is collected when it ends (it
    stayed a zombie until a predict)."""
    import threading
    import time
    if cores() < 2 or not compiling.cache_folder():
        pytest.skip("needs two CPUs and a kernel cache")
    # two cheap signatures not compiled in this process (shared test cache: maybe cached)
    kernels = [("buffers", "chunk_count", (t,)) for t in (numba.types.int16, numba.types.uint16)]
    apart = compiling.compile_apart(kernels)
    if apart is not None:
        assert apart.wait_for("chunk_count") is True
        end = time.time() + 60
        while apart in compiling._running and time.time() < end:
            time.sleep(0.1)
        assert apart not in compiling._running and apart.process.returncode == 0
    monkeypatch.setattr(compiling, "_CHILD",
                        "import sys; sys.stderr.write('x' * 300000); sys.exit('flooded')")
    apart = compiling.compile_apart([("buffers", "chunk_count", (numba.types.int8,))])
    result = []
    waiter = threading.Thread(target=lambda: result.append(apart.wait_for("chunk_count")))
    waiter.start()
    waiter.join(60)
    assert result == [False]


def test_wait_apart_waits_for_every_child(monkeypatch):
    class Child:
        def __init__(self):
            self.finished = False

        def finish(self, ok=True):
            self.finished = ok
    children = [Child(), Child()]
    monkeypatch.setattr(compiling, "_running", list(children))
    assert compiling.wait_apart() is True
    assert all(c.finished for c in children)
    monkeypatch.setattr(compiling, "_running", [])
    assert compiling.wait_apart() is False


def test_a_fit_does_not_wait_for_a_child_that_compiles_only_predict(monkeypatch):
    """chunk_gradient cached, predict_raw not: a child may compile predict_raw alone, and the
    fit must not wait for it (it waited for the child's end, seconds)."""
    class Child:
        functions = ("predict_raw",)

        def wait_for(self, function):
            raise AssertionError("waited")
    assert compiling.Apart.wait_for(Child(), "chunk_gradient") is False
