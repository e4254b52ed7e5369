"""A/B of two checkouts' CPU engines: steady-state microseconds per training step on W1 and W4
(40,000 rows), for alternating runs on one noisy machine.

    python benchmarks/ab_cpu.py /path/to/old/checkout old
    python benchmarks/ab_cpu.py . new
"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
from mlpfast.engine import NetSpec, CPUEngine
from mlpfast.kernels import network
from mlpfast.params import make_layout
from mlpfast import bench
out = []
for name in ("W1", "W4"):
    wl = bench.WORKLOADS[name]
    X, y = bench.synthetic(wl, 40000)
    widths = (wl.features,) + wl.hidden + (wl.classes,)
    layout, P = make_layout(widths)
    theta = (np.random.default_rng(0).standard_normal(P) * 0.05).astype(np.float32)
    eng = CPUEngine(NetSpec(widths, 1, True, np.float32, network.ADAM, wl.batch))
    eng.start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y.astype(np.int32), np.zeros((len(X), 0), np.float32))
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0]); counters = np.zeros(2, np.int64); rng = np.array([1], np.uint64)
    eng.train_epoch(rng, False, hyper, counters)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter(); eng.train_epoch(rng, False, hyper, counters); ts.append(time.perf_counter() - t0)
    out.append(f"{name} {np.median(ts) / (-(-len(X) // wl.batch)) * 1e6:.1f} us/step")
print(sys.argv[2], " ".join(out))
