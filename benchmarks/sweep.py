"""What `mlpfast sweep` buys over a shell loop of `mlpfast train`, how it scales with workers,
and what training trials together buys over one at a time.

    python benchmarks/sweep.py [--rounds 3] [--parts loop,scaling,together]

loop: 16 small trials (the bundled letter-recognition data, 10 epochs; hidden 64 or 128, lr
  0.001 or 0.003, seeds 0-3) as a shell loop of `mlpfast train` (a process each: start-up,
  kernel-cache load, reading the file) against `mlpfast sweep` of the same trials on a local
  cluster of one worker per core (--no-together; cluster start and warm-up included: the
  time a user waits).
scaling: the same sweep on 1 and on 2 workers (the trials run 1 and 2 at a time, on 2 and 1
  Numba threads each), at 10 epochs and at 60 (where training outweighs the start-up).
together: 8 W4-sized trials (100,000 rows x 20 standard-normal features, 2 classes, hidden 64,
  batch 32, Adam, 3 epochs; learning rates and alphas differ, the data and seed do not) as
  one sweep with --together (one compiled call steps all 8) against --no-together, both on one
  worker with the same threads; trials per second of the trials' own seconds and of the wall.

Every figure is the median of --rounds rounds, each into a fresh sweep folder, in this one
process run (ratios are only comparable inside one run); the machine is named first. The
kernels are compiled before the first round (compile time stays out).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LETTERS = os.path.join(HERE, "..", "datasets", "letter-recognition.csv")
GRID = [(h, lr, s) for h in ("64", "128") for lr in (0.001, 0.003) for s in range(4)]


def mlpfast_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "mlpfast")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "mlpfast"]


def letters_spec(folder, epochs=10):
    path = os.path.join(folder, f"letters-{epochs}.toml")
    with open(path, "w") as f:
        f.write(f'data = "{os.path.abspath(LETTERS)}"\ntarget = "Letter"\n[options]\n'
                f'epochs = {epochs}\n[grid]\nhidden = ["64", "128"]\nlr = [0.001, 0.003]\n'
                'seed = [0, 1, 2, 3]\n')
    return path


def timed(cmd, cwd):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def shell_loop(folder):
    """The 16 trials as `for ...; do mlpfast train ...; done`."""
    script = "\n".join(
        f"{' '.join(mlpfast_cmd())} train {os.path.abspath(LETTERS)} --target Letter "
        f"--epochs 10 --hidden {h} --lr {lr} --seed {s} --out {folder}/loop/{h}-{lr}-{s} -q"
        for h, lr, s in GRID)
    return timed(["bash", "-e", "-c", script], folder)


def sweep_cli(spec, out, workers, together=False):
    flag = "--together" if together else "--no-together"
    return timed(mlpfast_cmd() + ["sweep", spec, "--out", out, "--workers", str(workers), flag,
                                  "-q"], os.path.dirname(spec))


def w4_spec(folder):
    csv = os.path.join(folder, "w4.csv")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100_000, 20)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",", fmt=["%.5g"] * 20 + ["%d"],
               header=",".join([f"x{k}" for k in range(20)] + ["y"]), comments="")
    path = os.path.join(folder, "w4.toml")
    with open(path, "w") as f:
        f.write(f'data = "{csv}"\ntarget = "y"\n[options]\nepochs = 3\nhidden = "64"\n'
                'batch_size = 32\nval_fraction = 0.05\n[grid]\nlr = [0.001, 0.003]\n'
                'alpha = [0.0001, 0.001, 0.01, 0.1]\n')
    return path


def together_round(spec, out, together):
    import pandas as pd
    wall = sweep_cli(spec, out, workers=1, together=together)
    table = pd.read_csv(os.path.join(out, "results.csv"))
    assert set(table["status"]) == {"finished"}, table[["trial", "status", "error"]]
    return wall, table


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="loop,scaling,together")
    args = ap.parse_args()
    parts = args.parts.split(",")
    from mlpfast.bench import machine
    print(machine())
    folder = tempfile.mkdtemp(prefix="mlpfast-bench-sweep-")
    try:
        spec = letters_spec(folder)
        # compile (or load) the kernels once, outside every timing
        subprocess.run(mlpfast_cmd() + ["train", LETTERS, "--target", "Letter", "--epochs", "1",
                                        "--out", os.path.join(folder, "warm"), "-q"], check=True)
        cores = len(os.sched_getaffinity(0))
        if "loop" in parts:
            loop, sweep = [], []
            for r in range(args.rounds):
                shutil.rmtree(os.path.join(folder, "loop"), ignore_errors=True)
                loop.append(shell_loop(folder))
                sweep.append(sweep_cli(spec, os.path.join(folder, f"sweep-{r}"), cores))
            lo, sw = statistics.median(loop), statistics.median(sweep)
            print(f"16 letters trials, 10 epochs: shell loop of mlpfast train {lo:.1f} s, "
                  f"mlpfast sweep ({cores} workers) {sw:.1f} s: {lo / sw:.2f}x")
        if "scaling" in parts:
            # the 16 trials at 10 epochs (start-up counts), and at 60 (training counts)
            for epochs in (10, 60):
                spec_e = letters_spec(folder, epochs)
                walls = {}
                for w in (1, 2):
                    walls[w] = statistics.median(
                        sweep_cli(spec_e, os.path.join(folder, f"scale-{epochs}-{w}-{r}"), w)
                        for r in range(args.rounds))
                print(f"scaling, 16 trials of {epochs} epochs: 1 worker {walls[1]:.1f} s, "
                      f"2 workers {walls[2]:.1f} s: {walls[1] / walls[2]:.2f}x")
        if "together" in parts:
            spec4 = w4_spec(folder)
            rates = {}
            for together in (False, True):
                walls, own = [], []
                for r in range(args.rounds):
                    wall, table = together_round(spec4, os.path.join(
                        folder, f"w4-{together}-{r}"), together)
                    walls.append(wall)
                    own.append(table["seconds"].max() if together else table["seconds"].sum())
                rates[together] = (8 / statistics.median(own), 8 / statistics.median(walls))
            (a_own, a_wall), (b_own, b_wall) = rates[False], rates[True]
            print(f"8 W4 trials (3 epochs), 1 worker: one at a time {a_own:.3f} trials/s "
                  f"(wall {a_wall:.3f}), together {b_own:.3f} trials/s (wall {b_wall:.3f}): "
                  f"{b_own / a_own:.2f}x ({b_wall / a_wall:.2f}x of the wall)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
