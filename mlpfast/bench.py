"""Speed comparisons: the workloads W1-W4 of benchmarks/README.md on mlpfast and on the tools people compare it
with, measured inside one run. Used by `mlpfast bench` and benchmarks/run_cpu.py.

Every engine trains the same model (same widths, batch size, Adam with lr 1e-3, float32) on the
same data. The first epoch is timed apart (it includes compilation or first-call set-up); the
steady-state figure is the median of the epochs after it.
"""
import os
import platform
import queue as queues
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import reference
from ._version import __version__


@dataclass(frozen=True)
class Workload:
    name: str
    rows: int
    features: int
    hidden: tuple
    classes: int
    batch: int

    def flop_per_epoch(self, rows=None):
        """6 * in * out per sample per layer: forward, input-gradient and weight-gradient products."""
        widths = (self.features,) + self.hidden + (self.classes,)
        per_sample = sum(6 * i * o for i, o in zip(widths[:-1], widths[1:]))
        return per_sample * (rows or self.rows)


WORKLOADS = {
    "W1": Workload("W1", 200_000, 32, (128, 128), 10, 256),
    "W2": Workload("W2", 60_000, 784, (512, 256), 10, 128),
    "W3": Workload("W3", 1_000_000, 128, (1024, 1024, 1024), 10, 2048),
    "W4": Workload("W4", 100_000, 20, (64,), 2, 32),
}


def synthetic(workload, rows=None, seed=0):
    """Standard normal features; labels from a random linear map so that there is something to learn."""
    rng = np.random.default_rng(seed)
    n = rows or workload.rows
    X = rng.standard_normal((n, workload.features), dtype=np.float32)
    W = rng.standard_normal((workload.features, workload.classes), dtype=np.float32)
    return X, np.argmax(X @ W, axis=1).astype(np.int64)


# ---- engines: each returns a function that trains one epoch

class _FitRun:
    """mlpfast runs one fit of 1 + epochs epochs: the data goes to the device once, as in real
    use, and the epoch times come from the estimator's history_ (time inside the engine)."""

    def __init__(self, device, X, y, wl):
        self.device, self.X, self.y, self.wl = device, X, y, wl

    def timed(self, epochs):
        import warnings

        from . import compiling
        from .errors import ConvergenceWarning
        from .estimators import MLPClassifier
        clf = MLPClassifier(hidden_layer_sizes=self.wl.hidden, batch_size=self.wl.batch,
                            random_state=0, device=self.device, learning_rate_init=1e-3,
                            max_iter=1 + epochs, tol=0.0, n_iter_no_change=10 ** 9)
        seen = {}

        def watch(est, event):
            if event["kind"] == "epoch":
                seen["transfer"] = getattr(est._engine, "transfer_seconds", None)
                # a cold first fit's child compiles predict_raw during the first epoch, and
                # the thread Governor counts it as load (one thread): the rest of its time
                # goes to the first epoch's figure, and the Governor starts again from all
                # threads (a busy machine still shows in its next window)
                governor = getattr(est._engine, "governor", None)
                if compiling.wait_apart() and governor is not None:
                    governor.restart(governor.top)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(self.X, self.y, callback=watch)
        total = time.perf_counter() - t0
        times = [r["epoch_seconds"] for r in clf.history_]
        first = total - sum(times[1:])
        return first, times[1:], seen.get("transfer")


def _mlpfast(device):
    def make(X, y, wl, threads):
        return _FitRun(device, X, y, wl)
    return make


