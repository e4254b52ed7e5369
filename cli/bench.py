"""`mlpfast bench`: how fast is this on my CPU, my GPU, and against what I use today."""
import sys

import click
import numpy as np

from mlpfast import bench
from mlpfast.errors import DataError

from .common import comma_list, csv_format, csv_options, notes_to_stderr, write_csv_rows
from .main import cli

PEERS = {"numpy": ["numpy"], "torch": ["torch-cpu", "torch-cuda"], "sklearn": ["sklearn"],
         "jax": ["jax-cpu"]}
FIELDS = ["workload", "engine", "rows", "compile_seconds", "epoch_seconds", "epoch_seconds_median",
          "samples_per_second", "gflops", "ceiling_fraction", "transfer_seconds"]


@cli.command("bench")
@click.argument("data_file", metavar="[DATA]", required=False, type=click.Path(dir_okay=False))
@click.option("--workload", "workloads", default="W1,W4", show_default=True,
              help="Comma-separated W1..W4 (benchmarks/README.md), or 'all'. Ignored with DATA.")
@click.option("--rows", type=click.IntRange(1), help="Scale each workload down to this many rows.")
@click.option("--device", "devices", default="cpu,cuda", show_default=True, callback=comma_list,
              help="mlpfast engines to run; cuda is skipped with a note where no GPU is usable.")
@click.option("--against", default="numpy,torch,jax,sklearn", show_default=True,
              callback=comma_list,
              help="Peers trained on the same model, batch and optimizer (each skipped with a "
                   "note where it is not installed: pip install 'mlpfast[bench]').")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True,
              help="Steady-state epochs timed after the warm-up epoch.")
@click.option("--rounds", type=click.IntRange(1), default=1, show_default=True,
              help="Times each engine runs, in turn with the others (order rotated each "
                   "round); every run in a process of its own.")
@click.option("--target", help="Target column of DATA. [default: the last column]")
@click.option("--hidden", default="128,128", show_default=True, callback=comma_list,
              help="Hidden widths for DATA.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
              help="Batch size for DATA.")
@csv_options
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="Write results as JSON.")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False), help="Write results as CSV.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="Draw samples/s per engine and workload, with each engine's speed-up, to "
                   "a .png, .svg or .pdf file (needs matplotlib).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench_command(data_file, workloads, rows, devices, against, epochs, rounds, target, hidden,
                  batch_size, json_file, csv_file, plot_file, quiet, **fmt_opts):
    """Time training epochs of mlpfast and its peers on the same model, in one run.

    For each engine and workload: first-epoch (compile / set-up) seconds apart, the median of
    the steady-state epochs, samples per second, GFLOP/s and its fraction of the matmul
    ceiling measured in the same run (NumPy's BLAS sgemm on the CPU, cuBLAS sgemm with TF32
    off on the GPU), and for mlpfast-cuda the host<->device copy seconds apart. Each engine
    runs in a process of its own (a library's idle threads would slow the next one timed in
    the same process), in turn with the others; --rounds repeats that.

    \b
    Examples:
      mlpfast bench --workload W4 --rows 20000
      mlpfast bench --workload all --against torch,jax,sklearn --rounds 3 --json bench.json
      mlpfast bench data.csv --target y --hidden 256,128 --device cpu
    """
    if plot_file:  # before any work: the extra, and a file the figure can go to
        from mlpfast import plots
        try:
            plots.require_matplotlib("--plot")
        except plots.MissingMatplotlib:
            # bench's peers (torch, scikit-learn) come with matplotlib in the bench extra
            raise DataError("--plot needs matplotlib: pip install 'mlpfast[bench]'") from None
        plots.check_out(plot_file, "--plot")
    for d in devices:
        if d not in ("cpu", "cuda"):
            raise click.BadParameter(f"unknown device {d!r}; choose cpu and/or cuda",
                                     param_hint="--device")
    engines = [f"mlpfast-{d}" for d in devices]
    for peer in against:
        if peer not in PEERS:
            raise click.BadParameter(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}",
                                     param_hint="--against")
        engines += [e for e in PEERS[peer] if not e.endswith("cuda") or "cuda" in devices]
    with notes_to_stderr():
        cases = _cases(data_file, workloads, rows, target, hidden, batch_size, csv_format(fmt_opts))

    import numba
    threads = numba.get_num_threads()
    machine = bench.machine()
    ceiling = bench.blas_gflops()
    gpu_ceiling = bench.gpu_gflops() if any(e.endswith("cuda") for e in engines) else None
    results, notes = [], []
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(total=len(cases) * len(engines) * rounds, unit="run", file=sys.stderr)
    usable = {}
    for engine in engines:
        ok, why = bench.available(engine)
        usable[engine] = ok
        if not ok:
            notes.append(f"{engine} skipped: {why}")
    for wl, X, y in cases:
        # each engine in a process of its own, rounds in rotated order (bench.time_isolated)
        runs = {e: [] for e in engines if usable[e]}
        for r in range(rounds):
            order = list(runs)
            order = order[r % len(order):] + order[:r % len(order)] if order else order
            for engine in order:
                if bar is not None:
                    bar.set_description(f"{wl.name} {engine}")
                try:
                    runs[engine].append(bench.time_isolated(engine, X, y, wl, epochs, threads))
                except RuntimeError as exc:
                    notes.append(f"{wl.name} {exc}")
                if bar is not None:
                    bar.update()
        for engine in engines:
            if not usable[engine]:
                if bar is not None:
                    bar.update(rounds)
            elif runs[engine]:
                first = runs[engine][0][0]
                times = [t for run in runs[engine] for t in run[1]]
                transfer = runs[engine][0][2]
                med = float(np.median(times))
                gf = wl.flop_per_epoch(len(X)) / med / 1e9
                top = gpu_ceiling if engine.endswith("cuda") else ceiling
                results.append({
                    "workload": wl.name, "engine": engine, "rows": len(X),
                    "compile_seconds": max(0.0, first - med), "epoch_seconds": times,
                    "epoch_seconds_median": med, "samples_per_second": len(X) / med,
                    "gflops": gf, "ceiling_fraction": gf / top if top else None,
                    "transfer_seconds": transfer})
    if bar is not None:
        bar.close()
    for note in dict.fromkeys(notes):
        click.echo(f"note: {note}", err=True)
    machine["blas_sgemm_gflops"] = ceiling
    machine["gpu_sgemm_gflops"] = gpu_ceiling
    click.echo(_table(results, machine))
    if json_file:
        from mlpfast.tabular.folder import write_json
        write_json(json_file, {"machine": machine, "results": results})
    if csv_file:
        write_csv_rows(csv_file, FIELDS, [[_cell(r[k]) for k in FIELDS] for r in results])
    if plot_file and results:
        from mlpfast.plots import bench_figure
        gpu = machine["gpu"] if any(r["engine"].endswith("cuda") for r in results) else None
        bench_figure(results, plot_file, title=f"{machine['cpu']}, {threads} thread"
                     + ("s" if threads != 1 else "")
                     + (f"; {gpu}" if gpu else ""))
    elif plot_file:
        click.echo(f"note: no engine ran, so there is nothing to draw; {plot_file} not written",
                   err=True)


