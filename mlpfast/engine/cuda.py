"""The CUDA engine: the training data, parameters, gradients and optimizer state stay on the GPU
for the whole fit (kernels/cuda_kernels.py).

Per epoch the host shuffles the order with the estimator's generator (the CPU engine's draw, so
both engines see the same batches), uploads that permutation, each step's sum of sample weights
and the per-step learning rates (Adam's bias-corrected step sizes, computed in float64 as the
CPU does), runs the steps, and reads back one (loss, hits) pair per step. The weights come back
in sync().

Output kinds: NetSpec.output (kernels.softmax.OUT_*): identity + half squared error, softmax +
cross-entropy (targets y, class indices), sigmoid + binary cross-entropy, exp + half Poisson
deviance (targets Y (N, C) for all but softmax). predict() returns the output activation.

Sample weights (start(..., sample_weight)), scikit-learn's semantics: each row's output delta
is scaled by w_r / sum(w over its minibatch), the L2 coefficient is alpha / sum(w), and a
minibatch's loss is (weighted summed loss + 0.5 alpha ||W||^2) / sum(w), which the epoch's
totals add times the minibatch's rows. A minibatch whose weights sum to 0 is skipped: no
update, no Adam step, nothing added to the loss or the hits (its rows still count).
Precision: the weights live on the GPU in float32 (the kernels are float32 throughout); each
minibatch's sum is taken on the host in float64 over those float32 values, then rounded to
float32 for the kernels, and the loss's division by it is done on the host in float64.

Dense X only: scipy sparse input is refused with a TypeError.

Two ways to run the steps, same kernel code:
- 'persistent' (default): one cooperative launch per epoch (or progress chunk) that runs every
  phase of every step with a grid-wide sync between phases;
- 'phased': one launch per phase, 2L + 2 per step.
`MLPFAST_CUDA_MODE=phased` picks the second (bench measures both).
"""
import os
import sys
import time

import numpy as np

from ..errors import DeviceError
from ..kernels import cuda_kernels as ck
from ..kernels import network, random
from . import together
from .base import Engine, layout_of, run_in_chunks

MODES = ("persistent", "phased")
# blocks per SM in a launch (a persistent launch is also capped at what can be resident)
BLOCKS_PER_SM = 2


SPARSE_MESSAGE = ("the CUDA engine needs dense X; convert with X.toarray() or train with "
                  "device='cpu'")


def _dense(X):
    """TypeError for a scipy sparse X (only possible once scipy.sparse has been imported)."""
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(X):
        raise TypeError(SPARSE_MESSAGE)


def _weights32(sample_weight, n):
    """sample_weight (n,) as the float32 the GPU holds, checked: finite, >= 0, no positive
    weight that rounds to 0 in float32, and a sum (so every minibatch's) below float32's
    largest value."""
    w = np.asarray(sample_weight, np.float64)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, X has {n} rows")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("sample_weight must be finite and >= 0")
    # every minibatch's sum must stay finite in float32 too: bound the whole sum
    too_big = w.sum() >= np.finfo(np.float32).max
    w32 = None if too_big else w.astype(np.float32)
    if too_big or ((w32 == 0) & (w > 0)).any():
        raise ValueError("the CUDA engine holds sample weights in float32: positive weights "
                         "must be at least 1.4e-45 and sum to less than 3.4e38 (rescale them, "
                         "or use device='cpu')")
    return w32


