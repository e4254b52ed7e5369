"""Where sweeps and many-file predictions run: dask.distributed, on a LocalCluster of worker
processes (one machine) or an existing scheduler (a cluster). Needs the `dask` extra.

    with executor(workers=2) as client:       # a LocalCluster, closed at the end
        ...
    with executor(scheduler="tcp://host:8786") as client:   # a cluster someone runs
        ...

A LocalCluster gets `workers` processes of one task thread each, and every worker's Numba
threads are the cores divided among the workers, so that the cores are never oversubscribed
(a busy core slows every thread of a parallel region down to its pace: the threads issue's
contention figures). Workers warm up before any task: the first loads (or compiles, about a
minute after an install) the kernels into Numba's cache, the others then load them from it.
"""
import contextlib
import os

from .errors import MLPFastError

INSTALL = "pip install 'mlpfast[dask]'"


class ClusterError(MLPFastError):
    """The cluster cannot be reached or started."""


def require_dask(what="mlpfast sweep"):
    """Import dask.distributed, or raise ClusterError saying how to install it."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError(f"{what} runs on dask.distributed, which is not installed; "
                           f"install it with: {INSTALL}") from None
    return distributed


def cores():
    """The cores this process may use (its CPU affinity, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan(tasks, workers=None, threads=None):
    """(worker processes, Numba threads per worker) for `tasks` independent tasks on this
    machine: one worker per core up to the tasks (small trials run best a core each), and the
    cores shared out as threads, never more threads in all than cores."""
    n = cores()
    if workers is None:
        workers = max(1, min(n, tasks))
    if threads is None:
        threads = max(1, n // workers)
    return workers, threads


# seconds to wait for a scheduler to answer, and for it to have a worker
CONNECT_SECONDS = 30.0


@contextlib.contextmanager
def executor(client=None, scheduler=None, workers=None, threads=None, tasks=1, stop=None):
    """A dask.distributed Client: `client` itself when given (left open), one connected to
    `scheduler` (an address such as tcp://host:8786), or a new LocalCluster of worker
    processes sized by plan(tasks, workers, threads) and closed at the end. Yields (client,
    threads per task). Raises ClusterError when dask is missing, the scheduler cannot be
    reached (within CONNECT_SECONDS, or at once for an address that is not one) or has no
    worker within CONNECT_SECONDS; KeyboardInterrupt when `stop` (an object with is_set())
    is set while connecting."""
    distributed = require_dask()
    if client is not None:
        yield client, threads or _remote_threads(client)
        return
    if scheduler is not None:
        with _quiet_dask(), _connect(distributed, scheduler, stop) as client:
            yield client, threads or _remote_threads(client)
        return
    workers, threads = plan(tasks, workers, threads)
    import logging

    import dask
    # worker processes of their own (Numba's threads are per process); the scheduler's web
    # page on a free port of the loopback (not 8787, which another cluster may hold); the
    # workers' logs silenced (what fails in a task comes back as its one-line error). The
    # Numba threads a task uses are set in the task (numba.set_num_threads), not through
    # NUMBA_NUM_THREADS: the Nanny sets a worker's environment after the worker has imported
    # Numba, and Numba's next compilation then refuses the changed value
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
    with _quiet_dask(), cluster, distributed.Client(cluster) as client:
        yield client, threads


@contextlib.contextmanager
def _quiet_dask():
    """dask's own loggers silenced in this process while our client runs: a lost scheduler
    is reported once, as our error, not as pages of reconnection tracebacks."""
    import logging
    # dask's loggers carry their own levels and handlers (a child logger's records reach its
    # parents' handlers whatever the parents' levels): the handlers are what is quietened
    handlers = [h for n in ("distributed", "tornado", "asyncio", "")
                for h in logging.getLogger(n).handlers]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels):
            h.setLevel(level)


@contextlib.contextmanager
def _connect(distributed, scheduler, stop):
    """A Client of the scheduler at `scheduler`, made in a thread so that a peer that never
    answers (or answers with something other than dask) cannot hold us past CONNECT_SECONDS
    or past a stop; then the scheduler's first worker waited for as long."""
    import threading
    import time
    hint = ("start one (dask scheduler) and its workers (dask worker ADDRESS), or leave out "
            "--scheduler to run here")
    box = {}

    def connect():
        try:
            box["client"] = distributed.Client(scheduler, timeout=f"{CONNECT_SECONDS:g}s")
        except BaseException as exc:  # noqa: BLE001 (any failure to connect is reported)
            box["error"] = exc

    thread = threading.Thread(target=connect, daemon=True, name="mlpfast-connect")
    thread.start()
    deadline = time.monotonic() + CONNECT_SECONDS + 5
    while thread.is_alive() and time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt("stop requested")
        thread.join(0.1)
    if "client" not in box:
        exc = box.get("error")
        why = "no answer" if exc is None else (
            "not a scheduler address" if isinstance(exc, (ValueError, TypeError)) else
            "it answered with something other than a dask scheduler"
            if isinstance(exc, MemoryError) else f"{type(exc).__name__}: {exc}")
        raise ClusterError(f"cannot reach the dask scheduler at {scheduler} ({why}); {hint}")
    client = box["client"]
    with client:
        deadline = time.monotonic() + CONNECT_SECONDS
        while not client.scheduler_info().get("workers"):
            if time.monotonic() > deadline:
                raise ClusterError(f"the dask scheduler at {scheduler} has no workers; start "
                                   f"some (dask worker {scheduler}), or leave out --scheduler "
                                   "to run here")
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("stop requested")
            time.sleep(0.2)
        yield client


def _remote_threads(client):
    """Numba threads per task on a cluster we did not start: the fewest, over the workers, of
    a worker's cores divided by its task threads."""
    info = client.scheduler_info().get("workers", {})
    machine = client.run(cores)  # {worker address: cores}
    per = [max(1, machine.get(addr, 1) // max(1, int(w.get("nthreads", 1))))
           for addr, w in info.items()]
    return min(per) if per else 1


def task_started(client, fut):
    """Whether the scheduler has given the future's task to a worker (then it runs, or is
    queued on that worker; a stop lets it finish rather than cancelling it midway)."""
    try:
        state = client.run_on_scheduler(
            lambda dask_scheduler, key=fut.key: getattr(dask_scheduler.tasks.get(key), "state", None))
    except Exception:  # noqa: BLE001 (no answer: assume it runs, and let it end itself)
        return True
    return state in ("processing", "memory", "erred")


def warm_up(client, stop=None, kernels=("train", "predict"), dtypes=("float32",),
            auto_dtypes=()):
    """Load (or compile) the kernels a sweep's trials need (mlpfast.compiling's entry point
    names, and dtypes; auto_dtypes: those of trials on device 'auto', for workers where that
    is the CPU) on every worker before its first task: one worker first, so that the others
    load what it put in Numba's cache rather than all compiling at once. When they will
    compile there (the first worker is asked), the `mlpfast` logger says so at WARNING before
    and at INFO after (compiling.notify, compiling.finished). Returns False when `stop` (see
    sweep) was set meanwhile."""
    import time

    from . import compiling
    names = list(client.scheduler_info().get("workers", {}))
    if not names:
        return True
    try:
        todo = client.submit(_pending, kernels, dtypes, auto_dtypes, workers=names[:1],
                             allow_other_workers=False, pure=False).result()
    except Exception:  # noqa: BLE001 (no answer: the warm-up runs all the same)
        todo = []
    for dtype, pending in todo:
        compiling.notify(pending, dtype, where="on the sweep's workers")
    t0 = time.perf_counter()
    for batch in (names[:1], names[1:]):
        futures = [client.submit(_warm, kernels, dtypes, auto_dtypes, workers=[w],
                                 allow_other_workers=False, pure=False,
                                 key=f"mlpfast-warm-{w}-{time.time_ns()}")
                   for w in batch]
        while not all(f.done() for f in futures):
            if stop is not None and stop.is_set():
                for f in futures:
                    f.cancel()
                return False
            time.sleep(0.1)
        if batch == names[:1]:  # the first worker compiled; the others load its cache
            for dtype, pending in todo:
                compiling.finished(pending, dtype, time.perf_counter() - t0)
    return True


def _cpu_dtypes(dtypes, auto_dtypes):
    # on a worker: the dtypes its CPU kernels run in (device 'auto' is the CPU without a GPU)
    from .engine import resolve_device
    auto = list(auto_dtypes) if auto_dtypes and resolve_device("auto") == "cpu" else []
    return sorted(set(dtypes) | set(auto))


def _pending(kernels, dtypes, auto_dtypes=()):
    # on a worker: [(dtype, the entry points that will compile there for it)], those with any
    from . import compiling
    points = sorted({name for k in kernels for name in (k,) + compiling.WARMERS[k][1]})
    return [(d, p) for d in _cpu_dtypes(dtypes, auto_dtypes)
            if (p := compiling.pending(points, d))]


def _warm(kernels, dtypes, auto_dtypes=()):
    # on a worker: the kernels into Numba's cache, or loaded from it, through tiny real runs
    from . import compiling
    from .errors import MLPFastError
    try:
        compiling.compile_kernels(_cpu_dtypes(dtypes, auto_dtypes), kernels)
    except MLPFastError:  # nowhere to cache them: each trial compiles what it needs itself
        pass
    return True
