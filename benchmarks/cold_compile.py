"""Seconds a new process spends compiling: the first fit and the first predict of a small
classifier, with an empty Numba cache (a temporary NUMBA_CACHE_DIR), then again with it warm.
Wall seconds, and the process's CPU seconds, which other work on a shared machine moves less.

    python benchmarks/cold_compile.py [/path/to/checkout]

The checkout (default: the installed or importable mlpfast) goes first on sys.path.
"""
import os
import subprocess
import sys
import tempfile

CHILD = """
import sys, time, warnings
sys.path.insert(0, sys.argv[1])
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
print(f"fit {t1 - t0:.1f} s, predict {t2 - t1:.1f} s (CPU: fit {c1 - c0:.1f} s, "
      f"predict {c2 - c1:.1f} s)")
"""


def main(checkout):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache", "warm cache"):
            out = subprocess.run([sys.executable, "-c", CHILD, checkout], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip()
            print(f"{label}: {out}")


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "."))
