#!/bin/bash
# The GPU checks and measurements recorded in benchmarks/RESULTS.md, in one go, on a machine
# with a CUDA GPU, numba-cuda, PyTorch (peer and cuBLAS ceiling) and mlpfast installed.
# Run from the repository root; results and logs go to $OUT (default ./gpu-out).
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export NUMBA_ENABLE_CUDASIM=0 PYTHONUNBUFFERED=1
ROOT=$PWD
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  (cd /tmp && python3 -m mlpfast info); } 2>&1 | tee "$OUT/info.txt"
# correctness at realistic sizes first
timeout 300 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda_gpu.py 2>&1 | tee "$OUT/pytest-gpu.log"
# the targets: GEMM vs cuBLAS, softmax+CE vs copy, W1/W3 vs PyTorch eager and CUDA graph, W1 parity
timeout 330 python3 benchmarks/run_gpu.py --json "$OUT/results-gpu.json" 2>&1 | tee "$OUT/run_gpu.log"
# the user-facing command on the same machine
(cd /tmp && timeout 200 python3 -m mlpfast bench --workload W1,W4 --device cpu,cuda --against torch \
  --epochs 2 --json "$OUT/bench-gpu.json" --csv "$OUT/bench-gpu.csv" --plot "$OUT/bench-gpu.png" -q) \
  2>&1 | tee "$OUT/bench-cli.log"
