"""Numba's threads on a busy machine, and other code after them.

Threads under load. Numba's threading layer on Linux is GNU OpenMP (libgomp), whose threads
spin on their core, while they wait at a parallel region's barrier or for the next region, for
up to GOMP_SPINCOUNT polls (300,000: milliseconds) before they sleep. A training step opens one
or two regions. On an idle machine the spinning saves each region's wake-up; on a machine whose
cores other processes want, a spinning thread holds the core that the thread it waits for
needs, and each barrier lasts until the scheduler takes the spinner off, a time slice of
milliseconds, in a step of a few hundred microseconds. Measured on a shared 2-core machine
beside busy loops and other people's multi-threaded jobs (benchmarks/contention.py,
benchmarks/RESULTS.md 2026-12-01): W1 took 7.7-17x as long per epoch on two threads as on
one, the letters data 2-3x.

OpenMP's passive wait policy (OMP_WAIT_POLICY=passive: threads sleep at once) removed that
(0.72-1.05x of one thread in the same measurement), but the policy is read once per process by
the one libgomp that every library in it shares: PyTorch loaded after it ran its W1 epoch 2.7x
slower (benchmarks/after_fit.py). So the policy is left as it is, and the CPU engine chooses
its thread count instead: a Governor trains in slices of minibatches and uses all threads only
while the other processes on the machine leave the cores free (their CPU time, from
/proc/stat, over windows of config.LOAD_WINDOW_SECONDS), else one thread. One thread never
waits at a barrier. The chunks of a minibatch come from its size, not the thread count, so the
weights are the same bits whichever count each slice used.

Nesting. Numba's OpenMP layer, when it starts, enables nested parallel regions
(omp_set_nested(1): max-active-levels 255) for the thread that started it. OpenMP code that
runs later on that thread and is parallel at two levels (a parallel loop around a threaded
BLAS) can then open a team inside every thread of a team: more threads than cores, spinning.
(PyTorch's W1 epoch did not nest after a fit of main either: two busy threads in both cases,
benchmarks/RESULTS.md 2026-12-01; the level is set back as a precaution.) The engine
calls restore_nesting() before its first parallel call, which sets the level back to OpenMP's
default of 1 unless the user asked for nesting (OMP_MAX_ACTIVE_LEVELS, OMP_NESTED). mlpfast's
kernels never nest: a kernel called inside a parallel loop runs on one thread (update.py).
"""
import contextlib
import os
import threading
import time

from . import config

_NESTING_VARS = ("OMP_MAX_ACTIVE_LEVELS", "OMP_NESTED")
_nesting_restored = False

# the last thread count a Governor chose in this process, and when (perf_counter seconds): a
# new fit starts from it while it is recent
_last_choice = (float("-inf"), 1)
_lock = threading.Lock()


def _cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def cpu_seconds(cpus=None, stat="/proc/stat", own="/proc/self/stat"):
    """(busy CPU seconds of the machine on `cpus` (this process's CPUs), CPU seconds of this
    process) since boot, both in the kernel's clock ticks (USER_HZ, usually 10 ms) so that
    their difference counts the same ticks. Busy is user + nice + system + irq + softirq +
    steal (a VM's CPU taken by the host counts as taken). None where /proc cannot be read."""
    cpus = _cpus() if cpus is None else cpus
    wanted = {f"cpu{c}" for c in cpus}
    try:
        busy = 0
        with open(stat) as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] in wanted:
                    user, nice, system, _, _, irq, softirq, steal = map(int, fields[1:9])
                    busy += user + nice + system + irq + softirq + steal
        with open(own) as f:
            # fields after the command (which may hold spaces), utime and stime are 14 and 15
            after = f.read().rsplit(")", 1)[1].split()
        mine = int(after[11]) + int(after[12])
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return busy / hz, mine / hz


def threads_for(other_cores, n_cpus, top):
    """Threads to train on when other processes kept `other_cores` cores busy (CPU seconds per
    second) out of n_cpus: the cores they leave whole, at least 1 and at most top. A quarter
    of a core of background (a terminal, a daemon) still counts as free; more than that on a
    2-core machine means one thread."""
    free = n_cpus - other_cores
    return max(1, min(top, int(free + config.LOAD_SLACK_CORES)))


