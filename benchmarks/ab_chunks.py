"""The CPU engine with different config.CHUNK_ROWS (the minibatch's chunk size), epochs
alternating in one process; best us per step.

    python benchmarks/ab_chunks.py W1 128,64      # W1's batch of 256 in 2 chunks, then 4

Each value gets its own copy of the package (the value is compiled into the kernels).
"""
import os
import re
import shutil
import sys
import tempfile

from ab_inprocess import load_copies, race

import mlpfast


def main(workload, values):
    src = os.path.dirname(mlpfast.__file__)

    def patch(tag, folder):
        path = os.path.join(folder, "config.py")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"^CHUNK_ROWS = \d+", f"CHUNK_ROWS = {tag.split('_')[1]}", text,
                           flags=re.M))

    root = tempfile.mkdtemp(prefix="mlpfast-ab-")
    try:
        race(load_copies({f"rows_{v}": src for v in values}, root, patch), [workload], 12)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "W1",
         [int(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "128,64").split(",")])
