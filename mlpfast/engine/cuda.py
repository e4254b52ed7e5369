"""The CUDA engine: the training data, parameters, gradients and optimizer state stay on the GPU
for the whole fit (kernels/cuda_kernels.py).

Per epoch the host shuffles the order with the estimator's generator (the CPU engine's draw, so
both engines see the same batches), uploads that permutation and the per-step learning rates
(Adam's bias-corrected step sizes, computed in float64 as the CPU does), runs the steps, and
reads back one (loss, hits) pair per step. The weights come back in sync().

Two ways to run the steps, same kernel code:
- 'persistent' (default): one cooperative launch per epoch (or progress chunk) that runs every
  phase of every step with a grid-wide sync between phases;
- 'phased': one launch per phase, 2L + 2 per step.
`MLPFAST_CUDA_MODE=phased` picks the second (bench measures both).
"""
import os
import time

import numpy as np

from ..errors import DeviceError
from ..kernels import cuda_kernels as ck
from ..kernels import network, random
from .base import Engine, layout_of, run_in_chunks

MODES = ("persistent", "phased")
# blocks per SM in a launch (a persistent launch is also capped at what can be resident)
BLOCKS_PER_SM = 2


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

    def start(self, theta, opt1, opt2, X, y, Y):
        spec = self.spec
        cuda = self._cuda
        cap = spec.batch_size
        self.theta, self.opt1, self.opt2 = theta, opt1, opt2
        self.n = X.shape[0]
        layout = layout_of(theta, spec)
        self.L = layout.shape[0]
        try:
            self.d_X = self._to_device(X.astype(np.float32, copy=False))
            self.d_y = self._to_device(y.astype(np.int32, copy=False))
            self.d_Y = self._to_device(Y.astype(np.float32, copy=False))
            self.d_theta = self._to_device(theta)
            self.d_opt1 = self._to_device(opt1)
            self.d_opt2 = self._to_device(opt2 if opt2.shape == theta.shape else np.zeros_like(theta))
            self.d_grad = cuda.device_array_like(self.d_theta)
            self.d_layout = self._to_device(layout.astype(np.int32))
            self.d_widths = self._to_device(np.asarray(spec.widths, np.int32))
            total = cap * int(sum(spec.widths))
            self.d_acts = cuda.to_device(np.zeros(total, np.float32))
            self.d_deltas = cuda.to_device(np.zeros(total, np.float32))
            self.n_batches = -(-self.n // cap)
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

    def _ints(self, L):
        """The kernels' int32 parameter array (ck.IP_* slots), with what every kernel reads."""
        ip = np.zeros(ck.IP_SIZE, np.int32)
        ip[ck.IP_L] = L
        ip[ck.IP_HIDDEN] = self.spec.hidden
        ip[ck.IP_CLASSIFY] = int(self.spec.classify)
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

    def _step_sizes(self, hyper, counters):
        """The learning rate of each step of this epoch, as the CPU's optimizer computes it."""
        lr = hyper[network.H_LR]
        nb = self.n_batches
        if self.spec.solver == network.ADAM:
            t = counters[network.C_ADAM_T] + 1 + np.arange(nb, dtype=np.float64)
            b1, b2 = hyper[network.H_BETA1], hyper[network.H_BETA2]
            steps = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
            counters[network.C_ADAM_T] += nb
        else:
            steps = np.full(nb, lr)
        return steps.astype(np.float32)

    def _launch_steps(self, b_first, b_last, seed, ph_first=0, ph_last=None):
        k = self.k
        args = (self.d_X, self.d_y, self.d_Y, self.d_perm, self.d_theta, self.d_grad,
                self.d_opt1, self.d_opt2, self.d_layout, self.d_widths, self.d_acts,
                self.d_deltas, self.d_stats, self.d_lrs, self.d_hyper, self.d_ip)
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
        self.ip[ck.IP_NESTEROV] = int(counters[network.C_NESTEROV] != 0)
        self.d_perm = self._to_device(self.perm.astype(np.int32))
        self.d_lrs = self._to_device(self._step_sizes(hyper, counters))
        self.d_hyper = self._to_device(self._hyper(hyper))
        self.d_ip = self._to_device(self.ip)

    def gradient(self, theta, X, y, Y):
        """Full-batch mean loss and gradient (flat, like theta, without L2) at theta: the
        forward, loss and backward phases of one step, no update. For tests."""
        n = X.shape[0]
        if n > self.spec.batch_size:
            raise ValueError("gradient() takes at most batch_size rows")
        theta = theta.astype(np.float32)
        self.start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y, Y)
        hyper = np.zeros(7, np.float64)
        self._upload_epoch(hyper, np.zeros(2, np.int64))
        self._launch_steps(0, 1, 0, 0, 2 * self.L + 1)
        stats = self.d_stats.copy_to_host()
        return float(stats[0, ck.ST_LOSS]) / n, self.d_grad.copy_to_host()

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None, start=0, totals=None):
        if start:
            raise NotImplementedError("the CUDA engine cannot continue an epoch midway; resume "
                                      "on the CPU (device='cpu')")
        if shuffle:
            random.shuffle(self.perm, rng)
        seed = 0
        if hyper[network.H_DROPOUT] > 0:
            seed = int(random.next_u64(rng) >> np.uint64(1))
        self._upload_epoch(hyper, counters)
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
                progress(done, self.n, _totals(stats[:last], done))
            run_in_chunks(nb, run, report)
        self.d_stats.copy_to_host(stats)
        return _totals(stats, self.n)

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


def _totals(stats, rows):
    s = stats.astype(np.float64).sum(axis=0)
    return np.array([s[ck.ST_LOSS], s[ck.ST_CORRECT], rows], np.float64)
