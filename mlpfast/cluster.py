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


@contextlib.contextmanager
def executor(client=None, scheduler=None, workers=None, threads=None, tasks=1):
    """A dask.distributed Client: `client` itself when given (left open), one connected to
    `scheduler` (an address such as tcp://host:8786), or a new LocalCluster of worker
    processes sized by plan(tasks, workers, threads) and closed at the end. Yields (client,
    threads per task). Raises ClusterError when dask is missing or the scheduler cannot be
    reached."""
    distributed = require_dask()
    if client is not None:
        yield client, threads or _remote_threads(client)
        return
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the dask scheduler at {scheduler} ({exc}); start "
                               "one (dask scheduler; dask worker ADDRESS) or leave out "
                               "--scheduler to run here") from None
        with client:
            yield client, threads or _remote_threads(client)
        return
    workers, threads = plan(tasks, workers, threads)
    import dask
    # worker processes of their own (Numba's threads are per process); no dashboard (a port
    # taken by another program is not our business); the workers' logs silenced (what fails
    # in a task comes back as its result's one-line error, not as a logged traceback)
    import logging
    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.CRITICAL, env={"NUMBA_NUM_THREADS": str(threads),
                                       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                       "OPENBLAS_NUM_THREADS": "1"})
    with cluster, distributed.Client(cluster) as client:
        yield client, threads


def _remote_threads(client):
    """Numba threads per task on a cluster we did not start: the fewest, over the workers, of
    a worker's cores divided by its task threads."""
    info = client.scheduler_info().get("workers", {})
    machine = client.run(cores)  # {worker address: cores}
    per = [max(1, machine.get(addr, 1) // max(1, int(w.get("nthreads", 1))))
           for addr, w in info.items()]
    return min(per) if per else 1


def warm_up(client, stop=None):
    """Load (or compile) the training kernels on every worker before its first task: one
    worker first, so that the others load what it put in Numba's cache rather than all
    compiling at once. Returns False when `stop` (see sweep) was set meanwhile."""
    import time
    names = list(client.scheduler_info().get("workers", {}))
    for batch in (names[:1], names[1:]):
        futures = [client.submit(_warm, workers=[w], allow_other_workers=False, pure=False,
                                 key=f"mlpfast-warm-{w}-{time.time_ns()}") for w in batch]
        while not all(f.done() for f in futures):
            if stop is not None and stop.is_set():
                for f in futures:
                    f.cancel()
                return False
            time.sleep(0.1)
    return True


def _warm():
    import warnings

    import numpy as np

    from .estimators import MLPClassifier
    X = np.zeros((4, 2), np.float32)
    X[:2] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge, as meant
        MLPClassifier(hidden_layer_sizes=(2,), max_iter=1, batch_size=2, tol=0.0).fit(
            X, np.array([0, 0, 1, 1]))
    return True
