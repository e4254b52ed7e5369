"""Seconds a new process spends on its first run when the Numba cache is empty (a temporary
NUMBA_CACHE_DIR), for the four first runs a user meets:

- first train:   `mlpfast train --epochs 2 -q` on the bundled letters data, the whole command;
- first float64: then `mlpfast train --dtype float64 ...` in the same cache (float32 cached);
- first fit:     in another empty cache, MLPClassifier(hidden (32,), 1 epoch).fit (3000 x 16);
- first predict: the predict that follows it in the same process;
- warm train:    the first command again with its cache filled (what is not compilation).

Wall seconds, and CPU seconds (the child's user + system: other work on a shared machine moves
them less, but they count both threads). With --precompiled, `mlpfast compile` fills each cache
first (checkouts from 2026-12-01 on) and the runs after it should compile nothing.

    python benchmarks/cold_compile.py [--rounds N] [--precompiled] [CHECKOUT ...]

Each checkout (default: this one) is imported from its folder, not from site-packages; with
several, the rounds alternate between them (a shared machine's load moves in between).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

# the checkout's mlpfast, with cli/ mapped to mlpfast.cli as the install maps it (datasets/
# is found beside the package)
PRELUDE = """
import importlib.util, os, sys
root = sys.argv[1]
sys.path.insert(0, root)
import mlpfast
spec = importlib.util.spec_from_file_location(
    "mlpfast.cli", os.path.join(root, "cli", "__init__.py"),
    submodule_search_locations=[os.path.join(root, "cli")])
mlpfast.cli = sys.modules["mlpfast.cli"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mlpfast.cli)
"""

CLI = PRELUDE + """
from mlpfast.cli.main import cli
cli(sys.argv[2:], prog_name="mlpfast")
"""

FIT = PRELUDE + """
import time, warnings
warnings.simplefilter("ignore")
import numpy as np
from mlpfast import MLPClassifier
rng = np.random.default_rng(0)
X = rng.standard_normal((3000, 16)).astype(np.float32)
y = rng.integers(0, 5, 3000)
t0, c0 = time.perf_counter(), time.process_time()
clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1, random_state=0).fit(X, y)
t1, c1 = time.perf_counter(), time.process_time()
clf.predict(X)
t2, c2 = time.perf_counter(), time.process_time()
print(f"{t1 - t0:.2f} {c1 - c0:.2f} {t2 - t1:.2f} {c2 - c1:.2f}")
"""


def _child(code, checkout, args, cache):
    """(wall, CPU seconds, stdout) of one child process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, checkout, *args], env=env,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"{checkout} {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout.strip()


def one_round(checkout, precompiled):
    figures = {}
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        if precompiled:
            figures["compile"] = _child(CLI, checkout, ["compile", "-q"], cache)[:2]
        train = ["train", "--epochs", "2", "-q", "--force", "--out", os.path.join(out, "run")]
        figures["first train"] = _child(CLI, checkout, train, cache)[:2]
        figures["first float64"] = _child(CLI, checkout, train + ["--dtype", "float64"], cache)[:2]
        figures["warm train"] = _child(CLI, checkout, train, cache)[:2]
    with tempfile.TemporaryDirectory() as cache:
        if precompiled:
            _child(CLI, checkout, ["compile", "-q", "--dtype", "float32"], cache)
        fit_wall, fit_cpu, predict_wall, predict_cpu = map(
            float, _child(FIT, checkout, [], cache)[2].split())
        figures["first fit"] = fit_wall, fit_cpu
        figures["first predict"] = predict_wall, predict_cpu
    return figures


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkouts", nargs="*", default=["."])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--precompiled", action="store_true",
                   help="run `mlpfast compile` into each empty cache first")
    a = p.parse_args()
    checkouts = [os.path.abspath(c) for c in a.checkouts]
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    for r in range(a.rounds):
        for checkout in checkouts[r % len(checkouts):] + checkouts[:r % len(checkouts)]:
            figures = one_round(checkout, a.precompiled)
            print(f"round {r + 1} {checkout} (load {os.getloadavg()[0]:.2f})")
            for name, (wall, cpu) in figures.items():
                print(f"  {name:<14} {wall:6.1f} s wall  {cpu:6.1f} s CPU")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
