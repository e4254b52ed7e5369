"""CPU benchmark of issue #2: W1, W2, W4 on mlpfast, PyTorch eager and scikit-learn in one run,
and the Numba matmul against NumPy's BLAS on the MLP's own shapes and on 1024^3.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_cpu.py [--epochs 3]

(the two OPENBLAS_* variables, set on this workplace's machines, hold OpenBLAS to an older
kernel; unset them so the peer runs at its best.) Prints steady-state medians and ratios.
"""
import argparse
import json
import sys

import numpy as np

from mlpfast import bench


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3, help="steady-state epochs after the first")
    ap.add_argument("--workloads", default="W1,W2,W4")
    ap.add_argument("--engines", default="mlpfast-cpu,torch-cpu,sklearn")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    import numba
    threads = numba.get_num_threads()
    info = bench.machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, numba threads {threads} "
          f"({info['threading_layer']}), BLAS {info.get('blas')}")
    print(f"versions: {info['versions']}")
    results = {"machine": info, "epochs": [], "matmul": []}

    ceiling = bench.blas_gflops()
    print(f"\nNumPy sgemm 1024^3: {ceiling:.0f} GFLOP/s")
    print("\nmatmul C(M,N) = A(M,K) B(K,N), float32, median of 7, GFLOP/s")
    print(f"{'shape':>22} {'numba':>8} {'numpy':>8} {'ratio':>6}")
    shapes = []
    for name in args.workloads.split(","):
        wl = bench.WORKLOADS[name]
        widths = (wl.features,) + wl.hidden + (wl.classes,)
        for i, o in zip(widths[:-1], widths[1:]):
            # forward, input gradient, weight gradient
            shapes += [(name, wl.batch, i, o), (name, wl.batch, o, i), (name, o, wl.batch, i)]
    shapes.append(("square", 1024, 1024, 1024))
    ours_all = [bench.matmul_gflops(M, K, N, "numba") for _, M, K, N in shapes]
    theirs_all = [bench.matmul_gflops(M, K, N, "numpy") for _, M, K, N in shapes]
    for (tag, M, K, N), ours, theirs in zip(shapes, ours_all, theirs_all):
        results["matmul"].append({"tag": tag, "M": M, "K": K, "N": N, "numba": ours, "numpy": theirs})
        print(f"{tag:>6} {M:>5}x{K:>4}x{N:>4} {ours:8.1f} {theirs:8.1f} {ours / theirs:6.2f}")

    print(f"\nepochs: first (compile / set-up) apart, then median of {args.epochs}")
    print(f"{'workload':>8} {'engine':>12} {'first s':>8} {'epoch s':>8} {'GFLOP/s':>8}")
    for name in args.workloads.split(","):
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl)
        medians = {}
        for engine in args.engines.split(","):
            ok, why = bench.available(engine)
            if not ok:
                print(f"{name:>8} {engine:>12}  skipped: {why}")
                continue
            first, times, _ = bench.time_engine(bench.ENGINES[engine], X, y, wl, args.epochs, threads)
            med = float(np.median(times))
            medians[engine] = med
            gf = wl.flop_per_epoch() / med / 1e9
            results["epochs"].append({"workload": name, "engine": engine, "first": first,
                                      "epochs": times, "median": med, "gflops": gf})
            print(f"{name:>8} {engine:>12} {first:8.2f} {med:8.3f} {gf:8.1f}")
            sys.stdout.flush()
        base = medians.get("mlpfast-cpu")
        if base:
            ratios = ", ".join(f"{e} / mlpfast = {t / base:.1f}x" for e, t in medians.items()
                               if e != "mlpfast-cpu")
            print(f"{'':>8} speed-up of mlpfast-cpu: {ratios}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
