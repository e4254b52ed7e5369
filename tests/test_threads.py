"""Threads under load and other code after a fit (mlpfast.threads): the Governor's choice from
the machine's load, the engine's slices on changing thread counts giving the same bits, and
OpenMP nesting set back after Numba's layer starts."""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from conftest import fit_on_threads

from mlpfast import config, threads

# a parallel region of its own (compiled in a child in a second): starts Numba's threading layer
# without mlpfast's kernels
PARALLEL = """
import numba, numpy as np
@numba.njit(parallel=True)
def _touch(a):
    for i in numba.prange(a.shape[0]):
        a[i] += 1.0
_touch(np.zeros(64))
"""

linux = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="/proc, and GNU OpenMP as Numba's threading layer")


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _governor(top, loads, monkeypatch, last=(float("-inf"), 1)):
    """A Governor on 2 CPUs whose windows see other processes use loads[i] cores (this process
    one core); one window per slice."""
    monkeypatch.setattr(threads, "_last_choice", last)
    monkeypatch.setattr(threads, "_cpus", lambda: [0, 1])
    clock = Clock()
    state = {"busy": 0.0, "mine": 0.0, "i": 0}

    def sample():
        return state["busy"], state["mine"]
    gov = threads.Governor(top, sample=sample, clock=clock)

    def slice_(seconds=config.LOAD_WINDOW_SECONDS):
        k, n = gov.plan(10 ** 6)
        others = loads[min(state["i"], len(loads) - 1)]
        state["i"] += 1
        clock.t += seconds
        state["mine"] += seconds
        state["busy"] += seconds * (1 + others)
        gov.done(k, n, seconds)
        return k, n
    return gov, slice_


def test_governor_follows_the_other_processes(monkeypatch):
    # quiet, then one busy process (about a core), then 0.1 of a core (a terminal), then
    # half a core: all threads, one, all, one
    gov, slice_ = _governor(2, [0.0, 1.0, 0.1, 0.5], monkeypatch)
    seen = [slice_()[0] for _ in range(5)]
    # the first slice runs on one thread (no window yet); each decision applies to the next
    assert seen == [1, 2, 1, 2, 1]


def test_governor_restart_forgets_the_open_window(monkeypatch):
    # a window that saw a busy core (a compile child, since ended) chose one thread; restart
    # goes on with the count given, and the next window alone decides
    gov, slice_ = _governor(2, [1.0, 1.0, 0.0], monkeypatch)
    assert [slice_()[0] for _ in range(2)] == [1, 1]
    gov.restart(5)
    assert gov.plan(10)[0] == 2  # at most top
    assert slice_()[0] == 2      # the busy window's decision is gone
    assert slice_()[0] == 2      # and the quiet one keeps all threads


def test_governor_starts_from_the_last_recent_choice(monkeypatch):
    clock_now = 1000.0
    monkeypatch.setattr(threads, "_last_choice", (clock_now - 0.1, 2))
    monkeypatch.setattr(threads, "_cpus", lambda: [0, 1])
    gov = threads.Governor(2, sample=lambda: (0.0, 0.0), clock=lambda: clock_now)
    assert gov.plan(100)[0] == 2
    monkeypatch.setattr(threads, "_last_choice", (clock_now - 60, 2))
    gov = threads.Governor(2, sample=lambda: (0.0, 0.0), clock=lambda: clock_now)
    assert gov.plan(100)[0] == 1


def test_governor_without_proc_uses_all_threads(monkeypatch):
    monkeypatch.setattr(threads, "_last_choice", (float("-inf"), 1))
    clock = Clock()
    gov = threads.Governor(4, sample=lambda: None, clock=clock)
    k, n = gov.plan(100)
    clock.t += config.LOAD_WINDOW_SECONDS
    gov.done(k, n, config.LOAD_WINDOW_SECONDS)
    assert gov.plan(100)[0] == 4


def test_governor_sizes_slices_from_their_time(monkeypatch):
    gov, slice_ = _governor(2, [0.0], monkeypatch)
    k, n = gov.plan(10 ** 6)
    assert n == 2  # the first slice's time is unknown: short
    gov.done(k, n, 2 * 0.001)  # 1 ms per minibatch
    assert gov.plan(10 ** 6)[1] == int(config.SLICE_SECONDS / 0.001)
    assert gov.plan(7)[1] == 7  # never past the run's end


def test_recent_choice(monkeypatch):
    # prediction between epochs follows training's last choice; later, or never, all threads
    monkeypatch.setattr(threads, "_last_choice", (100.0, 1))
    assert threads.recent_choice(2, clock=lambda: 100.1) == 1
    assert threads.recent_choice(2, clock=lambda: 100.0 + 5 * config.LOAD_WINDOW_SECONDS) == 2
    monkeypatch.setattr(threads, "_last_choice", (100.0, 8))
    assert threads.recent_choice(2, clock=lambda: 100.1) == 2


def test_numba_threads_sets_and_restores():
    before = numba.get_num_threads()
    with threads.numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("others,cpus,top,want", [
    (0.0, 2, 2, 2), (0.2, 2, 2, 2), (0.3, 2, 2, 1), (1.0, 2, 2, 1), (2.0, 2, 2, 1),
    (1.0, 16, 16, 15), (3.5, 16, 8, 8), (0.0, 4, 1, 1)])
def test_threads_for(others, cpus, top, want):
    assert threads.threads_for(others, cpus, top) == want


