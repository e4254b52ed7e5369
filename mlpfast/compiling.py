"""The CPU kernels' compilation: ahead of a run (compile_kernels, `mlpfast compile`), and
knowing before a run whether it will compile (pending, announce).

Numba compiles a kernel the first time it is called with a new combination of argument types
and keeps the result in its on-disk cache (NUMBA_CACHE_DIR, else __pycache__ beside the
package or the user's cache folder). A cached entry is used only when its index key matches:
the argument types, the CPU (its name and features: a cache written on another CPU, or read
under NUMBA_CPU_NAME=generic, is not used) and the kernel's source. pending() asks the same
question of the same index with Numba's own key function, without compiling anything.

The kernels specialise on the dtype only: dense and CSR data, weights, every output kind and
both stochastic solvers share one compiled version per dtype (they are arguments, not types).
"""
import contextlib
import importlib
import logging
import os
import tempfile
import threading
import time
import warnings
from collections import namedtuple

import numpy as np

log = logging.getLogger("mlpfast")

DTYPES = ("float32", "float64")

# the kernels Python calls (each compiles its callees into itself): name -> (module in
# mlpfast.kernels, function, the argument whose dtype is the run's, or None), and what for
ENTRY_POINTS = {
    "shuffle": ("random", "shuffle", None),                    # every stochastic epoch
    "train": ("network", "train_batches", "theta"),            # fit, partial_fit (SGD, Adam)
    "predict": ("network", "predict_raw", "theta"),            # predict, scores, validation
    "lbfgs": ("network", "full_gradient", "theta"),            # solver='lbfgs' (float64 always)
    "together": ("network", "train_batches_many", "thetas"),   # run_together, sweeps
}

# compiled on their own and called through their address by an entry point
# (kernels.addresses): entry point -> (module, function, dtype argument) of each
BY_ADDRESS = {
    "train": (("network", "chunk_gradient", "theta"),),
    "lbfgs": (("network", "chunk_gradient", "theta"),),
}

# what a run needs, by what it does
FIT = ("shuffle", "train")
FIT_EVALUATING = FIT + ("predict",)
PREDICT = ("predict",)
LBFGS = ("lbfgs",)

HOW_TO_PRECOMPILE = "`mlpfast compile` compiles them ahead of time"

Compiled = namedtuple("Compiled", "dtype kernels seconds compiled")
Compiled.__doc__ = """One step of compile_kernels: the entry points it covered, its seconds,
and how many functions Numba compiled (0: everything came from the cache)."""


def _dispatcher(module, function):
    # this package's kernels (under another name when a benchmark imports a copy of it)
    return getattr(importlib.import_module(f"{__package__}.kernels.{module}"), function)


def _dtype_position(arg, dispatcher):
    if arg is None:
        return None
    code = dispatcher.py_func.__code__
    return code.co_varnames[:code.co_argcount].index(arg)


def _matches(types, position, dtype):
    if position is None:
        return True
    return getattr(types[position], "dtype", None) == dtype


def _kernel_dtype(name, dtype):
    # the L-BFGS objective is evaluated in float64 whatever the model's dtype
    return "float64" if name == "lbfgs" else np.dtype(dtype).name


def is_compiled(name, dtype):
    """Whether entry point `name` (ENTRY_POINTS) for `dtype` runs without compiling in this
    process, with the functions it calls through their address (BY_ADDRESS): compiled here
    already, or in Numba's on-disk cache for this CPU and this source. None when Numba's
    cache internals cannot be read (another Numba version)."""
    states = [_function_compiled(*where, _kernel_dtype(name, dtype))
              for where in (ENTRY_POINTS[name],) + BY_ADDRESS.get(name, ())]
    if False in states:
        return False
    return None if None in states else True


def _function_compiled(module, function, arg, dtype):
    import numba
    dispatcher = _dispatcher(module, function)
    if not hasattr(dispatcher, "overloads"):  # not a Numba dispatcher (a test's wrapper)
        return None
    position = _dtype_position(arg, dispatcher)
    want = numba.from_dtype(np.dtype(dtype))
    if any(_matches(types, position, want) for types in list(dispatcher.overloads)):
        return True
    return _cached(dispatcher, lambda types: _matches(types, position, want))


