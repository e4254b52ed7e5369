"""CSV readers on one wide file: wall seconds and peak memory of each, to choose ONE reader for
every mlpfast command.

    python benchmarks/csv_read.py --rows 1000000 --rounds 3 [--json FILE]

The file (generated once into the temp folder, with numpy and plain Python so that no timed
reader writes it): ROWS x 50 columns, 45 floats with 6 significant digits, 4 text categories of
10 levels, 1 integer. Two questions: which reader is fastest, and which keeps memory bounded
when it reads every column as text and parses the numeric ones by a stored schema (what
`predict` must do, so that a column is never typed differently from training). Candidates:

  pd-c          pandas.read_csv(engine="c"), type inference
  pd-c-str      pandas.read_csv(engine="c", dtype=str, keep_default_na=False)
  pd-pyarrow    pandas.read_csv(engine="pyarrow")
  pa            pyarrow.csv.read_csv, type inference
  pa-str        pyarrow.csv.read_csv, every column pa.string()
  pa-stream     pyarrow.csv.open_csv, every column text, 4 MiB blocks, each batch's 46
                numeric columns cast to float64 and dropped
  pa-stream-f32 the same, each batch written column by column into one preallocated
                float32 (ROWS, 46) array

Each run is a fresh subprocess (no allocator or page reuse between candidates) that imports
numpy, pandas and pyarrow before the clock starts, so `base MB` (its RSS before reading) is
the same for all and `peak RSS MB` minus it is what the read costs. Seconds are the read alone.
Rounds alternate the candidates, each round starting one further along, since this machine's
speed drifts within minutes. The pyarrow readers use all cores; pandas' C engine uses one.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

N_FLOAT, N_CAT, LEVELS = 45, 4, 10
CANDIDATES = ["pd-c", "pd-c-str", "pd-pyarrow", "pa", "pa-str", "pa-stream", "pa-stream-f32"]
NUMERIC = [f"f{j}" for j in range(N_FLOAT)] + ["n0"]
HEADER = NUMERIC[:-1] + [f"c{k}" for k in range(N_CAT)] + ["n0"]


def make_file(path, rows, seed=0, label=False):
    """rows x 50 CSV text: 45 floats, 4 text categories, and a last column that is an integer
    (label=False) or a 0/1 label learnable from the first float (label=True)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    # columns of different magnitudes, so that "%.6g" writes plain, short and exponent forms
    scales = 10.0 ** (np.arange(N_FLOAT) % 5 - 2)
    fmt = ",".join(["%.6g"] * N_FLOAT + ["%s"] * N_CAT + ["%d"]) + "\n"
    levels = [np.array([f"c{k}_level{i}" for i in range(LEVELS)], dtype=object)
              for k in range(N_CAT)]
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(",".join(HEADER) + "\n")
        for r0 in range(0, rows, 100_000):
            n = min(100_000, rows - r0)
            floats = rng.standard_normal((n, N_FLOAT)) * scales
            cols = [c.tolist() for c in floats.T]
            cols += [lv[rng.integers(0, LEVELS, n)].tolist() for lv in levels]
            last = (floats[:, 0] + rng.standard_normal(n) * scales[0] > 0).astype(int) if label \
                else rng.integers(0, 1_000_000, n)
            cols.append(last.tolist())
            f.write("".join(fmt % row for row in zip(*cols)))
    os.replace(tmp, path)  # a half-written file is never taken for a finished one