def _numpy(X, y, wl, threads):
    """A plain NumPy training loop of the same model (float32 matmuls through BLAS)."""
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    rs = np.random.RandomState(0)
    Ws = [rs.uniform(-1, 1, (i, o)).astype(np.float32) * np.float32(np.sqrt(6 / (i + o)))
          for i, o in zip(widths[:-1], widths[1:])]
    bs = [np.zeros(o, np.float32) for o in widths[1:]]
    state = {"t": 0, "m": [np.zeros_like(p) for p in Ws + bs], "v": [np.zeros_like(p) for p in Ws + bs]}
    rng = np.random.default_rng(0)

    def epoch():
        order = rng.permutation(len(X))
        for s in range(0, len(X), wl.batch):
            idx = order[s: s + wl.batch]
            acts = [X[idx]]
            for k, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                acts.append(z if k == len(Ws) - 1 else np.maximum(z, 0))
            Z = acts[-1]
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            P[np.arange(len(idx)), y[idx]] -= 1
            delta = P / len(idx)
            grads_W, grads_b = [None] * len(Ws), [None] * len(Ws)
            for k in range(len(Ws) - 1, -1, -1):
                grads_W[k] = acts[k].T @ delta
                grads_b[k] = delta.sum(axis=0)
                if k:
                    delta = (delta @ Ws[k].T) * (acts[k] > 0)
            state["t"] += 1
            new = reference.adam_step(Ws + bs, grads_W + grads_b, state["m"], state["v"],
                                      state["t"], 1e-3)
            for p, q in zip(Ws + bs, new):
                p[...] = q
    return epoch


def _torch(device):
    def make(X, y, wl, threads):
        import torch
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False  # float32 against float32

        model = torch_mlp(wl).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt = torch.from_numpy(X).to(device)
        yt = torch.from_numpy(y).to(device)

        def epoch():
            order = torch.randperm(len(X), device=device)
            for s in range(0, len(X), wl.batch):
                idx = order[s: s + wl.batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            if device == "cuda":
                torch.cuda.synchronize()
        return epoch
    return make


def torch_mlp(wl):
    """The workload's MLP as a PyTorch module: Linear layers with ReLU between them."""
    import torch
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    layers = []
    for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(i, o))
        if k < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _jax(X, y, wl, threads):
    """JAX's compiled epoch: the workload's MLP (Glorot-uniform weights, ReLU, softmax +
    cross-entropy, Adam lr 1e-3, betas 0.9 / 0.999, eps 1e-8), one jax.jit of lax.scan over
    the epoch's minibatches; the order is drawn on the host with NumPy and passed in, full
    minibatches only (the last partial one is left out: at most 0.2 % of W1's and W2's rows).
    The platform (cpu) and one thread are XLA flags read when JAX is first imported in the
    process: bench times each engine in a process of its own (time_isolated)."""
    if "jax" not in sys.modules:
        # the CPU peer on the CPU, also where jax[cuda] would take a GPU (or JAX_PLATFORMS
        # names one)
        os.environ["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                       + " --xla_cpu_multi_thread_eigen=false"
                                       " intra_op_parallelism_threads=1").strip()
    import jax
    import jax.numpy as jnp
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    L = len(widths) - 1
    key = jax.random.PRNGKey(0)
    params = []
    for i, o in zip(widths[:-1], widths[1:]):
        key, sub = jax.random.split(key)
        bound = float(np.sqrt(6.0 / (i + o)))
        params.append((jax.random.uniform(sub, (i, o), jnp.float32, -bound, bound),
                       jnp.zeros(o, jnp.float32)))
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 1e-3

    def loss(ps, xb, yb):
        h = xb
        for k, (W, b) in enumerate(ps):
            h = h @ W + b
            if k < L - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    grad = jax.grad(loss)

    def step(carry, idx, Xd, yd):
        ps, m, v, t = carry
        g = grad(ps, Xd[idx], yd[idx])
        t = t + 1.0
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        rate = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        ps = jax.tree_util.tree_map(lambda p, a, b: p - rate * a / (jnp.sqrt(b) + eps), ps, m, v)
        return (ps, m, v, t), None

    @jax.jit
    def run_epoch(state, order, Xd, yd):
        state, _ = jax.lax.scan(lambda c, idx: step(c, idx, Xd, yd), state, order)
        return state

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [(params, zeros, zeros, jnp.float32(0))]
    Xd, yd = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(0)
    steps = len(X) // wl.batch

    def epoch():
        order = rng.permutation(len(X))[: steps * wl.batch].reshape(steps, wl.batch)
        state[0] = run_epoch(state[0], order.astype(np.int32), Xd, yd)
        jax.block_until_ready(state[0])
    epoch.loss = lambda: float(loss(state[0][0], Xd, yd))  # the mean loss over all rows
    return epoch