class Governor:
    """Thread counts for the slices of one fit's training (see the module docstring).

    plan(top, remaining) gives (threads, minibatches) for the next slice: about
    config.SLICE_SECONDS of work at the count chosen, the first slices short while their time is
    unknown. done(threads, batches, seconds) records a slice. The count changes when a window
    of at least config.LOAD_WINDOW_SECONDS closes: all threads while the machine's other
    processes leave the cores free, else fewer (usually one). A new Governor starts from the
    last count chosen in this process when that was under config.LOAD_WINDOW_SECONDS * 5
    ago, else from one thread (a busy machine costs a two-thread slice dearly, a quiet one
    loses a fraction of one slice). `sample` is cpu_seconds (tests pass their own)."""

    def __init__(self, top, sample=None, clock=time.perf_counter):
        # None: this module's cpu_seconds, looked up when sampling (so that it can be replaced)
        self.top, self._sampler, self.clock = top, sample, clock
        self.cpus = _cpus()
        at, last = _last_choice
        recent = clock() - at < 5 * config.LOAD_WINDOW_SECONDS
        self.threads = min(top, last) if recent else 1
        self.per_batch = {}  # threads -> seconds per minibatch of the last slice
        self._start = None
        self.choices = []  # (threads, minibatches) of every slice, for tests and benchmarks

    def sample(self):
        """cpu_seconds() (or the sampler given), None when it fails in any way: a sampler's
        error never stops a fit, which then uses all threads as without /proc."""
        try:
            return (self._sampler or cpu_seconds)()
        except Exception:  # noqa: BLE001
            return None

    def restart(self, threads):
        """Go on with `threads` threads and a new load window from the next slice, forgetting
        the open one (whose load was a known passing thing: a compile child that has ended)."""
        self.threads = max(1, min(self.top, threads))
        self._start = None

    def plan(self, remaining):
        if self._start is None:
            self._start = (self.clock(), self.sample())
        per = self.per_batch.get(self.threads)
        n = 2 if per is None else max(1, int(config.SLICE_SECONDS / max(per, 1e-9)))
        return self.threads, min(remaining, n)

    def done(self, threads, batches, seconds):
        global _last_choice
        self.choices.append((threads, batches))
        self.per_batch[threads] = seconds / batches
        t0, s0 = self._start
        now = self.clock()
        if now - t0 < config.LOAD_WINDOW_SECONDS:
            return
        s1 = self.sample()
        self._start = (now, s1)
        if s0 is None or s1 is None:  # no /proc: all threads, as before there was a Governor
            self.threads = self.top
        else:
            others = max(0.0, (s1[0] - s0[0]) - (s1[1] - s0[1])) / (now - t0)
            self.threads = threads_for(others, len(self.cpus), self.top)
        with _lock:
            _last_choice = (now, self.threads)


def recent_choice(top, clock=time.perf_counter):
    """The thread count the last Governor of this process chose (at most top) while that was
    under 5 windows ago, else top: for parallel work that comes now and then and has no
    windows of its own (prediction, a validation pass between epochs)."""
    at, last = _last_choice
    return min(top, last) if clock() - at < 5 * config.LOAD_WINDOW_SECONDS else top


@contextlib.contextmanager
def numba_threads(k):
    """Numba's thread count for this thread set to k inside the block, then back."""
    import numba
    top = numba.get_num_threads()
    if k == top:
        yield
        return
    numba.set_num_threads(k)
    try:
        yield
    finally:
        numba.set_num_threads(top)


def restore_nesting():
    """Start Numba's threading layer if it has not started, and on GNU OpenMP set the nesting
    it enabled back to one active level (see the module docstring). Returns the max-active-
    levels now in force for this thread, or None where it does not apply (another threading
    layer, the user's OMP_MAX_ACTIVE_LEVELS / OMP_NESTED, Numba's internals moved). Cheap after
    the first call."""
    global _nesting_restored
    if _nesting_restored:
        return None
    _nesting_restored = True
    if any(v in os.environ for v in _NESTING_VARS):
        return None
    try:
        import ctypes

        import numba
        from numba.np.ufunc import parallel
        parallel._launch_threads()
        if numba.threading_layer() != "omp":
            return None
        from numba.np.ufunc import omppool
        # the OpenMP runtime that Numba's layer is linked to (dlsym searches its dependencies)
        gomp = ctypes.CDLL(omppool.__file__)
        gomp.omp_set_max_active_levels(1)
        return int(gomp.omp_get_max_active_levels())
    except (ImportError, AttributeError, OSError, ValueError):
        return None
