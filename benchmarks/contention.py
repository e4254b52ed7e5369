"""Threads under load (issue 13): training with the default threads against `--threads 1`
while 0, 1 and 2 other busy processes run on the machine: `python -c 'while 1: pass'`, or with
--load-kind openmp a Numba parallel loop on every core each (another OpenMP program).

    python benchmarks/contention.py [--runs 3] [--loads 0,1,2] [--cases letters,W1,W2,W4]
        [--before PATH] [--variant NAME:VAR=VALUE,VAR=VALUE ...] [--checkout PATH]

Every run is a process of its own, so that an environment variable read when Numba's threading
layer starts (OMP_WAIT_POLICY, GOMP_SPINCOUNT, NUMBA_THREADING_LAYER) takes effect:
- letters: `mlpfast train` on the bundled letters data, 20 epochs, seconds of the whole
  command (reading, compiled-kernel loading, training, writing the run folder), as a user
  sees it;
- W1, W2, W4: benchmarks/README.md's workloads through MLPClassifier.fit, one warm-up epoch
  and --epochs timed ones; the figure is the median of the timed epochs (seconds per epoch).

Besides the busy processes it starts, a shared machine carries other people's load: each run
also measures the cores that processes other than its own kept busy meanwhile (/proc/stat less
this script's, its runs' and its busy processes' CPU time), and each table's header gives
their median and range over its runs.

Modes: `default` (no --threads: every core), `1 thread` (--threads 1, numba.set_num_threads(1)),
`before` (--before: the default threads on another checkout) and one more column per --variant
(the default threads with the variables given). Runs alternate over cases and modes inside each
round so that a drift of a shared machine treats them alike; the table gives the median of
--runs rounds, and the median over rounds of each column's run over the 1-thread run of the
same round. A checkout
(--before, --checkout) runs as its folder first on PYTHONPATH, with links mlpfast/cli -> ../cli
and mlpfast/datasets -> ../datasets made in it for the CLI:

    git archive main | tar -x -C /tmp/before
    ln -s ../cli /tmp/before/mlpfast/cli; ln -s ../datasets /tmp/before/mlpfast/datasets
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

FIT = r"""
import json, sys, time, warnings
import numba, numpy as np
from mlpfast import bench
from mlpfast.estimators import MLPClassifier
name, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if threads:
    numba.set_num_threads(threads)
wl = bench.WORKLOADS[name]
X, y = bench.synthetic(wl)
clf = MLPClassifier(hidden_layer_sizes=wl.hidden, batch_size=wl.batch, random_state=0,
                    learning_rate_init=1e-3, max_iter=1 + epochs, tol=0.0,
                    n_iter_no_change=10 ** 9)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf.fit(X, y)
times = [r["epoch_seconds"] for r in clf.history_][1:]
print(json.dumps({"seconds": float(np.median(times))}))
"""


# another multi-threaded OpenMP program (libgomp's default policy: its threads spin while they
# wait), short parallel regions back to back: what a second training job, or any OpenMP code,
# puts on the machine
OPENMP_LOAD = """
import numba, numpy as np
@numba.njit(parallel=True)
def step(a):
    for i in numba.prange(a.shape[0]):
        a[i] = np.sqrt(a[i] + 1.0)
a = np.zeros(20000)
while True:
    step(a)
"""


def busy(n, kind="spin"):
    """n processes that keep the machine busy (the load of the table): `spin` a one-thread
    busy loop each, `openmp` a Numba parallel loop on every core each (OPENMP_LOAD)."""
    code = "while 1: pass" if kind == "spin" else OPENMP_LOAD
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(n)]


def _cpu(pids):
    """CPU seconds of the processes `pids` (the busy ones), from /proc/PID/stat."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            after = f.read().rsplit(")", 1)[1].split()
        total += int(after[11]) + int(after[12])
    return total / hz


def background(step, procs):
    """Runs step() and returns (its result, the cores that processes other than this script,
    its runs and its busy processes kept busy meanwhile: other people's load on a shared
    machine), from /proc/stat's CPU time."""
    from mlpfast.threads import cpu_seconds
    t0, c0, b0 = time.perf_counter(), cpu_seconds(), _cpu(p.pid for p in procs)
    k0 = sum(os.times()[:4])  # this script and its finished children (the runs)
    out = step()
    t1, c1, b1 = time.perf_counter(), cpu_seconds(), _cpu(p.pid for p in procs)
    k1 = sum(os.times()[:4])
    if c0 is None or c1 is None:
        return out, float("nan")
    return out, max(0.0, (c1[0] - c0[0]) - (k1 - k0) - (b1 - b0)) / (t1 - t0)


