"""Other code after an mlpfast fit, in the same process (issue 13): a PyTorch CPU epoch of a
workload right after `MLPClassifier.fit` on it, against the same epoch in a process where
mlpfast never ran.

    python benchmarks/after_fit.py [--wl W1] [--rounds 5] [--peer torch|numpy]
        [--variant NAME:VAR=VALUE,...]

Each measurement is a process of its own: `fresh` imports mlpfast (for the data), then runs the
peer's warm-up epoch and its timed epochs; `after fit` first trains mlpfast for two epochs on
the same data, then does the same. Rounds alternate the two (and the variants), and the table gives each one's median
seconds per epoch and after fit / fresh. `--peer numpy` times a NumPy training epoch instead
(OpenBLAS matmuls: mlpfast.bench's plain NumPy loop) when PyTorch is not installed.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

PEER = r"""
import json, sys, time, warnings
import numpy as np
name, peer, fit_first, epochs = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
from mlpfast import bench
wl = bench.WORKLOADS[name]
X, y = bench.synthetic(wl)
if fit_first:
    from mlpfast.estimators import MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(hidden_layer_sizes=wl.hidden, batch_size=wl.batch, random_state=0,
                      max_iter=2, tol=0.0).fit(X, y)
import numba
threads = numba.config.NUMBA_NUM_THREADS
make = bench._torch("cpu") if peer == "torch" else bench._numpy
epoch = make(X, y, wl, threads)
epoch()  # warm-up
times = []
for _ in range(epochs):
    t0 = time.perf_counter()
    epoch()
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": float(np.median(times))}))
"""


def run(wl, peer, fit_first, epochs, env, checkout):
    full = dict(os.environ)
    full.update(env)
    if checkout:
        full["PYTHONPATH"] = checkout + os.pathsep + full.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", PEER, wl, peer, "1" if fit_first else "0",
                          str(epochs)], env=full, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wl", default="W1")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2, help="timed peer epochs per process")
    ap.add_argument("--peer", default="torch", choices=["torch", "numpy"])
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:VAR=VALUE[,VAR=VALUE]: also 'after fit' with these variables")
    ap.add_argument("--before", help="also 'after fit' with this checkout's mlpfast (its folder "
                                     "first on PYTHONPATH): the before of an A/B")
    args = ap.parse_args()
    cases = [("fresh", False, {}, None), ("after fit", True, {}, None)]
    if args.before:
        cases.append(("after fit, before", True, {}, args.before))
    for v in args.variant:
        name, _, assigns = v.partition(":")
        cases.append((f"after fit, {name}", True,
                      dict(a.split("=", 1) for a in assigns.split(",") if a), None))
    print(f"command: {' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    times = {c[0]: [] for c in cases}
    for _ in range(args.rounds):
        for name, fit_first, env, checkout in cases:
            times[name].append(run(args.wl, args.peer, fit_first, args.epochs, env, checkout))
    fresh = float(np.median(times["fresh"]))
    print(f"\n{args.peer} epoch of {args.wl}, seconds, median of {args.rounds} rounds "
          f"(load average after: {os.getloadavg()[0]:.2f})")
    print("| case | median s | / fresh | rounds (s) |\n| --- | --- | --- | --- |")
    for name, *_ in cases:
        med = float(np.median(times[name]))
        print(f"| {name} | {med:.3f} | {med / fresh:.2f} | "
              + " ".join(f"{t:.2f}" for t in times[name]) + " |")


if __name__ == "__main__":
    main()