def _sklearn(X, y, wl, threads):
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=wl.hidden, batch_size=wl.batch, random_state=0)
    classes = np.arange(wl.classes)
    return lambda: clf.partial_fit(X, y, classes=classes)


ENGINES = {
    "mlpfast-cpu": _mlpfast("cpu"),
    "mlpfast-cuda": _mlpfast("cuda"),
    "numpy": _numpy,
    "torch-cpu": _torch("cpu"),
    "torch-cuda": _torch("cuda"),
    "jax-cpu": _jax,
    "sklearn": _sklearn,
}


def available(engine):
    """(usable, reason) for an engine name on this machine."""
    try:
        if engine.startswith("torch"):
            import torch
            if engine == "torch-cuda" and not torch.cuda.is_available():
                return False, "PyTorch sees no CUDA GPU"
        elif engine == "sklearn":
            import sklearn  # noqa: F401
        elif engine == "jax-cpu":
            import jax  # noqa: F401
        elif engine == "mlpfast-cuda":
            from .engine import cuda_status
            usable, why = cuda_status()  # a real GPU: timing the simulator means nothing
            if not usable:
                return False, why
    except ImportError as exc:
        return False, f"{exc.name} is not installed (pip install 'mlpfast[bench]')"
    except Exception as exc:
        return False, str(exc)
    return True, ""


def time_engine(make, X, y, wl, epochs, threads):
    """(set-up + first epoch seconds, [steady-state epoch seconds], host<->device transfer
    seconds or None)."""
    t0 = time.perf_counter()
    epoch = make(X, y, wl, threads)
    if hasattr(epoch, "timed"):
        return epoch.timed(epochs)
    epoch()
    first = time.perf_counter() - t0
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return first, times, None