def _cases(data_file, workloads, rows, target, hidden, batch_size, fmt):
    if data_file:
        from mlpfast.tabular.flow import arrays
        X, y, schema = arrays(data_file, target, csv=fmt)
        if schema.task != "classification":
            raise DataError(f"{data_file}: bench trains classifiers; target {schema.target!r} "
                            "looks like a regression target")
        if rows:
            X, y = X[:rows], y[:rows]
        try:
            widths = tuple(int(h) for h in hidden)
        except ValueError:
            raise click.BadParameter(f"{','.join(hidden)!r} is not a list of widths",
                                     param_hint="--hidden") from None
        wl = bench.Workload(data_file, len(X), X.shape[1], widths, len(schema.classes),
                            min(batch_size, len(X)))
        return [(wl, np.ascontiguousarray(X), y.astype(np.int64))]
    names = list(bench.WORKLOADS) if workloads == "all" else comma_list(None, None, workloads)
    cases = []
    for name in names:
        if name not in bench.WORKLOADS:
            raise click.BadParameter(f"unknown workload {name!r}; choose from "
                                     f"{', '.join(bench.WORKLOADS)} or all", param_hint="--workload")
        wl = bench.WORKLOADS[name]
        X, y = bench.synthetic(wl, rows)
        cases.append((wl, X, y))
    return cases


def _table(results, machine):
    gpu = machine.get("gpu_sgemm_gflops")
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores, gpu: {machine['gpu']}; "
             f"BLAS sgemm ceiling {machine['blas_sgemm_gflops']:.0f} GFLOP/s"
             + (f", cuBLAS sgemm (TF32 off) {gpu:.0f} GFLOP/s" if gpu else ""),
             f"{'workload':<10}{'engine':<14}{'rows':>9}{'compile s':>11}{'epoch s':>10}"
             f"{'samples/s':>12}{'GFLOP/s':>9}{'of peak':>9}{'xfer s':>8}"]
    for r in results:
        frac = "" if r["ceiling_fraction"] is None else f"{100 * r['ceiling_fraction']:.0f}%"
        lines.append(f"{r['workload']:<10}{r['engine']:<14}{r['rows']:>9}{r['compile_seconds']:>11.2f}"
                     f"{r['epoch_seconds_median']:>10.4f}{r['samples_per_second']:>12,.0f}"
                     f"{r['gflops']:>9.1f}{frac:>9}"
                     + ("" if r["transfer_seconds"] is None else f"{r['transfer_seconds']:>8.3f}"))
    for wl in dict.fromkeys(r["workload"] for r in results):
        rs = [r for r in results if r["workload"] == wl]
        if len(rs) < 2:
            continue
        lines += ["", f"{wl}: speed-up of row engine over column engine (epoch time ratio)"]
        names = [r["engine"] for r in rs]
        lines.append(" " * 14 + "".join(f"{n:>14}" for n in names))
        for a in rs:
            lines.append(f"{a['engine']:<14}" + "".join(
                f"{b['epoch_seconds_median'] / a['epoch_seconds_median']:>13.2f}x" for b in rs))
    return "\n".join(lines)


def _cell(v):
    if isinstance(v, list):
        return ";".join(f"{x:.6g}" for x in v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v