def _cached(dispatcher, wanted):
    """Whether Numba's on-disk cache holds `dispatcher` for argument types that wanted(types)
    accepts, usable here: Numba's own key for them on this CPU (name and features) and for
    this source, as when Numba looks it up, and its data file present. None when Numba's
    cache internals cannot be read (another Numba version, an index it cannot unpickle)."""
    try:
        cache = dispatcher._cache
        if not hasattr(cache, "_cache_file"):  # a NullCache: nothing is cached
            return False
        codegen = dispatcher.targetctx.codegen()
        index = cache._cache_file._load_index()  # {} when absent, stale or another version
        return any(wanted(key[0]) and cache._index_key(key[0], codegen) == key
                   and os.path.exists(cache._cache_file._data_path(data_name))
                   for key, data_name in index.items())
    except (AttributeError, TypeError, ValueError, IndexError, OSError, ImportError):
        return None


def pending(kernels, dtype):
    """The entry points among `kernels` that will compile in this process for `dtype` (those
    whose state cannot be read count as not pending)."""
    return [k for k in kernels if is_compiled(k, dtype) is False]


_announced = set()  # (entry point, dtype) announced, or found compiled, in this process
_lock = threading.Lock()
_silent = [0]


@contextlib.contextmanager
def silenced():
    """No announce() meanwhile, in any thread (compile_kernels' own runs, which include
    run_together's threads)."""
    with _lock:
        _silent[0] += 1
    try:
        yield
    finally:
        with _lock:
            _silent[0] -= 1


def announce(kernels, dtype):
    """Log one WARNING on the `mlpfast` logger when some of `kernels` (ENTRY_POINTS names)
    will compile for `dtype` in this process, once per kernel and dtype; the record carries
    `mlpfast_compiling` (the kernels) for a front end that shows its own notice. Returns the
    kernels that will compile."""
    if _silent[0]:
        return []
    dtype = np.dtype(dtype).name
    with _lock:
        todo = [k for k in kernels if (k, _kernel_dtype(k, dtype)) not in _announced]
        if not todo:
            return []
        state = {k: is_compiled(k, dtype) for k in todo}
        # said once; and one found compiled stays so in this process: neither is asked again
        _announced.update((k, _kernel_dtype(k, dtype)) for k, ok in state.items()
                          if ok is not None)
        compiling = [k for k, ok in state.items() if ok is False]
        if not compiling:
            return []
    notify(compiling, dtype)
    return compiling


def notify(kernels, dtype, where=""):
    """The WARNING of announce() for `kernels` known to compile (in this process, or, with
    `where`, elsewhere: "on the sweep's workers")."""
    log.warning("mlpfast: compiling the %s kernels (%s)%s: Numba's cache has none for this "
                "CPU; 10-30 s on 2 cores, once, then loaded from the cache; %s",
                np.dtype(dtype).name, ", ".join(kernels), f" {where}" if where else "",
                HOW_TO_PRECOMPILE, extra={"mlpfast_compiling": tuple(kernels)})


def finished(kernels, dtype, seconds):
    """Log at INFO that the announced `kernels` have compiled (the call that compiled them
    returned after `seconds`); the record carries `mlpfast_compiled` for a front end that
    shows a moving time until then. Nothing for an empty list."""
    if kernels:
        log.info("mlpfast: compiled the %s kernels (%s) in %.1f s", np.dtype(dtype).name,
                 ", ".join(kernels), seconds, extra={"mlpfast_compiled": tuple(kernels)})


# ---- one kernel compiled in another process meanwhile

