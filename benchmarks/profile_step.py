"""Where one CPU training step goes: the engine's own compiled pieces timed on one minibatch of a
workload (best of 5 runs of many calls each), and the whole step from a full epoch.

    python benchmarks/profile_step.py W1      # or W2, W4

The parts are timed one at a time, so their sum can differ from the step (caches, threads).
"""
import sys
import time

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
    B = cap = wl.batch
    rs = np.random.default_rng(0)
    X, y = bench.synthetic(wl, 20 * B)
    y = y.astype(np.int32)
    Y = np.zeros((len(X), 0), np.float32)
    theta = (rs.standard_normal(P) * 0.05).astype(np.float32)
    grad = np.zeros_like(theta)
    w = np.asarray(widths, np.int64)
    total = cap * int(sum(widths))
    acts, deltas, masks = (np.zeros(total, np.float32) for _ in range(3))
    scratch = np.zeros(network.scratch_size(widths, cap), np.float32)
    perm = np.arange(len(X), dtype=np.int64)
    ybuf, Ybuf = np.zeros(cap, np.int32), np.zeros((cap, 0), np.float32)
    rng = np.zeros(1, np.uint64)
    reps = max(20, int(2e8 // max(1, wl.flop_per_epoch(B))))

    parts = {
        "gradient (gather, forward, loss, backward, L2)": lambda: network.batch_gradient(
            X, y, Y, perm, 0, B, cap, theta, grad, layout, w, acts, deltas, masks, scratch,
            ybuf, Ybuf, 1, True, 1e-4, 0.0, rng),
        "  forward": lambda: network.forward(theta, layout, w, acts, masks, scratch, B, cap, 1,
                                             0.0, rng),
        "  softmax + CE gradient": lambda: softmax.softmax_xent_grad(
            network.layer_block(deltas, w, B, cap, len(widths) - 1),
            network.layer_block(acts, w, B, cap, len(widths) - 1), ybuf[:B], 1.0 / B),
        "  backward": lambda: network.backward(theta, grad, layout, w, acts, deltas, masks,
                                               scratch, B, cap, 1, 0.0),
        "  L2": lambda: optim.add_l2(grad, theta, layout, 1e-4 / B),
    }
    m, v = np.zeros(P, np.float32), np.zeros(P, np.float32)
    parts["Adam update"] = lambda: optim.adam_step(theta, grad, m, v, 5, 1e-3, 0.9, 0.999, 1e-8)

    engine = CPUEngine(NetSpec(widths, 1, True, np.float32, network.ADAM, B))
    engine.start(theta.copy(), np.zeros_like(theta), np.zeros_like(theta), X, y, Y)
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    counters = np.zeros(2, np.int64)
    step = best_us(lambda: engine.train_epoch(rng, False, hyper, counters), 3) / (len(X) // B)

    print(f"{name}: batch {B}, widths {widths}, {P} parameters; whole step {step:.1f} us")
    for label, fn in parts.items():
        print(f"  {label:<48} {best_us(fn, reps):8.2f} us")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "W1")
