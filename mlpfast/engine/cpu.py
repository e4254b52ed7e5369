"""The CPU engine: whole runs of minibatches inside one compiled call (mlpfast.kernels).

Python is entered once per epoch, or once per chunk of minibatches when the caller wants
progress reports; chunks are sized from the time the previous one took so that reports come
about every config.PROGRESS_SECONDS without paying a Python round trip per minibatch.
"""
import os
import sys
import time

import numba
import numpy as np

from .. import compiling, config, threads
from ..errors import DeviceError
from ..kernels import addresses, buffers, network, random, update
from . import together
from .base import Engine, layout_of, run_in_chunks

# set in a child forked from a process whose training started GNU OpenMP's threads, which are
# not fork-safe: the child's first parallel region would abort it (and leave a Pool waiting)
_forked_after_openmp = False


def _after_fork_in_child():
    global _forked_after_openmp
    try:
        from numba.np.ufunc import parallel
        _forked_after_openmp = bool(parallel._is_initialized) and parallel._threading_layer == "omp"
    except (ImportError, AttributeError):  # Numba's internals moved: no check
        pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def _writable(a, dtype):
    # a read-only input (a memory map, say) would make Numba compile the whole network a
    # second time for its type, and so would another dtype: one writable copy is cheaper
    return np.require(a, dtype, requirements=["C", "W"])


def _is_sparse(X):
    # without importing scipy: an X from scipy.sparse means the module is loaded already
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def as_data(spec, X, y=None, Y=None, sample_weight=None):
    """The kernels' buffers.Data tuple for X (dense array or scipy.sparse CSR), y, Y and the
    weights: every array C-contiguous, writable and of the type the kernels are compiled for,
    copied only where it is not. A CSR X is canonicalised (duplicates summed, indices sorted:
    on a copy, only when it is not canonical already), with int64 indices; the dense X is then
    (0, F)."""
    dtype = spec.dtype
    empty_i = np.zeros(0, np.int64)
    if _is_sparse(X):
        if X.format != "csr":
            X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        n = X.shape[0]
        dense = np.zeros((0, X.shape[1]), dtype)
        data, indices = _writable(X.data, dtype), _writable(X.indices, np.int64)
        indptr = _writable(X.indptr, np.int64)
    else:
        n = X.shape[0]
        dense = _writable(X, dtype)
        data, indices, indptr = np.zeros(0, dtype), empty_i, empty_i
    y = np.zeros(0, np.int32) if y is None else _writable(y, np.int32)
    Y = np.zeros((n, 0), dtype) if Y is None else _writable(Y, dtype)
    w = np.zeros(0) if sample_weight is None else _writable(sample_weight, np.float64)
    return buffers.Data(dense, data, indices, indptr, y, Y, w)


