"""Peak memory and wall time of the CSV flow: training's data path, evaluate and predict.

    python benchmarks/csv_memory.py [--rows 1000000] [--json FILE]

Why: training holds the whole float32 feature matrix X in memory, and its data path (both
passes of the reader, then filling X) should cost at most 2.5x X.nbytes; evaluate and
predict stream the file in blocks, so they should stay within a few hundred MB whatever the
file's size. Files (written once into /tmp/mlpfast-mem/ by a subprocess of their own):
ROWS and 2*ROWS rows x 50 columns, 45 floats with 6 significant digits, 4 text columns of
10 levels, and a binary integer target (the last column, `n0`, the default target).

Measurements, one at a time, each in a fresh subprocess:
  arrays     mlpfast.tabular.flow.arrays(path): X, y, schema of the ROWS file
  train      tabular.train(path, max_iter=1, hidden_layer_sizes=(16,)) on the ROWS file, after
             one untimed warm-up call (which compiles or loads the Numba kernels and saves the
             run folder /tmp/mlpfast-mem/run that evaluate and predict use)
  evaluate   mlpfast.load(run).evaluate(path), on the 2*ROWS file and on the ROWS file
  predict    `mlpfast predict run path --out /tmp/mlpfast-mem/pred.csv` as a command, its
             peak read by a small wrapper process through RUSAGE_CHILDREN
`peak` is ru_maxrss in MiB; `base` is the same after `import mlpfast.tabular` (for the
command: the peak of a process that imports mlpfast.tabular and mlpfast.cli.main); seconds
are the call alone (for the command: the whole process). Linux carries a parent's RSS
high-water mark into a child's ru_maxrss, so this process imports nothing heavy.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

DIR = "/tmp/mlpfast-mem"
RUN, PRED = os.path.join(DIR, "run"), os.path.join(DIR, "pred.csv")


def make_file(path, rows, seed):
    # the reader benchmark's file, with a learnable 0/1 label as its last column (the target)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from csv_read import make_file as write_rows
    write_rows(path, rows, seed, label=True)


def measure(kind, path):
    """One measurement in this (fresh) process: a dict of seconds, base, peak, X bytes."""
    def mb(who=resource.RUSAGE_SELF):
        return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux
    if kind in ("predict", "cli-base"):  # a command, measured from this small wrapper
        exe = shutil.which("mlpfast", path=os.path.dirname(sys.executable)) or "mlpfast"
        cmd = ([exe, "predict", RUN, path, "--out", PRED] if kind == "predict" else
               [sys.executable, "-c", "import mlpfast.tabular, mlpfast.cli.main"])
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        return {"seconds": time.perf_counter() - t0, "peak_mb": mb(resource.RUSAGE_CHILDREN)}
    import warnings
    import mlpfast
    from mlpfast import tabular
    warnings.simplefilter("ignore")  # the flow's DataNotes and the 1-epoch ConvergenceWarning
    base, xbytes, scored = mb(), None, None
    t0 = time.perf_counter()
    if kind == "arrays":
        X, y, schema = tabular.flow.arrays(path)
        xbytes = X.nbytes
    elif kind in ("train", "warm"):
        run = tabular.train(path, max_iter=1, hidden_layer_sizes=(16,),
                            out=RUN if kind == "warm" else None)
        xbytes = run.summary["data"]["rows"] * run.schema.n_features * 4  # float32 X
    elif kind == "evaluate":
        scored = mlpfast.load(RUN).evaluate(path)["rows"]
    return {"seconds": time.perf_counter() - t0, "base_mb": base, "peak_mb": mb(),
            "x_bytes": xbytes, "rows_scored": scored}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the training file")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--make", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    if args.make:
        return make_file(args.make[0], int(args.make[1]), int(args.make[2]))

    me = [sys.executable, os.path.abspath(__file__)]
    small, big = (os.path.join(DIR, f"rows{n}-cols50.csv") for n in (args.rows, 2 * args.rows))
    os.makedirs(DIR, exist_ok=True)
    for seed, (path, n) in enumerate([(small, args.rows), (big, 2 * args.rows)]):
        if not os.path.exists(path):
            print(f"writing {path} ...", flush=True)
            subprocess.run(me + ["--make", path, str(n), str(seed)], check=True)
    plan = [("warm", small), ("arrays", small), ("train", small), ("evaluate", big),
            ("evaluate", small), ("cli-base", big), ("predict", big), ("predict", small)]
    results = []
    for kind, path in plan:
        print(f"  {kind} {os.path.basename(path)} ...", flush=True)
        p = subprocess.run(me + ["--child", kind, path], stdout=subprocess.PIPE, text=True)
        r = json.loads(p.stdout.splitlines()[-1]) if p.returncode == 0 else {"error": p.returncode}
        results.append({"kind": kind, "path": path, "rows": args.rows * (1 + (path == big)),
                        "file_bytes": os.path.getsize(path), **r})
    cli_base = next((r.get("peak_mb") for r in results if r["kind"] == "cli-base"), None)
    for r in results:
        if r["kind"] == "predict":
            r["base_mb"] = cli_base

    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}
    with open("/proc/cpuinfo") as f:
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f
                            if ln.startswith("model name")), info["cpu"])
    print(f"\nmachine: {info['cpu']}, {info['cores']} cores; python {info['python']}")
    print(f"{'measurement':14s} {'rows':>10s} {'file MiB':>9s} {'seconds':>8s} {'X MiB':>7s} "
          f"{'base MiB':>9s} {'peak MiB':>9s} {'peak-base':>10s} {'(p-b)/X':>8s}")
    for r in results:
        if r["kind"] in ("warm", "cli-base"):
            continue
        name = r["kind"] + (" (CLI)" if r["kind"] == "predict" else "")
        head = f"{name:14s} {r['rows']:>10,} {r['file_bytes'] / 2**20:9.0f}"
        if "error" in r:
            print(f"{head}   FAILED (exit {r['error']})")
            continue
        x, extra = r.get("x_bytes"), r["peak_mb"] - r["base_mb"]
        print(f"{head} {r['seconds']:8.2f} {f'{x / 2**20:.0f}' if x else '-':>7s} "
              f"{r['base_mb']:9.0f} {r['peak_mb']:9.0f} {extra:10.0f} "
              f"{f'{extra * 2**20 / x:.2f}' if x else '-':>8s}")
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process peaked at {parent:.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "parent_rss_mb": parent, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
