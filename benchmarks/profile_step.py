"""Where one CPU training step goes: the engine's compiled pieces timed on minibatches of a
workload (each in a compiled loop of many calls, best of 5), and the whole step from epochs.

    python benchmarks/profile_step.py W1      # or W2, W4

A step is the chunk pass (every chunk's gather, forward, loss and backward; one parallel
region) and the update (sum of the chunks' gradients, L2, Adam, re-packing the weights; in
parallel above config.PARALLEL_MIN_PARAMS). The parts are timed one at a time, so their sum
can differ from the step (caches, threads).
"""
import sys
import time

import numba
import numpy as np

from mlpfast import bench
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.engine.cpu import as_data
from mlpfast.kernels import addresses, buffers, network, softmax, update
from mlpfast.params import make_layout

ZERO = np.int64(0)
RELU = np.int64(1)
SOFTMAX = np.int64(softmax.OUT_SOFTMAX)


@numba.njit(parallel=True)
def _chunk_pass(reps, ws, d, perm, B, theta, grad, layout, w):
    # the chunks of a minibatch as train_batches runs them
    S, per = buffers.chunk_rows(B, ws.acts.shape[0])
    for r in range(reps):
        for c_ in numba.prange(S):
            c = np.int64(c_)
            g = grad if c == 0 else ws.grads[c - 1]
            network.chunk_gradient(ws, c, d, perm, (r % 16) * B + c * per,
                                   min(B, (c + 1) * per) - c * per, 1.0 / B, theta, g, layout,
                                   w, RELU, SOFTMAX, 0.0)


@numba.njit
def _chunk(reps, ws, d, perm, per, B, theta, grad, layout, w):
    for r in range(reps):
        network.chunk_gradient(ws, ZERO, d, perm, (r % 16) * per, per, 1.0 / B, theta,
                               grad, layout, w, RELU, SOFTMAX, 0.0)


@numba.njit
def _forward(reps, ws, per, theta, layout, w):
    for _ in range(reps):
        network.forward(ws, ZERO, theta, layout, w, per, RELU, 0.0)


@numba.njit
def _softmax(reps, ws, per, w, L):
    cap = ws.ybuf.shape[1]
    Z = buffers.layer_block(ws.acts[0], w, per, cap, L)
    dZ = buffers.layer_block(ws.deltas[0], w, per, cap, L)
    for _ in range(reps):
        softmax.softmax_xent_grad(dZ, Z, ws.ybuf[0, :per], ws.wbuf[0, :0], 1.0 / per)


@numba.njit
def _backward(reps, ws, per, grad, layout, w):
    for _ in range(reps):
        network.backward(ws, ZERO, grad, layout, w, per, RELU, 0.0)


@numba.njit
def _update(reps, ws, workers, theta, grad, m, v, layout, S, B, task_fn):
    for r in range(reps):
        update.update(ws, workers, theta, grad, m, v, layout, S, 1e-4 / B, update.ADAM, 1e-9,
                      0.9, 0.999, 1e-8, r + 1, 0.9, False, task_fn)


def best_us(fn, reps):
    fn(1)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        fn(reps)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e6


def main(name):
    wl = bench.WORKLOADS[name]
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    layout, P = make_layout(widths)
    B = wl.batch
    rs = np.random.default_rng(0)
    X, y = bench.synthetic(wl, 16 * B)
    y = y.astype(np.int32)
    Y = np.zeros((len(X), 0), np.float32)
    theta = (rs.standard_normal(P) * 0.05).astype(np.float32)
    grad = np.zeros_like(theta)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    w = np.asarray(widths, np.int64)
    ws = buffers.train_workspace(widths, np.float32, 0, P, B)
    S, per = buffers.chunk_rows(B, ws.acts.shape[0])
    perm = np.arange(len(X), dtype=np.int64)
    buffers.pack_weights(ws, theta, layout, True)
    d = as_data(NetSpec(widths, 1, 1, np.float32, network.ADAM, B), X, y, Y)
    threads = numba.get_num_threads()
    reps = max(10, int(1e8 // max(1, wl.flop_per_epoch(B))))
    L = len(widths) - 1
    task_fn = addresses.address_of(update._task, update.task_types(ws, theta, grad, m, v, layout,
                                                                   update.ADAM))
    parts = {
        f"chunk pass ({S} chunks, {threads} threads)":
            lambda r: _chunk_pass(r, ws, d, perm, B, theta, grad, layout, w),
        f"  one chunk of {per} rows": lambda r: _chunk(r, ws, d, perm, per, B, theta, grad,
                                                       layout, w),
        "    forward": lambda r: _forward(r, ws, per, theta, layout, w),
        "    softmax + CE gradient": lambda r: _softmax(r, ws, per, w, L),
        "    backward": lambda r: _backward(r, ws, per, grad, layout, w),
        f"update ({threads} threads)": lambda r: _update(r, ws, threads, theta, grad, m, v,
                                                          layout, S, B, task_fn),
        "update (1 thread)": lambda r: _update(r, ws, 1, theta, grad, m, v, layout, S, B, task_fn),
    }
    engine = CPUEngine(NetSpec(widths, 1, True, np.float32, network.ADAM, B))
    engine.start(theta.copy(), np.zeros_like(theta), np.zeros_like(theta), X, y, Y)
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    counters = np.zeros(2, np.int64)
    rng = np.zeros(1, np.uint64)
    step = best_us(lambda r: [engine.train_epoch(rng, False, hyper, counters)
                              for _ in range(r)], 3) / len(X) * B

    print(f"{name}: batch {B} in {S} chunks, widths {widths}, {P} parameters, "
          f"{threads} threads; whole step {step:.1f} us")
    for label, fn in parts.items():
        print(f"  {label:<48} {best_us(fn, reps):8.2f} us")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "W1")
