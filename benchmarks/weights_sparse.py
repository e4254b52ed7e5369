"""What sample weights, CSR input and the full-batch objective cost on the CPU engine: one
package, variants' epochs alternating in one process; best and median us per minibatch step
(loss_gradient: us per batch_size rows of its pass, no update).

    python benchmarks/weights_sparse.py [--wl W1,W4] [--rounds 10] [--density 0.1]

Variants on the same 40,000 synthetic rows of each workload (float32, Adam, no shuffle):
dense (the unweighted path), weighted (uniform random weights), csr (the same rows as a CSR
matrix, zeros dropped at --density: the dense variants get the same zeros),
loss_gradient (the L-BFGS objective over all rows, in blocks of the batch size).
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp

from mlpfast import bench
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.kernels import network
from mlpfast.params import make_layout


def run(names, rounds, density):
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    for name in names:
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl, 40000)
        X[np.random.default_rng(1).random(X.shape) > density] = 0
        y = y.astype(np.int32)
        Y = np.zeros((len(X), 0), np.float32)
        w = np.random.default_rng(2).uniform(0, 2, len(X))
        widths = (wl.features,) + wl.hidden + (wl.classes,)
        _, P = make_layout(widths)
        variants = {}
        for tag, (Xv, wv) in {"dense": (X, None), "weighted": (X, w),
                              "csr": (sp.csr_matrix(X), None),
                              "loss_gradient": (X, None)}.items():
            theta = (np.random.default_rng(0).standard_normal(P) * 0.05).astype(np.float32)
            e = CPUEngine(NetSpec(widths, 1, 1, np.float32, network.ADAM, wl.batch))
            e.start(theta, np.zeros_like(theta), np.zeros_like(theta), Xv, y, Y, wv)
            variants[tag] = e
        steps = -(-len(X) // wl.batch)
        times = {tag: [] for tag in variants}
        for r in range(rounds):
            for tag, e in variants.items():
                counters, rng = np.zeros(2, np.int64), np.array([1], np.uint64)
                t0 = time.perf_counter()
                if tag == "loss_gradient":
                    e.loss_gradient(e.theta, e.opt1, 1e-4)
                else:
                    e.train_epoch(rng, False, hyper, counters)
                if r:  # the first round compiles
                    times[tag].append((time.perf_counter() - t0) / steps * 1e6)
        print(f"{name} (density {density}):", "  ".join(
            f"{t}: best {min(v):.1f} median {np.median(v):.1f}" for t, v in times.items()),
            "us/step", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wl", default="W1,W4")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--density", type=float, default=0.1)
    args = ap.parse_args()
    run(args.wl.split(","), args.rounds, args.density)


if __name__ == "__main__":
    main()