def _mode():
    mode = os.environ.get("MLPFAST_CUDA_MODE", "persistent")
    if mode not in MODES:
        raise DeviceError(f"MLPFAST_CUDA_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


class CUDAEngine(Engine):
    name = "cuda"
    # rows per predict launch (the activations of a chunk live on the device)
    predict_chunk_rows = 65536

    def __init__(self, spec, mode=None, tiles=None, threads=None):
        if np.dtype(spec.dtype) != np.float32:
            raise DeviceError("the CUDA engine trains in float32; use dtype='float32' "
                              "or device='cpu' for float64")
        super().__init__(spec)
        from numba import cuda
        self._cuda = cuda
        self.mode = mode or _mode()
        tx, ty = threads or (ck.TX, ck.TY)
        self.k = ck.make_kernels(tiles or ck.TILES, tx, ty)
        self.transfer_seconds = 0.0
        self._grids = {}

    # ---- set-up

    def _blocks(self, kernel, args):
        """Blocks per launch: enough to fill every SM twice, and for a persistent kernel no
        more than can be resident at once (its grid-wide syncs need every block running)."""
        if ck.SIM:
            # the simulator runs a cooperative grid of one block only
            return 1 if self.mode == "persistent" else 3
        if id(kernel) not in self._grids:
            sms = self._cuda.get_current_device().MULTIPROCESSOR_COUNT
            grid = BLOCKS_PER_SM * sms
            if self.mode == "persistent":
                argtypes = tuple(kernel.typeof_pyval(a) for a in args)
                compiled = kernel.compile(argtypes)
                grid = min(grid, compiled.max_cooperative_grid_blocks(self.k.NT))
            self._grids[id(kernel)] = max(1, grid)
        return self._grids[id(kernel)]

    def _to_device(self, a):
        if a.size == 0:  # unused by the kernels (y of a regressor, Y of a classifier)
            a = np.zeros((1,) * a.ndim, a.dtype)
        t0 = time.perf_counter()
        d = self._cuda.to_device(np.ascontiguousarray(a))
        self.transfer_seconds += time.perf_counter() - t0
        return d

    def start(self, theta, opt1, opt2, X, y, Y, sample_weight=None):
        """Upload the data (X dense; y class indices for softmax, else Y (N, C)), the weights
        and optimizer state; sample_weight None or (N,) >= 0 (see the module docstring)."""
        _dense(X)
        spec = self.spec
        cuda = self._cuda
        cap = spec.batch_size
        self.theta, self.opt1, self.opt2 = theta, opt1, opt2
        self.n = X.shape[0]
        layout = layout_of(theta, spec)
        self.L = layout.shape[0]
        self.n_batches = -(-self.n // cap)
        # sums of weights per minibatch are taken over the float32 values the kernels read
        self.sw = None if sample_weight is None else _weights32(sample_weight, self.n)
        try:
            self.d_X = self._to_device(X.astype(np.float32, copy=False))
            self.d_y = self._to_device(y.astype(np.int32, copy=False))
            self.d_Y = self._to_device(Y.astype(np.float32, copy=False))
            # without weights the kernels never read sw: a placeholder
            self.d_sw = self._to_device(np.zeros(1, np.float32) if self.sw is None else self.sw)
            self.d_theta = self._to_device(theta)
            self.d_opt1 = self._to_device(opt1)
            self.d_opt2 = self._to_device(opt2 if opt2.shape == theta.shape else np.zeros_like(theta))
            self.d_grad = cuda.device_array_like(self.d_theta)
            self.d_layout = self._to_device(layout.astype(np.int32))
            self.d_widths = self._to_device(np.asarray(spec.widths, np.int32))
            total = cap * int(sum(spec.widths))
            self.d_acts = cuda.to_device(np.zeros(total, np.float32))
            self.d_deltas = cuda.to_device(np.zeros(total, np.float32))
            self.d_stats = cuda.to_device(np.zeros((self.n_batches, 2), np.float32))
        except Exception as exc:  # numba's CUDA errors share no public base class
            if "OUT_OF_MEMORY" in str(exc).upper():
                raise DeviceError("the data and model do not fit in GPU memory; "
                                  "use device='cpu' or fewer rows") from exc
            raise DeviceError(f"CUDA error while copying the data to the GPU: {exc}") from exc
        self.perm = np.arange(self.n, dtype=np.int64)
        self.ip = self._ints(self.L)
        self.ip[ck.IP_N] = self.n
        self.ip[ck.IP_CAP] = cap
        self.ip[ck.IP_SOLVER] = spec.solver
        self.ip[ck.IP_WEIGHTED] = int(self.sw is not None)

    def _ints(self, L):
        """The kernels' int32 parameter array (ck.IP_* slots), with what every kernel reads."""
        ip = np.zeros(ck.IP_SIZE, np.int32)
        ip[ck.IP_L] = L
        ip[ck.IP_HIDDEN] = self.spec.hidden
        ip[ck.IP_OUTPUT] = int(self.spec.output)
        return ip

    # ---- training

    def _hyper(self, hyper):
        h = np.zeros(9, np.float32)
        h[ck.HY_ALPHA] = hyper[network.H_ALPHA]
        h[ck.HY_MOMENTUM] = hyper[network.H_MOMENTUM]
        b1, b2 = hyper[network.H_BETA1], hyper[network.H_BETA2]
        h[ck.HY_B1], h[ck.HY_B2] = b1, b2
        h[ck.HY_C1], h[ck.HY_C2] = 1.0 - b1, 1.0 - b2
        h[ck.HY_EPS] = hyper[network.H_EPSILON]
        rate = hyper[network.H_DROPOUT]
        h[ck.HY_RATE] = rate
        h[ck.HY_KEEP] = 1.0 / (1.0 - rate)
        return h

    def _batch_rows(self):
        cap = self.spec.batch_size
        rows = np.full(self.n_batches, cap, np.float64)
        if self.n_batches:
            rows[-1] = self.n - cap * (self.n_batches - 1)
        return rows

    def _batch_weights(self):
        """Each minibatch's sum of weights (float64) in this epoch's order: its rows without
        weights."""
        if self.sw is None or self.n == 0:
            return self._batch_rows()
        starts = np.arange(0, self.n, self.spec.batch_size)
        return np.add.reduceat(self.sw[self.perm].astype(np.float64), starts)

    def _step_sizes(self, hyper, counters, live):
        """The learning rate of each step of this epoch, as the CPU's optimizer computes it;
        skipped steps (live False) take no Adam step."""
        lr = hyper[network.H_LR]
        nb = self.n_batches
        if self.ip[ck.IP_SOLVER] == network.ADAM:
            t = counters[network.C_ADAM_T] + np.cumsum(live, dtype=np.float64)
            t = np.maximum(t, 1.0)  # steps skipped before the first: any finite size
            b1, b2 = hyper[network.H_BETA1], hyper[network.H_BETA2]
            steps = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
            counters[network.C_ADAM_T] += int(np.count_nonzero(live))
        else:
            steps = np.full(nb, lr)
        return steps.astype(np.float32)

    def _launch_steps(self, b_first, b_last, seed, ph_first=0, ph_last=None):
        k = self.k
        args = (self.d_X, self.d_y, self.d_Y, self.d_sw, self.d_perm, self.d_theta,
                self.d_grad, self.d_opt1, self.d_opt2, self.d_layout, self.d_widths, self.d_acts,
                self.d_deltas, self.d_stats, self.d_lrs, self.d_wsums, self.d_hyper, self.d_ip)
        if ph_last is None:
            ph_last = ck.n_phases(self.L)
        if self.mode == "persistent":
            kern = k.steps_persistent
            full = args + (b_first, b_last, ph_first, ph_last, seed)
            kern[self._blocks(kern, full), k.NT](*full)
        else:
            kern = k.steps_phased
            grid = self._blocks(kern, None)
            for b in range(b_first, b_last):
                for ph in range(ph_first, ph_last):
                    kern[grid, k.NT](*args, b, b + 1, ph, ph + 1, seed)

    def _upload_epoch(self, hyper, counters):
        """Uploads what the epoch's steps read; returns each step's factor rows / sum(w) for
        its loss (0 for a skipped step)."""
        wsums = self._batch_weights()
        live = wsums > 0
        self.ip[ck.IP_NESTEROV] = int(counters[network.C_NESTEROV] != 0)
        self.d_perm = self._to_device(self.perm.astype(np.int32))
        self.d_wsums = self._to_device(wsums.astype(np.float32))
        self.d_lrs = self._to_device(self._step_sizes(hyper, counters, live))
        self.d_hyper = self._to_device(self._hyper(hyper))
        self.d_ip = self._to_device(self.ip)
        factors = np.zeros(self.n_batches)
        factors[live] = self._batch_rows()[live] / wsums[live]
        return factors

    def gradient(self, theta, X, y, Y, alpha=0.0, sample_weight=None):
        """Full-batch loss and gradient (flat, like theta) at theta, without an update, as the
        CPU engine's gradient(): loss = weighted mean loss + 0.5 * alpha * ||W||^2 / sum(w),
        the gradient with its L2 term. Every phase of one step, the update an SGD step with
        learning rate -1 and no momentum, so that the velocity it leaves is the gradient.
        For tests; at most batch_size rows."""
        _dense(X)
        n = X.shape[0]
        if n > self.spec.batch_size:
            raise ValueError("gradient() takes at most batch_size rows")
        theta = theta.astype(np.float32)  # a copy: the step moves it
        self.start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y, Y, sample_weight)
        self.ip[ck.IP_SOLVER] = network.SGD
        hyper = np.zeros(7, np.float64)
        hyper[network.H_LR] = -1.0
        hyper[network.H_ALPHA] = alpha
        factors = self._upload_epoch(hyper, np.zeros(2, np.int64))
        if factors[0] == 0:
            raise ValueError("the sample weights sum to 0: the loss is undefined")
        self._launch_steps(0, 1, 0)
        stats = self.d_stats.copy_to_host()
        # the mean loss: rows * loss / rows
        return float(stats[0, ck.ST_LOSS] * factors[0]) / n, self.d_opt1.copy_to_host()

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None, start=0, totals=None):
        # in together.run_together: a GPU epoch is not pooled, the CPU fits go on meanwhile
        with together.away(parallel=False):
            return self._train_epoch(rng, shuffle, hyper, counters, progress, start)

    def _train_epoch(self, rng, shuffle, hyper, counters, progress, start):
        if start:
            raise NotImplementedError("the CUDA engine cannot continue an epoch midway; resume "
                                      "on the CPU (device='cpu')")
        if shuffle:
            random.shuffle(self.perm, rng)
        seed = 0
        if hyper[network.H_DROPOUT] > 0:
            seed = int(random.next_u64(rng) >> np.uint64(1))
        factors = self._upload_epoch(hyper, counters)
        nb = self.n_batches
        stats = np.zeros((nb, 2), np.float32)
        if progress is None:
            self._launch_steps(0, nb, seed)
        else:
            def run(first, last):
                self._launch_steps(first, last, seed)
                self.d_stats.copy_to_host(stats)

            def report(last):
                done = min(last * self.spec.batch_size, self.n)
                progress(done, self.n, _totals(stats[:last], factors[:last], done))
            run_in_chunks(nb, run, report)
        self.d_stats.copy_to_host(stats)
        return _totals(stats, factors, self.n)

    def sync(self):
        if not hasattr(self, "d_theta"):
            return
        t0 = time.perf_counter()
        self.d_theta.copy_to_host(self.theta)
        self.d_opt1.copy_to_host(self.opt1)
        if self.opt2.shape == self.theta.shape:
            self.d_opt2.copy_to_host(self.opt2)
        self.transfer_seconds += time.perf_counter() - t0

    # ---- prediction

    def predict(self, theta, X):
        """The output activation (kernels.softmax.OUT_*) of the network at theta for X (dense),
        float32 (n, C)."""
        _dense(X)
        spec = self.spec
        k = self.k
        layout = layout_of(theta, spec)
        n = X.shape[0]
        C = spec.widths[-1]
        out = np.empty((n, C), np.float32)
        if n == 0:
            return out
        cap = min(self.predict_chunk_rows, n)
        d_theta = self._to_device(theta.astype(np.float32, copy=False))
        d_layout = self._to_device(layout.astype(np.int32))
        d_widths = self._to_device(np.asarray(spec.widths, np.int32))
        d_ip = self._to_device(self._ints(layout.shape[0]))
        d_acts = self._cuda.device_array(cap * int(sum(spec.widths)), np.float32)
        d_out = self._cuda.device_array((cap, C), np.float32)
        d_perm = self._to_device(np.arange(cap, dtype=np.int32))
        n_ph = layout.shape[0] + 1
        for start in range(0, n, cap):
            rows = min(cap, n - start)
            d_X = self._to_device(X[start: start + rows].astype(np.float32, copy=False))
            args = (d_X, d_perm, rows, d_theta, d_layout, d_widths, d_acts, d_out, d_ip)
            if self.mode == "persistent":
                kern = k.predict_persistent
                kern[self._blocks(kern, args + (0, n_ph)), k.NT](*args, 0, n_ph)
            else:
                kern = k.predict_phased
                grid = self._blocks(kern, None)
                for ph in range(n_ph):
                    kern[grid, k.NT](*args, ph, ph + 1)
            t0 = time.perf_counter()
            out[start: start + rows] = d_out[:rows].copy_to_host()
            self.transfer_seconds += time.perf_counter() - t0
        return out


def _totals(stats, factors, rows):
    """(summed loss, hits, rows) of the steps' stats: each step's loss is its rows times
    (weighted summed loss + L2 term) / sum(w), factors = rows / sum(w) (exactly 1 without
    weights, 0 for a skipped step)."""
    s = stats.astype(np.float64)
    loss = (s[:, ck.ST_LOSS] * factors).sum()
    return np.array([loss, s[:, ck.ST_CORRECT].sum(), rows], np.float64)