def run_once(case, mode_env, threads, epochs, pythonpath, out_dir):
    """Seconds of one run of `case` in a process of its own (see the module docstring)."""
    env = dict(os.environ)
    env.update(mode_env)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    if case == "letters":
        cmd = [sys.executable, "-m", "mlpfast", "train", "--epochs", "20", "--quiet",
               "--out", os.path.join(out_dir, f"run{time.monotonic_ns()}")]
        if threads:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0
    out = subprocess.run([sys.executable, "-c", FIT, case, str(epochs), str(threads)], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def machine_line():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="rounds; the table gives medians")
    ap.add_argument("--loads", default="0,1,2", help="busy processes beside the runs")
    ap.add_argument("--load-kind", default="spin", choices=["spin", "openmp"],
                    help="spin: `while 1: pass`; openmp: a Numba parallel loop on every core")
    ap.add_argument("--cases", default="letters,W1,W2,W4")
    ap.add_argument("--epochs", type=int, default=2,
                    help="timed epochs of W1, W2, W4 after the warm-up epoch")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:VAR=VALUE[,VAR=VALUE]: one more column, the default threads "
                         "with these environment variables")
    ap.add_argument("--no-one-thread", action="store_true", help="leave out the 1-thread column")
    ap.add_argument("--checkout", help="run this checkout's mlpfast instead of the installed one")
    ap.add_argument("--before", help="one more column, `before`: the default threads on this "
                                     "checkout's mlpfast, in the same rounds (an A/B)")
    ap.add_argument("--json", help="also write every run's seconds here")
    args = ap.parse_args()

    modes = [("default", {}, 0, args.checkout)]
    if not args.no_one_thread:
        modes.append(("1 thread", {}, 1, args.checkout))
    if args.before:
        modes.append(("before", {}, 0, args.before))
    for v in args.variant:
        name, _, assigns = v.partition(":")
        modes.append((name, dict(a.split("=", 1) for a in assigns.split(",") if a), 0,
                      args.checkout))
    cases = args.cases.split(",")
    loads = [int(x) for x in args.loads.split(",")]
    print(f"machine: {machine_line()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command: {' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}")
    print(f"W1/W2/W4: median seconds per epoch ({args.epochs} timed after a warm-up); "
          f"letters: seconds of `mlpfast train --epochs 20`; medians of {args.runs} rounds\n",
          flush=True)
    results, backgrounds = {}, {}
    with tempfile.TemporaryDirectory(prefix="mlpfast-contention-") as out_dir:
        for n_busy in loads:
            procs = busy(n_busy, args.load_kind)
            try:
                time.sleep(0.5 if args.load_kind == "spin" else 3.0)  # openmp: compiled first
                for _ in range(args.runs):
                    for case in cases:
                        for mname, env, threads, path in modes:
                            s, bg = background(
                                lambda: run_once(case, env, threads, args.epochs, path,
                                                 out_dir), procs)
                            results.setdefault((n_busy, case, mname), []).append(s)
                            backgrounds.setdefault(n_busy, []).append(bg)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait()
            _table(n_busy, args.load_kind, cases, modes, results, backgrounds[n_busy])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k[0]}|{k[1]}|{k[2]}": v for k, v in results.items()}, f, indent=1)


def _table(n_busy, kind, cases, modes, results, bg):
    names = [m[0] for m in modes]
    head = (f"{n_busy} busy ({kind}) + background {np.median(bg):.2f} cores "
            f"({np.min(bg):.2f}-{np.max(bg):.2f})")
    print(f"| {head} | " + " | ".join(names) + " | " +
          " | ".join(f"{n} / 1 thread" for n in names if n != "1 thread") + " | runs (s) |")
    print("| --- " * (1 + len(names) + len([n for n in names if n != "1 thread"]) + 1) + "|")
    for case in cases:
        med = {n: float(np.median(results[(n_busy, case, n)])) for n in names}
        # each run over the 1-thread run of its round (run next to it), then the median: a
        # drift of the machine's load between rounds cancels
        ratios = [f"{np.median(np.divide(results[(n_busy, case, n)], results[(n_busy, case, '1 thread')])):.2f}"
                  for n in names if n != "1 thread" and "1 thread" in med]
        raw = "; ".join(f"{n}: " + " ".join(f"{s:.2f}" for s in results[(n_busy, case, n)])
                        for n in names)
        print(f"| {case} | " + " | ".join(f"{med[n]:.3f}" for n in names) + " | "
              + " | ".join(ratios) + f" | {raw} |")
    print(flush=True)


if __name__ == "__main__":
    main()