@linux
def test_cpu_seconds_counts_this_process():
    # this process's own CPU time shows in both counts: a busy loop of 0.3 s adds about 0.3 s
    # (in 10 ms ticks) to each
    import time
    b0, m0 = threads.cpu_seconds()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.3:
        pass
    b1, m1 = threads.cpu_seconds()
    assert m1 - m0 >= 0.2
    assert b1 - b0 >= m1 - m0 - 0.05


class Alternating(threads.Governor):
    """One thread and all threads in turn, 3 minibatches a slice: the most switching."""

    def plan(self, remaining):
        k = 1 if len(self.choices) % 2 == 0 else self.top
        return k, min(remaining, 3)

    def done(self, threads_, batches, seconds):
        self.choices.append((threads_, batches))


@pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("kw", [
    # two chunks per minibatch, 20k parameters: the chunk pass and the update both parallel
    dict(hidden_layer_sizes=(128, 128), batch_size=256, alpha=1e-3),
    dict(hidden_layer_sizes=(64,), batch_size=200, solver="sgd", dropout=0.2),
    # L-BFGS: each full-gradient call is a slice, in blocks of 256 rows of two chunks
    dict(hidden_layer_sizes=(32,), batch_size=256, solver="lbfgs"),
], ids=["adam", "sgd-dropout", "lbfgs"])
def test_switching_threads_between_slices_gives_the_same_bits(monkeypatch, kw):
    made = []

    def make(top, **k):
        made.append(Alternating(top, **k))
        return made[-1]
    monkeypatch.setattr(threads, "Governor", make)
    switched = fit_on_threads(2, **kw)
    used = {k for g in made for k, _ in g.choices}
    assert used == {1, 2}
    one = fit_on_threads(1, **kw)  # one thread: no Governor, one call per epoch
    for a, b in zip(one.coefs_ + one.intercepts_, switched.coefs_ + switched.intercepts_):
        assert np.array_equal(a, b)
    assert one.loss_curve_ == switched.loss_curve_


@pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@pytest.mark.parametrize("hidden", [(16,), (128, 128)], ids=["small", "large"])
def test_one_chunk_minibatches_serial_or_not_give_the_same_bits(monkeypatch, hidden):
    # 32-row minibatches are one chunk. A small network has nothing for a second thread: it
    # trains on one whatever the thread count. A large one keeps its parallel update on two
    # threads and has a serial one on one thread: the same bits.
    from mlpfast.engine import CPUEngine
    starts = []
    real = CPUEngine.start

    def start(self, *a, **k):
        real(self, *a, **k)
        starts.append(self.serial)
    monkeypatch.setattr(CPUEngine, "start", start)
    two = fit_on_threads(2, hidden_layer_sizes=hidden, batch_size=32)
    one = fit_on_threads(1, hidden_layer_sizes=hidden, batch_size=32)
    assert starts == ([True, True] if hidden == (16,) else [False, False])
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        assert np.array_equal(a, b)
    assert one.loss_curve_ == two.loss_curve_


def _child(code, **env_vars):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_MAX_ACTIVE_LEVELS", "OMP_NESTED", "NUMBA_THREADING_LAYER")}
    env.update(env_vars)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


@linux
def test_numba_enables_nesting_without_mlpfast():
    # the control for the next test: Numba's OpenMP layer turns nesting on when it starts
    out = _child(PARALLEL + "\nimport ctypes, numba\nfrom numba.np.ufunc import omppool\n"
                 "print(numba.threading_layer(), "
                 "ctypes.CDLL(omppool.__file__).omp_get_max_active_levels())")
    layer, levels = out.stdout.split()
    if layer != "omp":
        pytest.skip(f"threading layer is {layer}")
    assert int(levels) > 1


@linux
@pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")
def test_after_a_fit_this_thread_does_not_nest(monkeypatch):
    # other OpenMP code on the thread that trained (PyTorch's parallel loops around its BLAS)
    # must not open a team inside each thread of a team: one active level after a fit
    import ctypes
    for var in ("OMP_MAX_ACTIVE_LEVELS", "OMP_NESTED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "_nesting_restored", False)
    fit_on_threads(numba.config.NUMBA_NUM_THREADS, hidden_layer_sizes=(4,), batch_size=200)
    if numba.threading_layer() != "omp":
        pytest.skip(f"threading layer is {numba.threading_layer()}")
    from numba.np.ufunc import omppool
    assert ctypes.CDLL(omppool.__file__).omp_get_max_active_levels() == 1


@linux
def test_user_nesting_is_kept():
    out = _child("from mlpfast import threads\nprint(threads.restore_nesting())\n" + PARALLEL
                 + "\nimport ctypes\nfrom numba.np.ufunc import omppool\n"
                 "print(ctypes.CDLL(omppool.__file__).omp_get_max_active_levels())",
                 OMP_MAX_ACTIVE_LEVELS="2")
    restored, levels = out.stdout.split()
    assert restored == "None" and int(levels) > 1


def test_a_failing_sampler_means_all_threads_not_a_failedfit_on_threads(monkeypatch):
    """Whatever the load sampler raises, the Governor treats it as no /proc (all threads);
    the module's cpu_seconds is looked up when sampling, so replacing it takes effect."""
    from mlpfast import threads

    def broken():
        raise RuntimeError("no proc")
    g = threads.Governor(2, sample=broken)
    assert g.sample() is None
    monkeypatch.setattr(threads, "cpu_seconds", lambda: None)
    assert threads.Governor(2).sample() is None
    monkeypatch.setattr(threads, "cpu_seconds", broken)
    assert threads.Governor(2).sample() is None
