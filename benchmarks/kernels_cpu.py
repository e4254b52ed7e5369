"""Kernel-level CPU figures: the GEMM micro-kernel alone (in L1) on one and two threads against
OpenBLAS's sgemm on one and two threads, and the elementwise kernels of a W1 chunk.

    python benchmarks/kernels_cpu.py

Best of several timed runs each; the two-thread figures alternate with the one-thread ones
(this workplace's machines drift within minutes).
"""
import time

import numba
import numpy as np

from mlpfast.kernels import activations as act
from mlpfast.kernels import matmul, optim, softmax

K = 256


@numba.njit(error_model="numpy")
def _micro_loop(C, A, P, tile, reps):
    no_bias = C[:1, :0]
    for _ in range(reps):
        matmul._micro(A, P, 0, tile, 0, 6)
        matmul._store(C, tile, 0, 6, 0, 16, no_bias, True, False)


@numba.njit(error_model="numpy", parallel=True)
def _micro_threads(Cs, As, Ps, tiles, reps, T):
    for t in numba.prange(T):
        _micro_loop(Cs[t], As[t], Ps[t], tiles[t], reps)


@numba.njit(error_model="numpy")
def _elementwise(which, dH, H, Z, dZ, y, db, reps):
    for _ in range(reps):
        if which == 0:
            act.activation_backward(dH, H, act.RELU)
        elif which == 1:
            act.apply_activation(H, act.TANH)
        elif which == 2:
            softmax.softmax_xent_grad(dZ, Z, y, 1.0 / 256)
        else:
            optim.bias_grad(db, dH)


def _best(fn, runs=5):
    fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    Cs = np.zeros((2, 6, 16), np.float32)
    As = rng.random((2, 6, K)).astype(np.float32)
    Ps = rng.random((2, K, 16)).astype(np.float32)
    tiles = np.zeros((2, 6, 16), np.float32)
    reps = 20000
    flop = 2 * 6 * 16 * K * reps
    A = rng.random((1024, 1024)).astype(np.float32)
    B = rng.random((1024, 1024)).astype(np.float32)
    C = np.empty_like(A)
    print("GFLOP/s, best of 5; threads: total (total / one thread)")
    for _ in range(3):
        ours = [flop * T / _best(lambda T=T: _micro_threads(Cs, As, Ps, tiles, reps, T))
                / 1e9 for T in (1, 2)]
        blas = []
        for T in (1, 2):
            with threadpool_limits(T):
                blas.append(2 * 1024 ** 3 / _best(lambda: np.matmul(A, B, out=C)) / 1e9)
        print(f"  micro-kernel 6x16, K={K}, in L1: 1 thread {ours[0]:6.1f}, 2 threads "
              f"{ours[1]:6.1f} ({ours[1] / ours[0]:.2f}x)   OpenBLAS 1024^3: 1 thread "
              f"{blas[0]:6.1f}, 2 threads {blas[1]:6.1f} ({blas[1] / blas[0]:.2f}x)")

    H = np.maximum(rng.standard_normal((128, 128)), 0).astype(np.float32)
    dH = rng.standard_normal((128, 128)).astype(np.float32)
    Z = rng.standard_normal((128, 10)).astype(np.float32)
    dZ = np.zeros_like(Z)
    y = rng.integers(0, 10, 128).astype(np.int32)
    db = np.zeros(128, np.float32)
    H64 = H.astype(np.float64)
    n = 2000
    print(f"\nelementwise kernels, one thread, microseconds per call (best of 5 x {n} calls)")
    for which, label, h in [(0, "relu backward, 128 x 128", H), (1, "tanh forward, 128 x 128, "
                            "float32 (rational)", H), (1, "tanh forward, 128 x 128, float64 "
                            "(libm)", H64), (2, "softmax + CE gradient, 128 x 10", H),
                            (3, "bias gradient, 128 x 128", H)]:
        hh = h.copy()
        dd = dH.astype(hh.dtype)
        t = _best(lambda: _elementwise(which, dd, hh, Z, dZ, y, db, n)) / n * 1e6
        print(f"  {label:<45} {t:7.2f}")


if __name__ == "__main__":
    main()
