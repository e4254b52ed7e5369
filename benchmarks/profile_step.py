"""Where one CPU training step goes: the engine's own compiled pieces timed on one minibatch of a
workload (best of 5 runs of many calls each), and the whole step from a full epoch.

    python benchmarks/profile_step.py W1      # or W2, W4

A step packs the weights, runs the minibatch's chunks in parallel (each: gather, forward, loss,
backward on one thread), sums the chunks' gradients, adds L2 and updates. The parts are timed
one at a time, so their sum can differ from the step (caches, threads).
"""
import sys
import time

import numba
import numpy as np

from mlpfast import bench
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.kernels import network, optim, softmax
from mlpfast.params import make_layout


def best_us(fn, reps):
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e6


def main(name):
    wl = bench.WORKLOADS[name]
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    layout, P = make_layout(widths)
    B = wl.batch
    rs = np.random.default_rng(0)
    X, y = bench.synthetic(wl, 20 * B)
    y = y.astype(np.int32)
    Y = np.zeros((len(X), 0), np.float32)
    theta = (rs.standard_normal(P) * 0.05).astype(np.float32)
    grad = np.zeros_like(theta)
    w = np.asarray(widths, np.int64)
    ws = network.train_workspace(widths, np.float32, 0, P, B)
    S, per = network.chunk_rows(B, ws.acts.shape[0])
    perm = np.arange(len(X), dtype=np.int64)
    rng = np.zeros(1, np.uint64)
    reps = max(20, int(2e8 // max(1, wl.flop_per_epoch(B))))
    c0 = np.int64(0)
    L = len(widths) - 1
    cap = ws.ybuf.shape[1]

    parts = {
        "gradient (pack, chunks, sum, L2)": lambda: network.batch_gradient(
            ws, X, y, Y, perm, 0, B, theta, grad, layout, w, 1, True, 1e-4, 0.0, rng),
        "  pack the weights": lambda: network.pack_weights(ws, theta, layout, True),
        f"  one chunk of {per} rows, one thread": lambda: network.chunk_gradient(
            ws, c0, X, y, Y, perm, 0, per, 1.0 / B, theta, grad, layout, w, 1, True, 0.0),
        "    forward": lambda: network.forward(ws, c0, theta, layout, w, per, 1, 0.0),
        "    softmax + CE gradient": lambda: softmax.softmax_xent_grad(
            network.layer_block(ws.deltas[0], w, per, cap, L),
            network.layer_block(ws.acts[0], w, per, cap, L), ws.ybuf[0, :per], 1.0 / B),
        "    backward": lambda: network.backward(ws, c0, grad, layout, w, per, 1, 0.0),
        "  L2": lambda: optim.add_l2(grad, theta, layout, 1e-4 / B),
    }
    m, v = np.zeros(P, np.float32), np.zeros(P, np.float32)
    parts["Adam update"] = lambda: optim.adam_step(theta, grad, m, v, 5, 1e-3, 0.9, 0.999, 1e-8)

    engine = CPUEngine(NetSpec(widths, 1, True, np.float32, network.ADAM, B))
    engine.start(theta.copy(), np.zeros_like(theta), np.zeros_like(theta), X, y, Y)
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    counters = np.zeros(2, np.int64)
    step = best_us(lambda: engine.train_epoch(rng, False, hyper, counters), 3) / (len(X) // B)

    print(f"{name}: batch {B} in {S} chunks, widths {widths}, {P} parameters, "
          f"{numba.get_num_threads()} threads; whole step {step:.1f} us")
    for label, fn in parts.items():
        print(f"  {label:<48} {best_us(fn, reps):8.2f} us")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "W1")