class CPUEngine(Engine):
    name = "cpu"

    def _workspace(self, cap, n_targets, n_params):
        s = self.spec
        return buffers.train_workspace(s.widths, s.dtype, n_targets, n_params, cap)

    @property
    def _output(self):
        # an int for the kernels whatever the spec holds (True/False from older callers): one
        # compiled version
        return int(self.spec.output)

    def start(self, theta, opt1, opt2, X, y, Y, sample_weight=None):
        """Bind theta, the optimizer state and the data (see engine.base) for train_epoch and
        loss_gradient. X dense or scipy.sparse CSR; sample_weight None or float64 (N,)."""
        if _forked_after_openmp:
            raise DeviceError(
                "cannot train in a process forked after mlpfast trained in its parent (GNU "
                "OpenMP's threads do not survive fork): use multiprocessing.get_context('spawn') "
                "or 'forkserver', or set NUMBA_THREADING_LAYER=workqueue before the first fit")
        # Numba's OpenMP layer enables nested regions when it starts; set back before our
        # first parallel call so that other code on this thread does not nest (mlpfast.threads)
        threads.restore_nesting()
        spec = self.spec
        self.theta, self.opt1, self.opt2 = theta, opt1, opt2
        self.data = as_data(spec, X, y, Y, sample_weight)
        self.n = buffers.n_rows_of(self.data)
        self.layout = layout_of(theta, spec)
        self.widths = spec.widths_array
        self.grad = np.zeros_like(theta)
        self.ws = self._workspace(spec.batch_size, self.data.Y.shape[1], theta.shape[0])
        self.perm = np.arange(self.n, dtype=np.int64)
        self.governor = None  # threads.Governor of this fit, made at the first slice
        # the Addresses (_addresses) for these arrays' types: chunk_gradient's and _task's
        # for train_batches, chunk_gradient's for full_gradient (the data's order, any theta
        # of this dtype)
        self._chunk_fn = self._task_fn = self._full_fn = None
        # nothing for other threads: every minibatch one chunk and the update below the size
        # that pays for threads (network.train_batches opens no parallel region)
        self.serial = (min(self.ws.acts.shape[0], buffers.chunk_count.py_func(spec.batch_size))
                       == 1 and theta.shape[0] < config.PARALLEL_MIN_PARAMS)

    def _run(self, first, last, hyper, counters, rng, totals):
        group = together.current()
        if group is not None:
            # a thread of together.run_together: pooled with the other fits' runs
            group.train(self, first, last, hyper, counters, rng, totals)
        else:
            self._train(first, last, hyper, counters, rng, totals)

    def _train(self, first, last, hyper, counters, rng, totals):
        top = numba.get_num_threads()
        if top == 1 or self.serial:
            # nothing for other threads: no Governor (its load windows and slices), one thread
            with threads.numba_threads(1):
                self._train_on(1, first, last, hyper, counters, rng, totals)
            return
        # slices on all threads while the machine leaves the cores free, else on one
        # (mlpfast.threads: spinning OpenMP threads on busy cores ran 8-17x slower than one)
        if self.governor is None:
            self.governor = threads.Governor(top)
        gov = self.governor
        gov.top = top
        b = first
        while b < last:
            k, n = gov.plan(last - b)
            t0 = time.perf_counter()
            with threads.numba_threads(k):
                self._train_on(k, b, b + n, hyper, counters, rng, totals)
            gov.done(k, n, time.perf_counter() - t0)
            b += n

    def _train_on(self, workers, first, last, hyper, counters, rng, totals):
        s = self.spec
        args = [self.ws, workers, self.data, self.perm, first, last, s.batch_size, self.theta,
                self.grad, self.opt1, self.opt2, self.layout, self.widths, s.hidden,
                self._output, s.solver, hyper, counters, rng, totals]
        if self._chunk_fn is None:  # their types take a millisecond: once a fit (W4: 8 % a step)
            task = (update._task, update.task_types(self.ws, self.theta, self.grad, self.opt1,
                                                    self.opt2, self.layout, s.solver))
            self._chunk_fn, self._task_fn = self._addresses(network.train_batches, args,
                                                            self.perm, self.theta, task)
        network.train_batches(*args, self._chunk_fn, self._task_fn)

    def _addresses(self, caller, args, perm, theta, *more):
        """The Addresses (kernels.addresses) that `caller` (train_batches or full_gradient)
        takes after its arguments args (of which perm and theta): chunk_gradient's, then those
        of `more`, (dispatcher, argument types) pairs. When the caller is not compiled yet in
        this process, it compiles (or loads) the caller while a child compiles what the cache
        lacks of chunk_gradient and predict_raw for dense input (compiling.compile_apart), then
        loads them from the cache."""
        chunk = (network.chunk_gradient,
                 network.chunk_gradient_types(self.ws, self.data, perm, theta, self.grad,
                                              self.layout, self.widths, self.spec.hidden,
                                              self._output))
        wanted = (chunk,) + more
        apart = None
        if not caller.overloads:
            apart = compiling.compile_apart([("network", "chunk_gradient", chunk[1]),
                                             ("network", "predict_raw", self._predict_types())])
        if apart is not None:
            try:
                signature = tuple(caller.typeof_pyval(a) for a in args)
                caller.compile(signature + tuple(addresses.AddressType(t) for _, t in wanted))
                # predict_raw may still be compiling: predict() waits for it if it comes first
                apart.wait_for("chunk_gradient")
            except BaseException:  # an error, or a signal: the child stops too
                apart.finish(ok=False)
                raise
        return tuple(addresses.address_of(fn, types) for fn, types in wanted)

    def _predict_types(self):
        """The argument types of predict()'s call of predict_raw for dense input."""
        s = self.spec
        theta = np.zeros(self.theta.shape[0], s.dtype)
        args = (buffers.predict_workspace(s.widths, s.dtype, 1),
                np.empty((1, s.widths[-1]), s.dtype),
                as_data(s, np.zeros((1, s.widths[0]), s.dtype)), theta, layout_of(theta, s),
                s.widths_array, s.hidden, self._output)
        return tuple(network.predict_raw.typeof_pyval(a) for a in args)

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None, start=0, totals=None):
        if shuffle and start == 0:
            random.shuffle(self.perm, rng)
        n = self.n
        n_batches = -(-n // self.spec.batch_size)
        totals = np.zeros(3, np.float64) if totals is None else np.array(totals, np.float64)
        if progress is None:
            self._run(start, n_batches, hyper, counters, rng, totals)
        else:
            run_in_chunks(n_batches,
                          lambda first, last: self._run(first, last, hyper, counters, rng, totals),
                          lambda last: progress(int(totals[network.T_ROWS]), n, totals), start)
        return totals

    def order(self):
        return self.perm

    def gradient(self, theta, X, y, Y, alpha, sample_weight=None):
        """(loss, grad): scikit-learn's objective over all of X as one minibatch (weighted
        mean loss + 0.5 * alpha * ||W||^2 / sum of weights) and its gradient (flat, like
        theta), without an update. Its buffers grow with the rows (the chunks of one
        minibatch): for checks; loss_gradient is the bounded one. Weights summing to 0: (0.0,
        zeros)."""
        threads.restore_nesting()
        spec = self.spec
        d = as_data(spec, X, y, Y, sample_weight)
        n = buffers.n_rows_of(d)
        theta = _writable(theta, spec.dtype)
        grad = np.zeros_like(theta)
        total, sw, _ = network.batch_gradient(
            self._workspace(n, d.Y.shape[1], theta.shape[0]), d, np.zeros(0, np.int64), 0, n,
            theta, grad, layout_of(theta, spec), spec.widths_array, spec.hidden, self._output,
            float(alpha), 0.0, np.zeros(1, np.uint64))
        return (total / sw if sw else 0.0), grad

    def loss_gradient(self, theta, grad, alpha):
        """scikit-learn's full-batch objective at theta on the data bound by start() (weighted
        mean loss + 0.5 * alpha * ||W||^2 / sum of weights, alpha an argument: the estimator's
        alpha), returned as a float, and its gradient written into grad (P,), for L-BFGS.

        theta and grad may be float64 whatever spec.dtype (scipy's L-BFGS works in float64):
        theta is converted, and a grad that is not a writable C-contiguous spec.dtype array
        gets the result copied in. Compiled in one call: blocks of spec.batch_size rows in
        the training workspace (memory bounded by the batch, not the rows), each block's
        chunks in parallel (up to MAX_CHUNKS threads for a batch of MAX_CHUNKS * CHUNK_ROWS
        rows or more), summed in a fixed order: the same bits for any thread count. No
        dropout. Weights summing to 0: 0.0 and a zero gradient."""
        spec = self.spec
        theta = _writable(theta, spec.dtype)
        direct = (grad.dtype == spec.dtype and grad.flags.c_contiguous
                  and grad.flags.writeable and grad is not self.grad)
        out = grad if direct else np.empty(theta.shape[0], spec.dtype)
        top = numba.get_num_threads()
        if self.governor is None and top > 1:
            self.governor = threads.Governor(top)
        if top > 1:
            self.governor.top = top
        # each call a slice of the Governor's (see _train): L-BFGS's training is these calls
        k = self.governor.plan(1)[0] if top > 1 else 1
        t0 = time.perf_counter()
        args = [self.ws, self.data, np.zeros(0, np.int64), theta, out, self.grad, self.layout,
                self.widths, spec.hidden, self._output, float(alpha), np.int64(spec.batch_size)]
        if self._full_fn is None:
            (self._full_fn,) = self._addresses(network.full_gradient, args, args[2], theta)
        with together.away(), threads.numba_threads(k):
            # in run_together: not pooled, the others go on meanwhile
            f = network.full_gradient(*args, self._full_fn)
        if top > 1:
            self.governor.done(k, 1, time.perf_counter() - t0)
        if not direct:
            grad[:] = out
        return float(f)

    def predict(self, theta, X):
        """The outputs for X (dense or scipy.sparse CSR) through spec.output's activation."""
        threads.restore_nesting()
        spec = self.spec
        # the kernels are compiled for writable arrays (an unpickled model's may not be): one
        # copy of the weights rather than a second compilation of the network
        theta = _writable(theta, spec.dtype)
        d = as_data(spec, X)
        n = buffers.n_rows_of(d)
        ws = buffers.predict_workspace(spec.widths, spec.dtype, n)
        out = np.empty((n, spec.widths[-1]), spec.dtype)
        compiling.wait_for_kernel("predict_raw")  # compiling in another process (first fit)
        # on the threads training last chose (a validation pass between epochs), else all
        with threads.numba_threads(threads.recent_choice(numba.get_num_threads())):
            network.predict_raw(ws, out, d, theta, layout_of(theta, spec), spec.widths_array,
                                spec.hidden, self._output)
        return out

