"""What checkpoints cost: the seconds `mlpfast.tabular.train` spends writing the run folder with
its checkpoint after every epoch, as a share of the seconds it spends training, on W1 (200,000
rows x 32 standard-normal features, 10 classes, hidden 128,128, batch 256, Adam).

    python benchmarks/checkpoint_cost.py [--rows 200000] [--epochs 10] [--rounds 3]

Each round trains once with a run folder and times every folder write (model.npz, metrics.csv,
run.json, checkpoint.npz, the rename); the share is the checkpoints' seconds over the epochs'
seconds. Checkpoints come after every epoch unless that would cost over 1 % (then after fewer
epochs). The median of the rounds is the figure; the machine is named first.
"""
import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings

import numpy as np


def w1_csv(path, rows):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 32)).astype(np.float32)
    y = rng.integers(0, 10, rows)
    with open(path, "w") as f:
        f.write(",".join(f"x{k}" for k in range(32)) + ",y\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v:.5g}" for v in row) + f",{label}\n")


def one_round(path, epochs, folder):
    from mlpfast import tabular
    from mlpfast.tabular import folder as run_folder

    spent = []
    write = run_folder.write_run

    def timed(*args, **kw):
        t0 = time.perf_counter()
        write(*args, **kw)
        spent.append(time.perf_counter() - t0)

    run_folder.write_run = timed
    try:
        run = tabular.train(path, target="y", out=folder, force=True, hidden_layer_sizes=(128, 128),
                            batch_size=256, max_iter=epochs, val_fraction=0.05)
    finally:
        run_folder.write_run = write
    # the last write is the run's result, made with or without checkpoints; the ones before
    # it are the checkpoints. The first epoch's time includes compiling and stays out.
    checkpoints = spent[:-1]
    training = sum(r["epoch_seconds"] for r in run.history[1:])
    return (sum(checkpoints) / training, statistics.median(checkpoints),
            training / (len(run.history) - 1), len(checkpoints))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w1.csv")
        w1_csv(path, args.rows)
        shares = []
        for k in range(args.rounds):
            share, write, epoch, count = one_round(path, args.epochs, os.path.join(tmp, "run"))
            shares.append(share)
            print(f"round {k}: epoch {epoch:.3f} s, {count} checkpoints in {args.epochs} epochs, "
                  f"{write * 1e3:.1f} ms each, share {100 * share:.2f} %")
    print(f"checkpoint share of training time (median of {args.rounds}): "
          f"{100 * statistics.median(shares):.2f} %")


if __name__ == "__main__":
    main()
