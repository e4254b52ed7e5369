"""GPU measurements for the CUDA engine's targets (issue: the CUDA engine), in one run:

- our GEMM kernel against cuBLAS sgemm (PyTorch, TF32 off) at 4096^3;
- the fused softmax + cross-entropy kernel at 65536 x 1024 against the device copy rate;
- W1 and W3 epochs: mlpfast-cuda (persistent and phased launch modes), PyTorch CUDA eager,
  and (W1) PyTorch replaying a CUDA graph of its training step;
- W1 same-answers: one epoch from the same weights and batch order on the CPU and CUDA engines.

    NUMBA_ENABLE_CUDASIM=0 python benchmarks/run_gpu.py --json results-gpu.json
    NUMBA_ENABLE_CUDASIM=0 python benchmarks/run_gpu.py --only gemm,xent,W1,W3 \
        --modes persistent --sweep --json results-gpu.json

Times are medians of several runs after a warm-up; compile / first-call time is reported apart.
"""
import argparse
import json
import os
import sys
import time
import traceback
import warnings

import numpy as np


def median_time(fn, sync, repeats=10, inner=1):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


SWEEP = [(128, 128, 8), (128, 128, 16), (128, 64, 16), (64, 64, 16), (64, 64, 32)]


def gemm_sweep(n, out):
    """Each large-tile config alone on n^3 (256 threads; 2 blocks per SM)."""
    from numba import cuda

    from mlpfast.kernels import cuda_kernels as ck
    rng = np.random.default_rng(0)
    dA = cuda.to_device(rng.standard_normal(n * n, dtype=np.float32))
    dB = cuda.to_device(rng.standard_normal(n * n, dtype=np.float32))
    dC = cuda.device_array(n * n, np.float32)
    X, perm = cuda.to_device(np.zeros((1, 1), np.float32)), cuda.to_device(np.zeros(1, np.int32))
    grid = 2 * cuda.get_current_device().MULTIPROCESSOR_COUNT
    res = {}
    for cfg in SWEEP:
        k = ck.make_kernels((cfg,))
        t = median_time(lambda: k.gemm_plain[grid, k.NT](dA, dB, dC, n, n, n, X, perm),
                        cuda.synchronize, repeats=5, inner=3)
        res["x".join(map(str, cfg))] = 2 * n ** 3 / t / 1e12
    out["gemm_sweep_tflops"] = res
    print(f"GEMM {n}^3 sweep (BM x BN x BK: TFLOP/s): {res}", flush=True)


def gemm(n, out):
    import torch
    from numba import cuda

    from mlpfast.kernels import cuda_kernels as ck
    torch.backends.cuda.matmul.allow_tf32 = False
    k = ck.make_kernels()
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, n), dtype=np.float32)
    dA, dB = cuda.to_device(A.ravel()), cuda.to_device(B.ravel())
    dC = cuda.device_array(n * n, np.float32)
    X, perm = cuda.to_device(np.zeros((1, 1), np.float32)), cuda.to_device(np.zeros(1, np.int32))
    sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
    res = {}
    for grid in (sms, 2 * sms):
        t0 = time.perf_counter()
        k.gemm_plain[grid, k.NT](dA, dB, dC, n, n, n, X, perm)
        cuda.synchronize()
        first = time.perf_counter() - t0
        t = median_time(lambda: k.gemm_plain[grid, k.NT](dA, dB, dC, n, n, n, X, perm),
                        cuda.synchronize, repeats=7, inner=3)
        res[f"mlpfast_grid{grid}"] = {"seconds": t, "tflops": 2 * n ** 3 / t / 1e12,
                                      "first_seconds": first}
    C = dC.copy_to_host().reshape(n, n)
    ta, tb = torch.from_numpy(A).cuda(), torch.from_numpy(B).cuda()
    tc = ta @ tb
    res["max_abs_err_vs_torch"] = float((torch.from_numpy(C).cuda() - tc).abs().max())
    t = median_time(lambda: ta @ tb, torch.cuda.synchronize, repeats=7, inner=3)
    res["cublas"] = {"seconds": t, "tflops": 2 * n ** 3 / t / 1e12}
    best = max(v["tflops"] for key, v in res.items() if key.startswith("mlpfast"))
    res["fraction_of_cublas"] = best / res["cublas"]["tflops"]
    out["gemm_4096"] = res
    print(f"GEMM {n}^3: mlpfast best {best:.1f} TFLOP/s, cuBLAS {res['cublas']['tflops']:.1f}"
          f" -> {100 * res['fraction_of_cublas']:.0f}%  {res}", flush=True)


def xent(rows, C, out):
    import torch
    from numba import cuda

    from mlpfast.kernels import cuda_kernels as ck
    k = ck.make_kernels()
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((rows, C), dtype=np.float32)
    y = rng.integers(0, C, rows).astype(np.int32)
    dZ, dy = cuda.to_device(Z.ravel()), cuda.to_device(y)
    dperm = cuda.to_device(np.arange(rows, dtype=np.int32))
    dG = cuda.device_array(rows * C, np.float32)
    acc = cuda.to_device(np.zeros(2, np.float32))
    sms = cuda.get_current_device().MULTIPROCESSOR_COUNT
    res = {}
    for blocks in (sms, 4 * sms, 16 * sms):
        t = median_time(lambda: k.xent[blocks, k.NT](dZ, dy, dperm, dG, acc, rows, C),
                        cuda.synchronize, repeats=10, inner=5)
        res[f"mlpfast_blocks{blocks}"] = {"seconds": t, "tb_per_s": 2 * Z.nbytes / t / 1e12}
    tz = torch.from_numpy(Z).cuda()
    dst = torch.empty_like(tz)
    t = median_time(lambda: dst.copy_(tz), torch.cuda.synchronize, repeats=10, inner=5)
    res["copy"] = {"seconds": t, "tb_per_s": 2 * Z.nbytes / t / 1e12}
    best = max(v["tb_per_s"] for key, v in res.items() if key.startswith("mlpfast"))
    res["fraction_of_copy"] = best / res["copy"]["tb_per_s"]
    out["xent_65536x1024"] = res
    print(f"softmax+CE {rows}x{C}: best {best:.2f} TB/s, copy {res['copy']['tb_per_s']:.2f} TB/s"
          f" -> {100 * res['fraction_of_copy']:.0f}%  {res}", flush=True)


