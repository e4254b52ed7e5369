"""Whether this checkout's CPU engine trains, differentiates and predicts bit for bit like
another checkout's on the unweighted dense path (what the sample-weight and sparse work had to
keep): three shuffled epochs, engine.gradient and engine.predict, in float32 and float64, with
Adam and SGD, dropout, one chunk and several, a serial and a parallel update.

    python benchmarks/same_bits.py /path/to/old/checkout   # git worktree add /tmp/old 64b6047

Both packages are copied and imported side by side (ab_inprocess.load_copies); the old one must
take NetSpec(widths, hidden, output_or_classify, dtype, solver, batch) and
start(theta, opt1, opt2, X, y, Y).
"""
import importlib
import os
import shutil
import sys
import tempfile

import numpy as np

from ab_inprocess import load_copies

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
root = tempfile.mkdtemp(prefix="mlpfast-bits-")
pk = load_copies({"old": os.path.join(sys.argv[1], "mlpfast"),
                  "new": os.path.join(HERE, "mlpfast")}, root)
rng = np.random.default_rng(0)
everything = True
# (widths, softmax?, hidden activation code, solver (0 SGD, 1 Adam), dropout, batch)
cases = [((20, 64, 3), True, 1, 0, 0.0, 100), ((20, 160, 130, 4), True, 1, 0, 0.0, 300),
         ((20, 48, 2), False, 0, 1, 0.2, 50), ((12, 130, 140, 5), False, 2, 1, 0.1, 513)]
for widths, classify, act, solver, dropout, batch in cases:
    for dtype in (np.float32, np.float64):
        n = 1500
        X = rng.standard_normal((n, widths[0])).astype(dtype)
        if classify:
            y, Y = rng.integers(0, widths[-1], n).astype(np.int32), np.zeros((n, 0), dtype)
        else:
            y, Y = np.zeros(0, np.int32), rng.standard_normal((n, widths[-1])).astype(dtype)
        res = {}
        for tag, p in pk.items():
            eng = importlib.import_module(p.__name__ + ".engine")
            prm = importlib.import_module(p.__name__ + ".params")
            _, P = prm.make_layout(widths)
            theta = (np.random.default_rng(1).standard_normal(P) * 0.1).astype(dtype)
            o1, o2 = np.zeros_like(theta), np.zeros_like(theta)
            e = eng.CPUEngine(eng.NetSpec(widths, act, classify, dtype, solver, batch))
            e.start(theta, o1, o2, X, y, Y)
            hyper = np.array([1e-3, 1e-3, 0.9, 0.9, 0.999, 1e-8, dropout])
            c, r = np.array([0, 1], np.int64), np.array([3], np.uint64)
            tots = [e.train_epoch(r, True, hyper, c) for _ in range(3)]
            loss, g = e.gradient(theta, X[:700], y[:700] if classify else y, Y[:700], 1e-3)
            pr = e.predict(theta, X)
            res[tag] = (theta, o1, o2, c, np.array(tots), np.array([loss]), g, pr)
        same = [np.array_equal(a, b) for a, b in zip(res["old"], res["new"])]
        everything &= all(same)
        print(widths, "softmax" if classify else "identity", dtype.__name__, "solver", solver,
              "dropout", dropout, "batch", batch, "same bits" if all(same) else
              f"DIFFER (theta, m/velocity, v, counters, totals, loss, grad, predict: {same})")
shutil.rmtree(root, ignore_errors=True)
sys.exit(0 if everything else 1)