def _time_child(engine, X, y, wl, epochs, threads, queue):
    """In a fresh process: time_engine of one engine, its result (or its error) on queue."""
    try:
        if engine.startswith("mlpfast"):
            # only there: setting it starts Numba's OpenMP threads, which in a peer's process
            # slowed PyTorch's W1 epoch from 0.4 s to 5-22 s
            import numba
            numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        queue.put(("ok", time_engine(ENGINES[engine], X, y, wl, epochs, threads)))
    except BaseException as exc:  # reported by the parent as one line
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def time_isolated(engine, X, y, wl, epochs, threads, timeout=None):
    """time_engine of ENGINES[engine] in a process of its own (spawned, so nothing of this
    process's threads, thread pools or libraries is shared): one engine's threads, still
    spinning after its run, slowed the next engine timed in the same process 5-7x (GNU
    OpenMP's waiting threads against PyTorch's, benchmarks/RESULTS.md 2026-12-01). Returns
    time_engine's triple; RuntimeError naming the engine when it failed or its process died.
    X and y travel to the child by pickling."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_time_child, args=(engine, X, y, wl, epochs, threads, queue),
                       daemon=True)
    proc.start()
    t0 = time.perf_counter()
    status, value = "error", "timed out"
    try:
        while timeout is None or time.perf_counter() - t0 < timeout:
            try:
                status, value = queue.get(timeout=1.0)
                break
            except queues.Empty:
                if not proc.is_alive():  # died without answering (a crash, a kill)
                    try:
                        status, value = queue.get(timeout=1.0)
                    except queues.Empty:
                        value = f"its process ended with code {proc.exitcode}"
                    break
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status != "ok":
        raise RuntimeError(f"{engine}: {value}")
    return value


def blas_gflops(n=1024, repeats=5):
    """The matmul ceiling of this run: float32 n^3 products through NumPy's BLAS."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    A @ B
    best = min(_timed(lambda: A @ B) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def matmul_gflops(M, K, N, use="numba", repeats=7):
    """GFLOP/s of C (M, N) = A (M, K) @ B (K, N) in float32, by the Numba GEMM (on Numba's
    thread count, as NumPy's BLAS uses its own) or by NumPy's BLAS: the median of `repeats`
    timings of enough calls to take ~5 ms. Time one kind at a time: BLAS threads spin for a
    while after a call and starve Numba's threads if the two alternate."""
    from .kernels.matmul import gemm_parallel, new_pack
    rng = np.random.default_rng(0)
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    C = np.empty((M, N), np.float32)
    if use == "numba":
        bias = np.empty(0, np.float32)
        pack = new_pack(np.float32, N, K)
        run = lambda: gemm_parallel(C, A, B, False, bias, 0, pack)  # noqa: E731
    else:
        run = lambda: np.matmul(A, B, out=C)  # noqa: E731
    run()
    calls = max(1, int(0.005 / max(_timed(run), 1e-7)))

    def batch():
        for _ in range(calls):
            run()
    return 2 * M * N * K * calls / _median(_timed(batch) for _ in range(repeats)) / 1e9


def gpu_gflops(n=4096, repeats=10):
    """The GPU matmul ceiling of this run: float32 n^3 products through cuBLAS (PyTorch, else
    CuPy), TF32 off. None when neither is installed or no GPU is visible."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        torch.backends.cuda.matmul.allow_tf32 = False
        a = torch.randn(n, n, device="cuda")
        b = torch.randn(n, n, device="cuda")
        run, sync = (lambda: a @ b), torch.cuda.synchronize
    except ImportError:
        try:
            import cupy
            a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
            b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
            run, sync = (lambda: a @ b), cupy.cuda.Device().synchronize
        except Exception:
            return None
    run()
    sync()

    def once():
        t0 = time.perf_counter()
        for _ in range(5):
            run()
        sync()
        return (time.perf_counter() - t0) / 5
    return 2 * n ** 3 / _median(once() for _ in range(repeats)) / 1e9


def machine():
    info = {"cpu": _cpu_name(), "cores": os.cpu_count(), "gpu": None,
            "versions": {"mlpfast": __version__, "numpy": np.__version__,
                         "python": platform.python_version()}}
    import numba
    info["versions"]["numba"] = numba.__version__
    info["threading_layer"] = _threading_layer()
    # the peers' versions from their metadata: importing them here would load their thread
    # pools into this process (the engines run in processes of their own)
    from importlib import metadata
    for mod, dist in (("torch", "torch"), ("jax", "jax"), ("sklearn", "scikit-learn")):
        try:
            info["versions"][mod] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [f"{p.get('internal_api')} {p.get('architecture')}" for p in threadpool_info()
                        if p.get("user_api") == "blas"]
    except ImportError:
        pass
    from .engine import cuda_status
    if cuda_status()[0]:
        info["gpu"] = gpu_name()
        try:
            import numba_cuda
            info["versions"]["numba-cuda"] = numba_cuda.__version__
        except (ImportError, AttributeError):
            pass
    return info


def gpu_name():
    """'NAME (compute capability X.Y, N GiB)' of the current CUDA device."""
    from .engine import cuda_device
    name, cc, total, _ = cuda_device()
    return f"{name} (compute capability {cc[0]}.{cc[1]}, {total / 2 ** 30:.0f} GiB)"


def _threading_layer():
    import numba

    from .kernels.matmul import matmul
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet: run one
        a = np.ones((256, 64), np.float32)
        try:
            matmul(a, a.T.copy())
            return numba.threading_layer()
        except ValueError as exc:  # the layer asked for (NUMBA_THREADING_LAYER) cannot load
            return f"unavailable ({str(exc).splitlines()[0].rstrip('.')})"


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median(values):
    return float(np.median(list(values)))