class Apart:
    """Kernels compiling one after the other in a child process (compile_apart, started by
    _python_child). The child writes each function's name to its pipe once that is in the
    cache."""

    def __init__(self, process, functions, reports, errors):
        self.process = process
        self.functions = tuple(functions)
        self.reports = reports  # the read end of the child's pipe
        self.errors = errors    # its stderr
        self.done = set()
        self.lock = threading.Lock()

    def wait_for(self, function):
        """Wait until `function` is in the cache; whether it got there (False: the child
        failed, logged at DEBUG, or does not compile it; the caller compiles it itself). The
        child goes on with the kernels after it, and a thread collects it when it ends."""
        if function not in self.functions:  # cached already when the child started
            return False
        with self.lock:
            while function not in self.done and self._read_one():
                pass
            if self.process.returncode is None and not self.done >= set(self.functions):
                threading.Thread(target=self.finish, name="mlpfast-compile-apart",
                                 daemon=True).start()
            elif self.process.returncode is None:
                self._reap()
            return function in self.done

    def finish(self, ok=True):
        """Wait for the child (ok), or stop it (not ok: the caller is leaving on an error or a
        signal). Returns whether it compiled every kernel."""
        if not ok:
            self.process.kill()
        with self.lock:
            while self._read_one():
                pass
            return self.process.returncode == 0 and self.done >= set(self.functions)

    def _read_one(self):
        """One more report from the child; False (and the child collected) at its end."""
        if self.process.returncode is not None:
            return False
        line = self.reports.readline()
        if line:
            self.done.add(line.decode(errors="replace").strip())
            return True
        self._reap()
        return False

    def _reap(self):
        self.done.update(line.strip() for line in
                         self.reports.read().decode(errors="replace").splitlines())
        self.reports.close()
        self.process.wait()
        self.errors.seek(0)
        err = self.errors.read()
        self.errors.close()
        with _lock:
            if self in _running:
                _running.remove(self)
        if self.process.returncode not in (0, -9):  # -9: finish(ok=False) killed it
            lines = err.decode(errors="replace").strip().splitlines()
            log.debug("mlpfast: compiling %s in another process failed (%s)",
                      ", ".join(self.functions),
                      lines[-1] if lines else f"exit status {self.process.returncode}")


_running = []  # the Aparts whose child may still be compiling


def wait_for_kernel(function):
    """Before compiling `function` here: wait for a child of compile_apart that compiles it
    (then it loads from the cache). Nothing to wait for in most calls."""
    for apart in list(_running):
        if function in apart.functions:
            apart.wait_for(function)


def wait_apart():
    """Wait until every child of compile_apart has ended (its kernels in the cache). A fit's
    child goes on compiling predict_raw while the fit trains, and the thread Governor counts it
    as another process's load (one thread meanwhile): benchmarks call this before timing the
    steady state. Returns whether there was any."""
    running = list(_running)
    for apart in running:
        apart.finish()
    return bool(running)


def compile_apart(kernels):
    """Start compiling `kernels`, a list of (module in mlpfast.kernels, function, argtypes (a
    tuple of Numba types)), one after the other in a new Python process, into Numba's on-disk
    cache, so that this process compiles something else meanwhile and then loads them from the
    cache: the first fit compiles chunk_gradient and predict_raw so beside train_batches on a
    second core. Returns an Apart, or None where that would not help or cannot be done:
    config.COMPILE_APART off, kernels not cached, one usable CPU, each of them compiled here
    already or in the cache, or no process could be started. Numba's cache writes are locked
    across processes (kernels.lock_cache_saves)."""
    import pickle
    import subprocess
    from . import config
    from .cluster import cores  # light: dask is imported only when a cluster starts
    from .kernels import CACHE
    if not config.COMPILE_APART or not CACHE or cores() < 2:
        return None
    todo = []
    for module, function, argtypes in kernels:
        dispatcher = _dispatcher(module, function)
        argtypes = tuple(argtypes)
        if (argtypes not in dispatcher.overloads
                and _cached(dispatcher, lambda types, a=argtypes: tuple(types) == a) is False):
            todo.append((module, function, argtypes))
    if not todo:
        return None
    what = ", ".join(function for _, function, _ in todo)
    try:
        payload = pickle.dumps(todo)
        process, reports, errors = _python_child(_CHILD, stdin=subprocess.PIPE)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        log.debug("mlpfast: cannot compile %s in another process (%s)", what, exc)
        return None
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except OSError as exc:  # the child is gone already (BrokenPipeError)
        process.kill()
        process.wait()
        reports.close()
        errors.close()
        log.debug("mlpfast: cannot compile %s in another process (%s)", what, exc)
        return None
    apart = Apart(process, [function for _, function, _ in todo], reports, errors)
    with _lock:
        _running.append(apart)
    return apart


