"""What training in the Governor's slices costs (mlpfast.threads): epochs of the CPU engine in
one call (one thread: no Governor) against the same epochs in slices of config.SLICE_SECONDS
with the Governor held to one thread, epochs alternating in one process, so that the machine's
load treats both alike and the thread count is the same on both sides.

    python benchmarks/slice_cost.py [--wl W1,W2,W4] [--rounds 9]

Prints each side's median us per step and the median over rounds of sliced / one call.
40,000 synthetic rows of each workload, no shuffle, Adam.
"""
import argparse
import time

import numba
import numpy as np

from mlpfast import bench, threads
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.kernels import network
from mlpfast.params import make_layout


class OneThread(threads.Governor):
    def __init__(self, top, **kw):
        super().__init__(top, **kw)
        self.threads = 1

    def done(self, threads_, batches, seconds):
        self.per_batch[threads_] = seconds / batches  # slices sized as usual; never switches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wl", default="W1,W2,W4")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    if numba.config.NUMBA_NUM_THREADS < 2:
        raise SystemExit("needs two Numba threads")
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    for name in args.wl.split(","):
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl, 40000)
        y = y.astype(np.int32)
        widths = (wl.features,) + wl.hidden + (wl.classes,)
        _, P = make_layout(widths)
        theta = (np.random.default_rng(0).standard_normal(P) * 0.05).astype(np.float32)
        e = CPUEngine(NetSpec(widths, 1, True, np.float32, network.ADAM, wl.batch))
        e.start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y,
                np.zeros((len(X), 0), np.float32))
        steps = -(-len(X) // wl.batch)
        times = {"one call": [], "sliced": []}
        for r in range(args.rounds + 1):
            for side in times:
                counters, rng = np.zeros(2, np.int64), np.array([1], np.uint64)
                if side == "one call":
                    numba.set_num_threads(1)
                else:
                    numba.set_num_threads(2)
                    e.governor = OneThread(2)
                t0 = time.perf_counter()
                e.train_epoch(rng, False, hyper, counters)
                took = time.perf_counter() - t0
                numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
                if r:  # the first round compiles and warms up
                    times[side].append(took / steps * 1e6)
        ratio = np.median(np.divide(times["sliced"], times["one call"]))
        print(f"{name}: one call {np.median(times['one call']):.1f} us/step, sliced "
              f"{np.median(times['sliced']):.1f} us/step; sliced / one call per round: median "
              f"{ratio:.3f}", flush=True)


if __name__ == "__main__":
    main()