def read(name, path, rows):
    """Run one candidate; return (seconds, base RSS MB, peak RSS MB, versions)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    as_text = pv.ConvertOptions(column_types={c: pa.string() for c in HEADER})

    def stream(sink):
        reader = pv.open_csv(path, read_options=pv.ReadOptions(block_size=4 << 20),
                             convert_options=as_text)
        r0 = 0
        for batch in reader:
            for j, c in enumerate(NUMERIC):
                sink(r0, j, pc.cast(batch.column(c), pa.float64()))
            r0 += batch.num_rows
        return r0

    base = rss_mb()
    t0 = time.perf_counter()
    if name == "pd-c":
        out = pd.read_csv(path, engine="c")
    elif name == "pd-c-str":
        out = pd.read_csv(path, engine="c", dtype=str, keep_default_na=False)
    elif name == "pd-pyarrow":
        out = pd.read_csv(path, engine="pyarrow")
    elif name == "pa":
        out = pv.read_csv(path)
    elif name == "pa-str":
        out = pv.read_csv(path, convert_options=as_text)
    elif name == "pa-stream":
        out = stream(lambda r0, j, col: None)
    elif name == "pa-stream-f32":
        # row-major, as the trainer gathers rows; a real reader knows ROWS from a line count
        out = np.empty((rows, len(NUMERIC)), np.float32)

        def put(r0, j, col):
            out[r0:r0 + len(col), j] = col.to_numpy(zero_copy_only=False)
        n = stream(put)
        assert n == rows, (n, rows)
    else:
        raise ValueError(name)
    seconds = time.perf_counter() - t0
    assert (len(out) if not isinstance(out, int) else out) == rows
    return seconds, base, rss_mb(), {"pandas": pd.__version__, "pyarrow": pa.__version__}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated candidates (default: all)")
    ap.add_argument("--path", help="CSV file (default: generated in the temp folder)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.path or os.path.join(tempfile.gettempdir(), "mlpfast-csvbench",
                                     f"rows{args.rows}-cols50-seed0.csv")
    if args.child:
        print(json.dumps(read(args.child, path, args.rows)))
        return
    if args.make:
        return make_file(path, args.rows)

    # Linux hands a parent's RSS high-water mark down through fork and exec into the child's
    # ru_maxrss, so this process imports neither numpy, pandas nor pyarrow, and the file is
    # written by a child of its own
    me = [sys.executable, os.path.abspath(__file__), "--rows", str(args.rows), "--path", path]
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        print(f"writing {path} ...", flush=True)
        subprocess.run(me + ["--make"], check=True)
    # read it once so every candidate finds it in the page cache, not only the later ones
    with open(path, "rb") as f:
        while f.read(16 << 20):
            pass
    names = args.only.split(",") if args.only else CANDIDATES
    info = machine()
    runs = []
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, base, peak, versions = json.loads(subprocess.run(
                me + ["--child", name], check=True, capture_output=True,
                text=True).stdout.splitlines()[-1])
            if not runs:
                info.update(versions)
                print(f"machine: {info['cpu']}, {info['cores']} cores; python "
                      f"{info['python']}, pandas {info['pandas']}, pyarrow {info['pyarrow']}")
                print(f"file: {args.rows:,} rows x 50 columns, "
                      f"{os.path.getsize(path) / 2**20:.0f} MiB; {args.rounds} rounds, "
                      f"each candidate in a fresh process")
            runs.append({"candidate": name, "round": r, "seconds": seconds,
                         "base_rss_mb": base, "peak_rss_mb": peak})
            print(f"  round {r}: {name:14s} {seconds:7.2f} s  {peak:7.0f} MB", flush=True)

    print(f"\n{'candidate':14s} {'median s':>9s} {'min s':>7s} {'max s':>7s} "
          f"{'base MB':>8s} {'peak RSS MB':>12s}")
    summary = []
    for name in names:
        mine = [x for x in runs if x["candidate"] == name]
        s = [x["seconds"] for x in mine]
        # the largest peak of the rounds: the question is how much memory a read may need
        row = {"candidate": name, "median_s": statistics.median(s), "min_s": min(s),
               "max_s": max(s), "base_rss_mb": max(x["base_rss_mb"] for x in mine),
               "peak_rss_mb": max(x["peak_rss_mb"] for x in mine)}
        summary.append(row)
        print(f"{name:14s} {row['median_s']:9.2f} {row['min_s']:7.2f} {row['max_s']:7.2f} "
              f"{row['base_rss_mb']:8.0f} {row['peak_rss_mb']:12.0f}")
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if parent >= min(x["base_rss_mb"] for x in runs):
        print(f"WARNING: this process peaked at {parent:.0f} MB; a child's peak may be that")
    info["parent_rss_mb"] = parent
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": args.rows, "path": path,
                       "file_bytes": os.path.getsize(path), "rounds": args.rounds,
                       "runs": runs, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
