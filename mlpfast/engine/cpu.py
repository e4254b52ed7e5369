"""The CPU engine: whole runs of minibatches inside one compiled call (mlpfast.kernels).

Python is entered once per epoch, or once per chunk of minibatches when the caller wants
progress reports; chunks are sized from the time the previous one took so that reports come
about every config.PROGRESS_SECONDS without paying a Python round trip per minibatch.
"""
import os

import numba
import numpy as np

from ..errors import DeviceError
from ..kernels import buffers, network, random
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


class CPUEngine(Engine):
    name = "cpu"

    def _workspace(self, cap, n_targets, n_params):
        s = self.spec
        return buffers.train_workspace(s.widths, s.dtype, n_targets, n_params, cap)

    def start(self, theta, opt1, opt2, X, y, Y):
        if _forked_after_openmp:
            raise DeviceError(
                "cannot train in a process forked after mlpfast trained in its parent (GNU "
                "OpenMP's threads do not survive fork): use multiprocessing.get_context('spawn') "
                "or 'forkserver', or set NUMBA_THREADING_LAYER=workqueue before the first fit")
        spec = self.spec
        self.theta, self.opt1, self.opt2 = theta, opt1, opt2
        # a read-only input (a memory map, say) would make Numba compile the whole network a
        # second time for its type; one writable copy is cheaper
        self.X, self.y, self.Y = (np.require(a, requirements=["C", "W"]) for a in (X, y, Y))
        self.layout = layout_of(theta, spec)
        self.widths = spec.widths_array
        self.grad = np.zeros_like(theta)
        self.ws = self._workspace(spec.batch_size, Y.shape[1], theta.shape[0])
        self.perm = np.arange(X.shape[0], dtype=np.int64)

    def _run(self, first, last, hyper, counters, rng, totals):
        s = self.spec
        network.train_batches(self.ws, numba.get_num_threads(), self.X, self.y, self.Y,
                              self.perm, first, last, s.batch_size, self.theta, self.grad,
                              self.opt1, self.opt2, self.layout, self.widths, s.hidden,
                              s.classify, s.solver, hyper, counters, rng, totals)

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None, start=0, totals=None):
        if shuffle and start == 0:
            random.shuffle(self.perm, rng)
        n = self.X.shape[0]
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

    def gradient(self, theta, X, y, Y, alpha):
        """Full-batch loss and gradient (flat, like theta) at theta, without an update."""
        n = X.shape[0]
        spec = self.spec
        grad = np.zeros_like(theta)
        loss, _ = network.batch_gradient(
            self._workspace(n, Y.shape[1], theta.shape[0]), X, y, Y,
            np.arange(n, dtype=np.int64), 0, n, theta, grad, layout_of(theta, spec),
            spec.widths_array, spec.hidden, spec.classify, alpha, 0.0, np.zeros(1, np.uint64))
        return loss / n, grad

    def predict(self, theta, X):
        spec = self.spec
        # the kernels are compiled for writable arrays (an unpickled model's may not be): one
        # copy of the weights rather than a second compilation of the network
        theta = np.require(theta, requirements=["C", "W"])
        X = np.require(X, requirements=["C", "W"])
        ws = buffers.predict_workspace(spec.widths, spec.dtype, X.shape[0])
        out = np.empty((X.shape[0], spec.widths[-1]), spec.dtype)
        network.predict_raw(ws, out, X, theta, layout_of(theta, spec), spec.widths_array,
                            spec.hidden, spec.classify)
        return out


def kernels_cached():
    """Whether Numba's on-disk cache holds the training kernels (False on the first run after
    an install, when they compile for about a minute on 2 cores); None when it cannot tell."""
    try:
        return os.path.exists(network.train_batches._cache._cache_file._index_path)
    except AttributeError:  # Numba's cache internals moved
        return None