def mlpfast_epochs(wl, X, y, mode, epochs):
    from mlpfast import bench
    os.environ["MLPFAST_CUDA_MODE"] = mode
    first, times, transfer = bench.time_engine(bench.ENGINES["mlpfast-cuda"], X, y, wl, epochs, 1)
    return {"first_seconds": first, "epoch_seconds": times,
            "epoch_seconds_median": float(np.median(times)), "transfer_seconds": transfer}


def torch_eager(wl, X, y, epochs):
    from mlpfast import bench
    first, times, _ = bench.time_engine(bench.ENGINES["torch-cuda"], X, y, wl, epochs, 1)
    return {"first_seconds": first, "epoch_seconds": times,
            "epoch_seconds_median": float(np.median(times))}


def torch_graph(wl, X, y, epochs):
    """PyTorch's training step captured once in a CUDA graph and replayed per minibatch (the
    gather of the batch inside the graph; full batches only). The capture counts as set-up."""
    from mlpfast import bench

    def make(X, y, wl, threads):
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.manual_seed(0)
        model = bench.torch_mlp(wl).cuda()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()
        idx = torch.arange(wl.batch, device="cuda")

        def step():
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()

        def epoch():
            order = torch.randperm(len(X), device="cuda")
            for b in range(len(X) // wl.batch):
                idx.copy_(order[b * wl.batch: (b + 1) * wl.batch])
                g.replay()
            torch.cuda.synchronize()
        return epoch
    first, times, _ = bench.time_engine(make, X, y, wl, epochs, 1)
    return {"first_seconds": first, "epoch_seconds": times,
            "epoch_seconds_median": float(np.median(times)), "steps": len(X) // wl.batch}


def parity_w1(X, y, out):
    """One epoch of W1 from the same weights and batch order on both engines."""
    from mlpfast import MLPClassifier
    os.environ["MLPFAST_CUDA_MODE"] = "persistent"
    fits = {}
    for device in ("cpu", "cuda"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[device] = MLPClassifier(hidden_layer_sizes=(128, 128), batch_size=256,
                                         max_iter=1, random_state=0, device=device).fit(X, y)
    a, b = fits["cpu"]._theta, fits["cuda"]._theta
    scale = float(np.abs(a).max())
    p_cpu = fits["cpu"].predict_proba(X[:20000])
    p_gpu = fits["cuda"].predict_proba(X[:20000])
    res = {"max_abs_theta_diff": float(np.abs(a - b).max()), "theta_scale": scale,
           "relative": float(np.abs(a - b).max() / scale),
           "median_abs_theta_diff": float(np.median(np.abs(a - b))),
           "loss_cpu": fits["cpu"].loss_, "loss_cuda": fits["cuda"].loss_,
           "max_abs_proba_diff": float(np.abs(p_cpu - p_gpu).max()),
           "predictions_equal_fraction": float(np.mean(p_cpu.argmax(1) == p_gpu.argmax(1)))}
    out["w1_parity"] = res
    print(f"W1 parity after one epoch: {res}", flush=True)


def section(name, fn, out):
    t0 = time.perf_counter()
    try:
        fn()
    except Exception:
        out.setdefault("errors", {})[name] = traceback.format_exc()
        print(f"[{name}] FAILED\n{traceback.format_exc()}", flush=True)
    print(f"[{name}] {time.perf_counter() - t0:.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--only", default="gemm,xent,W1,W3,parity")
    ap.add_argument("--modes", default="persistent,phased")
    ap.add_argument("--sweep", action="store_true", help="also time each large tile config alone")
    args = ap.parse_args()
    modes = args.modes.split(",")
    from mlpfast import bench
    out = {"command": " ".join(["python"] + sys.argv), "date": time.strftime("%Y-%m-%d"),
           "machine": bench.machine()}
    print(out["machine"], flush=True)
    only = args.only.split(",")
    if "gemm" in only:
        if args.sweep:
            section("gemm sweep", lambda: gemm_sweep(4096, out), out)
        section("gemm", lambda: gemm(4096, out), out)
    if "xent" in only:
        section("xent", lambda: xent(65536, 1024, out), out)
    for name in ("W1", "W3"):
        if name not in only:
            continue
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl)
        res = out.setdefault(name, {})

        def run(key, fn):
            def go():
                res[key] = fn()
                print(f"{name} {key}: {res[key]}", flush=True)
            section(f"{name} {key}", go, out)
        for mode in modes:
            run(f"mlpfast-cuda {mode}",
                lambda mode=mode: mlpfast_epochs(wl, X, y, mode, args.epochs))
        run("torch-cuda eager", lambda: torch_eager(wl, X, y, args.epochs))
        if name == "W1":
            run("torch-cuda graph", lambda: torch_graph(wl, X, y, args.epochs))
        if name == "W1" and "parity" in only:
            section("parity", lambda: parity_w1(X, y, out), out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    print("done", flush=True)


if __name__ == "__main__":
    main()
