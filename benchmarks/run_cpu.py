"""CPU benchmark of issue #2: W1, W2, W4 on mlpfast, PyTorch eager, JAX (a compiled lax.scan
epoch) and scikit-learn in one run, each engine's epochs in a process of its own,
and the Numba matmul against NumPy's BLAS on the MLP's own shapes and on 1024^3.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_cpu.py [--epochs 3]

(the two OPENBLAS_* variables, set on some of this workplace's machines, hold OpenBLAS to an
older kernel; unset them so the peer runs at its best.) Prints steady-state medians and
ratios. These machines are shared and their speed drifts within minutes, so each engine is
measured in several rounds, in turn with its peers, and a speed-up is the median of the
rounds' ratios.
"""
import argparse
import json
import sys

import numpy as np

from mlpfast import bench


def products_epoch(wl, use, repeats=5):
    """Seconds for one epoch's matmuls of workload wl (3 per layer per minibatch, on the
    batch's shapes) through NumPy's BLAS or the Numba GEMM: the floor under any engine that
    computes them with that kernel."""
    import time

    from mlpfast.kernels.matmul import gemm_parallel, new_pack
    rng = np.random.default_rng(0)
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    B = wl.batch
    prods = []
    for i, o in zip(widths[:-1], widths[1:]):
        # forward (B, I) (I, O); input gradient (B, O) (O, I); weight gradient (I, B) (B, O)
        for M, K, N in [(B, i, o), (B, o, i), (i, B, o)]:
            A = rng.standard_normal((M, K), dtype=np.float32)
            Bm = rng.standard_normal((K, N), dtype=np.float32)
            C = np.empty((M, N), np.float32)
            if use == "numpy":
                prods.append(lambda A=A, Bm=Bm, C=C: np.matmul(A, Bm, out=C))
            else:
                pack, e = new_pack(np.float32, N, K), np.empty(0, np.float32)
                prods.append(lambda A=A, Bm=Bm, C=C, p=pack, e=e:
                             gemm_parallel(C, A, Bm, False, e, 0, p))
    steps = 200
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            for f in prods:
                f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / steps * -(-wl.rows // B)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3, help="steady-state epochs after the first")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times each engine is measured, in turn with the others")
    ap.add_argument("--workloads", default="W1,W2,W4")
    ap.add_argument("--engines", default="mlpfast-cpu,torch-cpu,jax-cpu,sklearn")
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

    print("\nthe products alone: one epoch's forward, input-gradient and weight-gradient "
          "products, nothing else (median of 5)")
    for name in args.workloads.split(","):
        wl = bench.WORKLOADS[name]
        floors = {use: products_epoch(wl, use) for use in ("numpy", "numba")}
        results.setdefault("products_floor", []).append({"workload": name, **floors})
        print(f"{name:>8}  OpenBLAS {floors['numpy']:.3f} s   Numba GEMM {floors['numba']:.3f} s")

    print(f"\nepochs: first (compile / set-up) apart, then {args.epochs} steady epochs, in "
          f"{args.rounds} rounds (engines in turn, order rotated each round)")
    print(f"{'workload':>8} {'engine':>12} {'first s':>8} {'epoch s':>8} {'GFLOP/s':>8}   "
          "per-round medians")
    engines = [e for e in args.engines.split(",")]
    for name in args.workloads.split(","):
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl)
        runs = {}
        for r in range(args.rounds):
            order = engines[r % len(engines):] + engines[:r % len(engines)]
            for engine in order:
                ok, why = bench.available(engine)
                if not ok:
                    runs[engine] = why
                    continue
                # a process of its own: a library's idle threads slowed the next engine timed
                # in the same process 5-7x (RESULTS.md 2026-12-01)
                first, times, _ = bench.time_isolated(engine, X, y, wl, args.epochs, threads)
                runs.setdefault(engine, []).append((first, times))
        medians = {}
        for engine in engines:
            got = runs.get(engine)
            if isinstance(got, str):
                print(f"{name:>8} {engine:>12}  skipped: {got}")
                continue
            per_round = [float(np.median(t)) for _, t in got]
            med = float(np.median([x for _, t in got for x in t]))
            medians[engine] = per_round
            gf = wl.flop_per_epoch() / med / 1e9
            results["epochs"].append({"workload": name, "engine": engine,
                                      "first": [f for f, _ in got],
                                      "epochs": [t for _, t in got], "median": med,
                                      "gflops": gf})
            print(f"{name:>8} {engine:>12} {np.median([f for f, _ in got]):8.2f} {med:8.3f} "
                  f"{gf:8.1f}   " + " ".join(f"{x:.3f}" for x in per_round))
            sys.stdout.flush()
        base = medians.get("mlpfast-cpu")
        if base:
            for e, per_round in medians.items():
                if e == "mlpfast-cpu":
                    continue
                ratios = [t / b for t, b in zip(per_round, base)]
                results.setdefault("speedups", []).append(
                    {"workload": name, "peer": e, "rounds": ratios,
                     "median": float(np.median(ratios))})
                print(f"{'':>8} speed-up of mlpfast-cpu over {e}: median "
                      f"{np.median(ratios):.1f}x (rounds: "
                      + ", ".join(f"{x:.1f}x" for x in ratios) + ")")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
