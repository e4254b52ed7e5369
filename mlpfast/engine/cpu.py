"""The CPU engine: whole runs of minibatches inside one compiled call (mlpfast.kernels).

Python is entered once per epoch, or once per chunk of minibatches when the caller wants
progress reports; chunks are sized from the time the previous one took so that reports come
about every config.PROGRESS_SECONDS without paying a Python round trip per minibatch.
"""
import numpy as np

from .. import config
from ..kernels import network, random
from .base import Engine, layout_of, run_in_chunks


class CPUEngine(Engine):
    name = "cpu"

    def _work_buffers(self, cap):
        dt = self.spec.dtype
        total = cap * int(sum(self.spec.widths))
        return (np.zeros(total, dt), np.zeros(total, dt), np.zeros(total, dt),
                np.zeros(network.scratch_size(self.spec.widths, cap), dt))

    def start(self, theta, opt1, opt2, X, y, Y):
        spec = self.spec
        cap = spec.batch_size
        self.theta, self.opt1, self.opt2 = theta, opt1, opt2
        self.X, self.y, self.Y = X, y, Y
        self.layout = layout_of(theta, spec)
        self.widths = spec.widths_array
        self.grad = np.zeros_like(theta)
        self.acts, self.deltas, self.masks, self.scratch = self._work_buffers(cap)
        self.ybuf = np.zeros(cap, np.int32)
        self.Ybuf = np.zeros((cap, Y.shape[1]), spec.dtype)
        self.perm = np.arange(X.shape[0], dtype=np.int64)

    def _run(self, first, last, hyper, counters, rng, totals):
        s = self.spec
        network.train_batches(self.X, self.y, self.Y, self.perm, first, last, s.batch_size,
                              self.theta, self.grad, self.opt1, self.opt2, self.layout,
                              self.widths, self.acts, self.deltas, self.masks, self.scratch,
                              self.ybuf, self.Ybuf, s.hidden, s.classify, s.solver, hyper,
                              counters, rng, totals)

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None):
        if shuffle:
            random.shuffle(self.perm, rng)
        n = self.X.shape[0]
        n_batches = -(-n // self.spec.batch_size)
        totals = np.zeros(3, np.float64)
        if progress is None:
            self._run(0, n_batches, hyper, counters, rng, totals)
        else:
            run_in_chunks(n_batches,
                          lambda first, last: self._run(first, last, hyper, counters, rng, totals),
                          lambda last: progress(int(totals[network.T_ROWS]), n, totals))
        return totals

    def gradient(self, theta, X, y, Y, alpha):
        """Full-batch loss and gradient (flat, like theta) at theta, without an update."""
        n = X.shape[0]
        spec = self.spec
        acts, deltas, masks, scratch = self._work_buffers(n)
        grad = np.zeros_like(theta)
        loss, _ = network.batch_gradient(
            X, y, Y, np.arange(n, dtype=np.int64), 0, n, n, theta, grad,
            layout_of(theta, spec), spec.widths_array, acts, deltas, masks, scratch,
            np.zeros(n, np.int32), np.zeros((n, Y.shape[1]), spec.dtype), spec.hidden,
            spec.classify, alpha, 0.0, np.zeros(1, np.uint64))
        return loss / n, grad

    def predict(self, theta, X):
        spec = self.spec
        cap = min(config.PREDICT_CHUNK_ROWS, X.shape[0])
        acts = np.zeros(cap * int(sum(spec.widths)), spec.dtype)
        out = np.empty((X.shape[0], spec.widths[-1]), spec.dtype)
        scratch = np.zeros(network.scratch_size(spec.widths, cap), spec.dtype)
        network.predict_raw(out, X, theta, layout_of(theta, spec), spec.widths_array,
                            acts, scratch, cap, spec.hidden, spec.classify)
        return out