_CHILD = f"from {__package__}.compiling import _compile_child\n_compile_child()\n"


def _python_child(code, *args, stdin=None):
    """A new Python process (sys.executable) running `code` with argv[2:] = args and then the
    descriptor of a pipe for its results, on this process's mlpfast (a checkout imported by
    its path, say: its kernels' source is what the cache entries are keyed on) and Numba cache
    folder (the one kernels._route_cache chose). Its stdout goes nowhere and its stderr to a
    temporary file (a pipe that nobody reads meanwhile would stop a child that writes much
    there). Returns (the process, the read end of its pipe, its stderr file)."""
    import subprocess
    import sys
    import numba
    env = dict(os.environ)
    if numba.config.CACHE_DIR:
        env["NUMBA_CACHE_DIR"] = numba.config.CACHE_DIR
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prelude = ("import sys\n"
               "if sys.argv[1] not in sys.path:\n"
               "    sys.path.insert(0, sys.argv[1])\n")
    read, write = os.pipe()
    errors = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", prelude + code, root, *args, str(write)], env=env,
            pass_fds=(write,), stdin=stdin, stdout=subprocess.DEVNULL, stderr=errors)
    except BaseException:
        os.close(read)
        errors.close()
        raise
    finally:
        os.close(write)  # the child's now: its end closes when it exits
    return process, os.fdopen(read, "rb"), errors


def _compile_child():
    """compile_apart's child: [(module, function, argtypes), ...] pickled on stdin; each
    function's name on the pipe whose descriptor is argv[2] once it is compiled (cached)."""
    import pickle
    import sys
    kernels = pickle.loads(sys.stdin.buffer.read())
    with os.fdopen(int(sys.argv[2]), "w") as reports:
        for module, function, argtypes in kernels:
            _dispatcher(module, function).compile(argtypes)
            reports.write(function + "\n")
            reports.flush()


# ---- compiling ahead of time

def _tiny(dtype):
    """A few rows that exercise a fit: 2 features, 2 classes."""
    X = np.zeros((8, 2), dtype)
    X[::2] = 1
    return X, np.array([0, 1] * 4)


def _fit(dtype, **kw):
    """A one-epoch fit of the tiny problem. Its ConvergenceWarning (one epoch does not
    converge, as meant) is silenced by the caller, once around all the runs: warnings'
    filters are process-wide, and catch_warnings in run_together's threads raced (one thread
    restored the others' 'ignore' and left every warning silenced)."""
    from .estimators import MLPClassifier
    X, y = _tiny(dtype)
    return MLPClassifier(hidden_layer_sizes=(2,), max_iter=1, batch_size=4, tol=0.0,
                         dtype=dtype, random_state=0, **kw).fit(X, y)


def _run_train(dtype):
    _fit(dtype)


def _run_predict(dtype):
    est = _fit(dtype)
    est.predict_proba(_tiny(dtype)[0])


def _run_lbfgs(dtype):
    _fit(dtype, solver="lbfgs")


def _run_together(dtype):
    from .engine.together import run_together
    for result in run_together([lambda: _fit(dtype), lambda: _fit(dtype)]):
        if isinstance(result, BaseException):
            raise result


# the runs that make each entry point compile, through the code a real run goes through (so
# the arguments' types are a real run's): name -> (run, what it compiles besides)
WARMERS = {
    "train": (_run_train, FIT),
    "predict": (_run_predict, PREDICT),
    "lbfgs": (_run_lbfgs, LBFGS),
    "together": (_run_together, ("together",)),
}


class _CompileCounter:
    """Counts Numba's compilations (the "numba:compile" event) while installed."""

    def __init__(self):
        from numba.core import event
        self.count = 0
        counter = self

        class Listener(event.Listener):
            def on_start(self, ev):
                counter.count += 1

            def on_end(self, ev):
                pass

        self.listener = Listener()

    @contextlib.contextmanager
    def installed(self):
        from numba.core import event
        with event.install_listener("numba:compile", self.listener):
            yield self


