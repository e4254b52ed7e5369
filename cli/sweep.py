"""`mlpfast sweep SPEC.toml`: many training runs as one batch job, on dask.distributed. A thin
shell over mlpfast.sweep: options in, one call, a progress bar and the summary out."""
import os
import sys

import click

from .common import COMPILE_NOTICE, notes_to_stderr
from .main import cli
from .signals import STOP, exit_code, signal_name


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Sweep folder: trials/<trial>/ run folders, results.csv, results.json. "
                   "[default: sweeps/<SPEC's name>]")
@click.option("--scheduler", metavar="ADDRESS",
              help="A running dask scheduler to use (e.g. tcp://host:8786); its workers must "
                   "see the data files and the sweep folder. [default: a local cluster]")
@click.option("--workers", type=click.IntRange(1),
              help="Worker processes of the local cluster. [default: one per core, up to the "
                   "trials]")
@click.option("--threads", type=click.IntRange(1),
              help="Numba threads per worker. [default: the cores divided among the workers]")
@click.option("--together/--no-together", default=None,
              help="Train trials that share data and network shape together in one compiled "
                   "call (each bit-identical to its trial alone). [default: the spec's "
                   "`together`, else on]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def sweep(spec, out_dir, scheduler, workers, threads, together, quiet):
    """Train every trial of SPEC (a TOML file) and tabulate the results.

    SPEC names the data files (globs, relative to SPEC's folder), the target, the `train`
    options fixed for every trial ([options]) and those that vary: [grid] (every combination
    of its lists) and/or [random] with n_trials (draws from ranges). Each trial is a run
    folder as `mlpfast train` writes it. Running the same command again skips finished
    trials, resumes stopped ones from their checkpoints and runs failed ones again. SIGTERM or
    Ctrl-C stops the running trials at a checkpoint and writes the results so far. Needs
    dask: pip install 'mlpfast[dask]'.

    \b
    Example SPEC:
      data = ["shops/*.csv"]
      target = "y"
      [options]
      epochs = 10
      [grid]
      hidden = ["64", "128,64"]
      lr = [0.001, 0.003]
      seed = [0, 1]

    \b
    Examples:
      mlpfast sweep spec.toml
      mlpfast sweep spec.toml --out sweeps/shops --workers 2
      mlpfast sweep spec.toml --scheduler tcp://10.0.0.5:8786
    """
    from mlpfast.sweeps import RESULTS_CSV, load_spec, sweep as run_sweep
    name = load_spec(spec)[2] if os.path.isfile(spec) else "sweep"
    out_dir = os.path.abspath(out_dir or os.path.join("sweeps", name))
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    bar = _Bar(quiet)
    COMPILE_NOTICE.quiet = quiet  # the workers' compile notice (mlpfast.cluster.warm_up)
    # from here a signal stops the trials at a checkpoint and the results so far are written
    STOP.deferred = STOP.progressed = True
    try:
        with notes_to_stderr():
            results = run_sweep(spec, out=out_dir, scheduler=scheduler, workers=workers,
                                threads=threads, together=together, callback=bar, stop=STOP)
    finally:
        bar.close()
    counts = results["status"].value_counts().to_dict() if len(results) else {}
    table = _shown(os.path.join(out_dir, RESULTS_CSV))
    if results.attrs.get("interrupted") and results.attrs.get("out") is None:
        click.echo(f"Interrupted ({signal_name(None)}) before any trial started; nothing was "
                   "written.", err=True)
        sys.exit(exit_code(None))
    if results.attrs.get("interrupted"):
        click.echo(f"Interrupted ({signal_name(None)}): {_counts(counts)}; the results so far are "
                   f"in {table}; run the same command again to continue (finished trials are "
                   "skipped, stopped ones resume from their checkpoints)", err=True)
        sys.exit(exit_code(None))
    say(_summary(results, counts, table))
    failed = results[results["status"] == "failed"]
    if len(failed):
        first = failed.iloc[0]
        raise click.ClickException(
            f"{len(failed)} of {len(results)} trials failed (first: {first['trial']}: "
            f"{first['error']}); see {table}; fix and run the same command again to retry them")


def _shown(path):
    """A path as the user would type it: relative when it is under the current folder."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _counts(counts):
    order = ("finished", "skipped", "diverged", "failed", "interrupted", "not started")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))


def _summary(results, counts, table):
    from mlpfast.sweeps import FIXED_COLUMNS
    lines = [f"{len(results)} trial{'' if len(results) == 1 else 's'}: {_counts(counts)}"]
    best = results.attrs.get("best", {})
    varied = [c for c in results.columns if c not in FIXED_COLUMNS]
    for data, trial in best.items():
        row = results[results["trial"] == trial].iloc[0]
        score = next((f"{k} {row[k]:.4f}" for k in ("val_accuracy", "val_r2", "test_accuracy",
                                                     "test_r2") if _present(row[k])),
                     f"train_loss {row['train_loss']:.4f}")
        opts = ", ".join(f"{k}={row[k]}" for k in varied)
        lines.append(f"best for {os.path.basename(data)}: {trial}" +
                     (f" ({opts})" if opts else "") + f": {score}")
    lines.append(f"wrote {table} and results.json")
    return "\n".join(lines)


def _present(v):
    import math
    return v is not None and not (isinstance(v, float) and math.isnan(v))


class _Bar:
    """A progress bar over trials with ETA, on stderr when it is a terminal."""

    def __init__(self, quiet):
        self.bar = None
        self.quiet = quiet

    def __call__(self, event):
        if self.quiet or not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=event["total"], unit="trial", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0)
            COMPILE_NOTICE.bar = self.bar  # a compile notice's time goes on the bar
        if event["kind"] == "start":
            return
        self.bar.n = event["done"]
        row = event["row"]
        self.bar.set_postfix_str(f"{row['trial']} {row['status']}", refresh=True)

    def close(self):
        COMPILE_NOTICE.stop()
        COMPILE_NOTICE.bar = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["sweep"]
