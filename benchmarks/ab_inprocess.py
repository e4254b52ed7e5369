"""A/B of whole CPU engines from several checkouts in one process: epochs alternate between
them, so a machine whose speed drifts within minutes treats them alike; best and median us per
step over the rounds (the first round, which compiles, left out), and the median over rounds
of each checkout's time over the first one's.

    python benchmarks/ab_inprocess.py old=/path/to/old/checkout new=. [--wl W1,W4] [--rounds 12]
                                      [--shuffle]

Each checkout's mlpfast/ is copied to a temporary folder as package mlpfast_<TAG> (its own
Numba cache, so the first round compiles it). 40,000 synthetic rows of each workload, in
order unless --shuffle, Adam. benchmarks/ab_chunks.py uses the same machinery on config variants.
"""
import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from mlpfast import bench


def load_copies(sources, root, patch=None):
    """{tag: mlpfast_<tag> package} for sources {tag: path of an mlpfast/ folder}; patch(tag,
    folder) may edit a copy before it is imported."""
    sys.path.insert(0, root)
    for tag, src in sources.items():
        dst = os.path.join(root, f"mlpfast_{tag}")
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        if patch:
            patch(tag, dst)
    return {tag: importlib.import_module(f"mlpfast_{tag}") for tag in sources}


def settle(package, engine):
    """Wait for the compile child a copy's first fit started (checkouts since compile_apart),
    then let the engine's thread Governor start again from all threads with a new window (a
    busy machine still shows in it), so that timed epochs use the threads a quiet machine
    gives."""
    compiling = importlib.import_module(f"{package.__name__}.compiling")
    for apart in list(getattr(compiling, "_running", ())):
        apart.finish()
    governor = getattr(engine, "governor", None)
    if governor is not None:  # Governor.restart(top) in checkouts that have it
        governor.threads, governor._start = governor.top, None


def race(packages, workloads, rounds, shuffle=False):
    """Print the best and median us per step of each package's CPU engine, epochs
    alternating (rows in order, or shuffled as a fit shuffles them: the same order for every
    package); returns {workload: {tag: [us per step of each round]}}."""
    out = {}
    hyper = np.array([1e-3, 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
    for name in workloads:
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl, 40000)
        y = y.astype(np.int32)
        widths = (wl.features,) + wl.hidden + (wl.classes,)
        engines = {}
        for tag, pkg in packages.items():
            eng = importlib.import_module(f"{pkg.__name__}.engine")
            net = importlib.import_module(f"{pkg.__name__}.kernels.network")
            params = importlib.import_module(f"{pkg.__name__}.params")
            _, P = params.make_layout(widths)
            theta = (np.random.default_rng(0).standard_normal(P) * 0.05).astype(np.float32)
            e = eng.CPUEngine(eng.NetSpec(widths, 1, True, np.float32, net.ADAM, wl.batch))
            e.start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y,
                    np.zeros((len(X), 0), np.float32))
            engines[tag] = e
        steps = -(-len(X) // wl.batch)
        times = {tag: [] for tag in engines}
        for r in range(rounds):
            for tag, e in engines.items():
                counters, rng = np.zeros(2, np.int64), np.array([1], np.uint64)
                t0 = time.perf_counter()
                e.train_epoch(rng, shuffle, hyper, counters)
                if r:  # the first round compiles
                    times[tag].append((time.perf_counter() - t0) / steps * 1e6)
                else:
                    # a cold fit's child goes on compiling predict_raw, and the engine's thread
                    # Governor counts it as load (one thread): wait for it, then a new window
                    settle(packages[tag], e)
        first, *others = times
        # epochs of one round ran back to back: their ratio cancels a drift of the machine
        ratios = "".join(
            f"  {t}/{first} per round: median {np.median(np.divide(times[t], times[first])):.3f}"
            for t in others)
        print(name, "  ".join(f"{t}: best {min(v):.1f} median {np.median(v):.1f}"
                              for t, v in times.items()), "us/step" + ratios, flush=True)
        out[name] = times
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkouts", nargs="+", help="TAG=PATH")
    ap.add_argument("--wl", default="W1,W4")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--shuffle", action="store_true",
                    help="shuffle the rows each epoch, as a fit does (default: in order)")
    args = ap.parse_args()
    sources = {}
    for item in args.checkouts:
        tag, path = item.split("=", 1)
        sources[tag] = os.path.join(path, "mlpfast")
    root = tempfile.mkdtemp(prefix="mlpfast-ab-")
    try:
        race(load_copies(sources, root), args.wl.split(","), args.rounds, args.shuffle)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
