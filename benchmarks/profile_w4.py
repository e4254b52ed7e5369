"""Where a W4 step goes: `perf` samples of W4 fits alone or pooled, with names for Numba's code.

    python benchmarks/profile_w4.py [--mode alone|pooled] [--seconds 6] [--top 15]

8 W4 models (benchmarks/README.md; random_state 0..7, shuffled) train for one epoch at a
time, either each through CPUEngine._train (a fit alone) or all in one run_together call on
one thread (train_batches_many), over and over; after a first round (compilation), `perf
record` samples this process for --seconds and the top symbols are printed with their share.

perf names no JIT code by itself: the script writes /tmp/perf-<pid>.map from every compiled
library's functions, which perf reads. Numba loads cached kernels as object code without
those names, so run it with an empty cache (`NUMBA_CACHE_DIR=$(mktemp -d)`). Needs `perf`
(linux-tools) and permission to sample this process (kernel.perf_event_paranoid <= 2).
"""
import argparse
import gc
import os
import re
import subprocess
import threading
import time

import numba
import numpy as np

from mlpfast import bench
from mlpfast.engine import CPUEngine, NetSpec, together
from mlpfast.kernels import network, random
from mlpfast.params import glorot_init, make_layout


def models():
    wl = bench.WORKLOADS["W4"]
    X, y = bench.synthetic(wl)
    Y = (y == 1).astype(np.float32).reshape(-1, 1)  # two classes: one logistic output
    spec = NetSpec((wl.features,) + wl.hidden + (1,), 1, 2, np.float32, network.ADAM, wl.batch)
    layout, P = make_layout(spec.widths)
    out = []
    for k in range(8):
        theta = np.zeros(P)
        glorot_init(theta, layout, np.random.RandomState(k), "relu")
        e = CPUEngine(spec)
        e.start(theta.astype(np.float32), np.zeros(P, np.float32), np.zeros(P, np.float32), X,
                None, Y)
        rng = np.array([k + 1], np.uint64)
        random.shuffle(e.perm, rng)
        hyper = np.array([1e-3 * (1 + k / 4), 1e-4, 0.9, 0.9, 0.999, 1e-8, 0.0])
        out.append((e, hyper, np.array([0, 0], np.int64), rng, np.zeros(3)))
    return out, -(-len(X) // wl.batch)


def perf_map(path):
    """Every compiled function's address, with a size up to the next one, for perf."""
    engine = numba.core.registry.cpu_target.target_context.codegen()._engine
    addresses = {}
    for obj in gc.get_objects():
        if isinstance(obj, numba.core.dispatcher.Dispatcher):
            for cres in obj.overloads.values():
                module = getattr(cres.library, "_final_module", None)
                for fn in (module.functions if module is not None else ()):
                    if not fn.is_declaration:
                        address = engine.get_function_address(fn.name)
                        if address:
                            addresses[address] = fn.name
    ordered = sorted(addresses.items())
    with open(path, "w") as f:
        for (address, name), (following, _) in zip(ordered, ordered[1:] + [(0, None)]):
            size = following - address if following else 1 << 16
            f.write(f"{address:x} {min(size, 1 << 20):x} {name}\n")
    return len(ordered)


def readable(name):
    """mlpfast.kernels.matmul._block for Numba's _ZN7mlpfast7kernels6matmul6_blockB3v41...:
    the length-prefixed parts of the mangled name, up to its suffix."""
    m = re.search(r"_ZN((?:\d+[A-Za-z_][\w]*?)+?)(?:B\d|E)", name)
    if m is None:
        return name
    parts, rest = [], m.group(1)
    while rest:
        k = re.match(r"\d+", rest)
        if k is None:
            break
        n = int(k.group())
        parts.append(rest[k.end():k.end() + n])
        rest = rest[k.end() + n:]
    return ".".join(parts) or name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("alone", "pooled"), default="alone")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    ms, steps = models()

    def one_round():
        if args.mode == "alone":
            for e, *state in ms:
                e._train(0, steps, *state)
        else:
            jobs = [together._Job(e, 0, steps, *state) for e, *state in ms]
            together._Group(0, 1)._run_batch(jobs)

    one_round()  # compiles
    data = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mlpfast-w4-{os.getpid()}.data")
    recorder = subprocess.Popen(["perf", "record", "-F", "4000", "-p", str(os.getpid()), "-o",
                                 data, "--", "sleep", str(args.seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    per_step = []
    done = threading.Event()
    threading.Timer(args.seconds, done.set).start()
    while not done.is_set():
        t0 = time.perf_counter()
        one_round()
        per_step.append((time.perf_counter() - t0) / len(ms) / steps * 1e6)
    recorder.wait()
    n = perf_map(f"/tmp/perf-{os.getpid()}.map")
    print(f"W4 {args.mode}: median {np.median(per_step):.2f} us per model-step over "
          f"{len(per_step)} rounds; {n} compiled functions named")
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                             "--stdio"], capture_output=True, text=True).stdout
    lines = [x for x in report.splitlines() if x.strip() and not x.startswith("#")]
    for line in lines[:args.top]:
        share, *_, symbol = line.split()
        print(f"  {share:>7}  {readable(symbol)}")
    os.remove(data)


if __name__ == "__main__":
    main()