def compile_kernels(dtypes=DTYPES, kernels=tuple(WARMERS), on_step=None, processes=1):
    """Compile every CPU kernel variant a run may dispatch into Numba's on-disk cache, so that
    later processes load them instead of compiling: for each dtype (float32, float64), the
    stochastic fit (SGD and Adam, dropout, weights, every output kind, dense and CSR: one
    version), prediction, the L-BFGS objective (float64) and run_together's pooled training.

    on_step(dtype, name) is called before each step. With processes > 1 and several dtypes,
    the dtypes after the first compile at the same time in child processes (up to processes -
    1 of them; Numba's cache writes are locked across processes), and on_step is called for
    their steps when they start, not before each. Returns a list of Compiled, one per dtype
    and step, in the order of dtypes. Kernels already cached load in well under a second.
    Raises MLPFastError when the kernels cannot be cached here (nothing writable: set
    NUMBA_CACHE_DIR), or when a child process fails (with its last line of error)."""
    from .errors import MLPFastError
    if cache_folder() is None:
        raise MLPFastError("the kernels cannot be cached here: neither the install folder, the "
                           "home cache nor the temporary directory is writable; set "
                           "NUMBA_CACHE_DIR to a writable folder")
    dtypes = [np.dtype(dtype).name for dtype in dtypes]
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    kernels = tuple(kernels)
    here, apart = dtypes[:1], dtypes[1:]
    if processes <= 1:
        here, apart = dtypes, []
    children = []
    try:
        for group in [apart[i::processes - 1] for i in range(min(len(apart), processes - 1))]:
            children.append((group, _start_steps(group, kernels)))
            if on_step is not None:
                for dtype in group:
                    for name in kernels:
                        on_step(dtype, name)
        out = _steps(here, kernels, on_step)
        for _, started in children:
            out += _finish_steps(started)
    finally:
        for _, (child, results, errors) in children:
            if child.poll() is None:  # leaving on an error or a signal
                child.kill()
                child.wait()
            results.close()
            errors.close()
    order = {dtype: i for i, dtype in enumerate(dtypes)}
    return sorted(out, key=lambda c: order[c.dtype])


def _steps(dtypes, kernels, on_step):
    out = []
    counter = _CompileCounter()
    for dtype in dtypes:
        for name in kernels:
            run, covers = WARMERS[name]
            if on_step is not None:
                on_step(dtype, name)
            before = counter.count
            t0 = time.perf_counter()
            with silenced(), counter.installed(), warnings.catch_warnings():
                # the tiny fits' ConvergenceWarning, once around all their threads (see _fit)
                warnings.simplefilter("ignore")
                run(dtype)
            out.append(Compiled(dtype, covers, time.perf_counter() - t0, counter.count - before))
    return out


_STEPS_CHILD = f"from {__package__}.compiling import _steps_child\n_steps_child()\n"


def _start_steps(dtypes, kernels):
    """(child process, the read end of its results pipe, its stderr file) compiling dtypes'
    kernels."""
    import json
    import subprocess
    return _python_child(_STEPS_CHILD, json.dumps([list(dtypes), list(kernels)]),
                         stdin=subprocess.DEVNULL)


def _finish_steps(started):
    import json
    from .errors import MLPFastError
    child, results, errors = started
    out = results.read()
    child.wait()
    if child.returncode != 0:
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
        raise MLPFastError("compiling in a child process failed: "
                           + (lines[-1] if lines else f"exit status {child.returncode}"))
    return [Compiled(d, tuple(k), s, c) for d, k, s, c in json.loads(out.decode())]


def _steps_child():
    """compile_kernels' child: its dtypes and kernels as JSON in argv[2]; the Compiled steps
    as JSON on the pipe whose descriptor is argv[3]."""
    import json
    import sys
    dtypes, kernels = json.loads(sys.argv[2])
    out = _steps(dtypes, kernels, None)
    with os.fdopen(int(sys.argv[3]), "w") as results:
        results.write(json.dumps([[c.dtype, list(c.kernels), c.seconds, c.compiled]
                                  for c in out]))


def cache_folder():
    """The folder where Numba caches the training kernel (None when nothing is cached)."""
    from .kernels import CACHE
    if not CACHE:
        return None
    return _dispatcher(*ENTRY_POINTS["train"][:2])._cache.cache_path
