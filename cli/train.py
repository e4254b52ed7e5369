"""`mlpfast train`: CSV in; run folder (model.npz, metrics.csv, run.json) out. A thin shell over
mlpfast.tabular.train: options in, one call, the report out."""
import math
import os
import sys

import click

from mlpfast.datasets_path import bundled_dataset
from mlpfast.errors import DataError, DivergenceError, MLPFastError
from mlpfast.registry import ACTIVATIONS, DEVICES, DTYPES, SOLVERS
from mlpfast.tabular import options

from .common import COMPILE_NOTICE, comma_list, csv_format, csv_options, notes_to_stderr
from .main import cli
from .signals import STOP, exit_code, signal_name

DEFAULT_DATA = "letter-recognition.csv"
DEFAULT_TARGET = "Letter"


def _load_config(ctx, param, value):
    """--config FILE (TOML): its keys are option names; the command line wins over it."""
    if value is None:
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(value, "rb") as f:
            conf = tomllib.load(f)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc.strerror}", ctx, param)
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{value} is not valid TOML: {exc}", ctx, param)
    known = {p.name for p in ctx.command.params}
    defaults = {}
    for key, v in conf.items():
        name = key.replace("-", "_")
        if name not in known or name == "config":
            raise click.BadParameter(f"{value}: unknown option {key!r}", ctx, param)
        if isinstance(v, list):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, dict):  # class_weight = {A = 2, B = 1}
            v = ",".join(f"{k}={x}" for k, x in v.items())
        defaults[name] = v
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _batch_size(ctx, param, value):
    if value is None or str(value) == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither 'auto' nor a whole number") from None
    if n < 1:
        raise click.BadParameter("must be at least 1")
    return n


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def _class_weight(ctx, param, value):
    """'balanced', or 'A=2,B=1' -> {'A': 2.0, 'B': 1.0} (--config's table {A = 2, B = 1}
    arrives as the same text). The labels are matched to the target's classes, and the
    weights checked, by the library."""
    if value is None:
        return None
    if str(value).strip().lower() == "balanced":
        return "balanced"
    pairs = []
    for item in str(value).split(","):
        if not item.strip():
            continue
        label, eq, weight = item.rpartition("=")
        if not eq or not label.strip():
            raise click.BadParameter(f"{item.strip()!r} is not label=weight; give 'balanced' "
                                     "or pairs such as 'A=2,B=1'")
        pairs.append((label.strip(), weight.strip()))
    if not pairs:
        raise click.BadParameter("give 'balanced' or pairs such as 'A=2,B=1'")
    out = {}
    for label, weight in pairs:
        try:
            number = float(weight)
        except (TypeError, ValueError):
            raise click.BadParameter(f"the weight of {label!r} is {weight!r}, not a number") from None
        if label in out:
            raise click.BadParameter(f"names {label!r} twice")
        out[label] = number
    return out


def _hidden(ctx, param, value):
    try:
        sizes = tuple(int(v) for v in comma_list(ctx, param, value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of layer widths") from None
    if any(s < 1 for s in sizes):
        raise click.BadParameter("layer widths must be at least 1")
    return sizes


@cli.command()
@click.argument("data_file", metavar="[DATA]", required=False, type=click.Path(dir_okay=False))
@click.option("--config", callback=_load_config, is_eager=True, expose_value=False,
              type=click.Path(dir_okay=False), help="TOML file of options; the command line wins.")
@click.option("--target", help="Target column. [default: the last column]")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run folder to write. [default: runs/<timestamp>]")
@click.option("--force", is_flag=True, help="Replace the run folder if it already holds files.")
@click.option("--resume", type=click.Path(file_okay=False, exists=True),
              help="Continue the run in this folder from its checkpoint (options given must "
                   "match the run's).")
@click.option("--checkpoint-every", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              callback=_finite,
              help="Checkpoint every SECONDS (at a progress chunk's end) instead of after "
                   "every epoch.")
@click.option("--features", callback=comma_list, help="Use only these columns (comma-separated).")
@click.option("--drop", callback=comma_list, help="Leave out these columns.")
@click.option("--categorical", callback=comma_list,
              help="Treat these columns as categorical whatever their type.")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="[default: inferred from the target]")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, callback=_finite, help="Share of rows held out for validation (stratified).")
@click.option("--val", "val_file", type=click.Path(dir_okay=False),
              help="Validation CSV (instead of --val-fraction).")
@click.option("--test", "test_file", type=click.Path(dir_okay=False),
              help="Test CSV, evaluated once after training.")
@click.option("--on-missing", type=click.Choice(["impute", "error"]), default="impute",
              show_default=True, help="Impute missing values (median / own level) or refuse them.")
@click.option("--na-values", callback=comma_list,
              help="More texts that mark a missing value, comma-separated (e.g. '-999,?').")
@click.option("--default-na/--no-default-na", default=True, show_default=True,
              help="Also read pandas' default markers (NA, N/A, null, nan, ...) as missing.")
@click.option("--max-categories", type=click.IntRange(1), default=100, show_default=True,
              help="Most one-hot features a text column may take.")
@click.option("--scale-target/--no-scale-target", default=True, show_default=True,
              help="Standardise a regression target (predictions stay in its units).")
@click.option("--sample-weight", metavar="COLUMN",
              help="Column of per-row weights (numbers >= 0; a row of weight 2 counts twice, 0 "
                   "not at all): the loss and the validation score are weighted means. Not a "
                   "feature; --val files need it too.")
@click.option("--class-weight", callback=_class_weight, metavar="balanced|LABEL=W,...",
              help="Weigh classes (classification): 'balanced' (inverse class frequency in "
                   "the training rows) or label=weight pairs, others 1, e.g. 'A=2,B=0.5'. "
                   "Multiplies --sample-weight.")
@csv_options
@click.option("--hidden", default="128", show_default=True, callback=_hidden,
              help="Hidden layer widths, comma-separated.")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS)), default="relu", show_default=True)
@click.option("--optimizer", type=click.Choice(list(SOLVERS)), default="adam", show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
              callback=_finite, help="Initial learning rate.")
@click.option("--batch-size", default="auto", show_default=True, callback=_batch_size,
              help="Rows per minibatch, or 'auto' (min(200, rows)).")
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              callback=_finite, help="SGD momentum.")
@click.option("--alpha", type=click.FloatRange(0), default=1e-4, show_default=True,
              callback=_finite, help="L2 penalty.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              callback=_finite)
@click.option("--early-stopping/--no-early-stopping", default=False, show_default=True,
              help="Stop when the validation score stops improving; keep the best model.")
@click.option("--patience", type=click.IntRange(1), default=10, show_default=True,
              help="Epochs without improvement before stopping.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(list(DEVICES)), default="cpu", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float32", show_default=True)
@click.option("--threads", type=click.IntRange(1), help="CPU threads. [default: all cores]")
@click.option("--plot", is_flag=True,
              help="Also draw the learning curves into the run folder as curves.png (as "
                   "`mlpfast plot` does), also for a run stopped early. Needs matplotlib.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def train(data_file, out_dir, plot, **opts):
    """Train an MLP on a CSV file and write a run folder.

    DATA is a CSV file with a header row (or - for standard input; gzip, bz2, xz and zip files
    are read); without it, the bundled letter-recognition data is used. Each column's role
    (numeric, boolean, date-time, categorical, or left out as an identifier) is decided on the
    whole file and stored in the model, so predict reads every later file the same way. The
    run folder gets model.npz (weights and schema), metrics.csv (one row per epoch) and
    run.json (configuration, data, timings, final and best metrics).

    \b
    Examples:
      mlpfast train
      mlpfast train datasets/adult.csv --hidden 64 --epochs 20 --out runs/adult
      mlpfast train houses.csv --target price --early-stopping
      mlpfast train prices.csv --sep ';' --decimal ',' --na-values -999
      mlpfast train claims.csv --target fraud --sample-weight exposure
      mlpfast train claims.csv --target fraud --class-weight balanced
      mlpfast train letters.csv --target Letter --class-weight 'A=2,B=0.5'
      mlpfast train --epochs 30 --out runs/letters --plot   # and runs/letters/curves.png
    """
    from mlpfast import tabular
    from mlpfast.tabular.flow import new_run_folder

    ctx = click.get_current_context()
    if plot:  # before any work: a missing extra fails in a second, not after training
        from mlpfast.plots import require_matplotlib
        require_matplotlib("--plot")
    if opts["threads"]:
        import numba
        numba.set_num_threads(min(opts["threads"], numba.config.NUMBA_NUM_THREADS))
    resume = opts["resume"]
    if data_file is None and resume is None:
        data_file = str(bundled_dataset(DEFAULT_DATA))
        opts["target"] = opts["target"] or DEFAULT_TARGET
    say = (lambda msg: None) if opts["quiet"] else (lambda msg: click.echo(msg, err=True))
    from mlpfast.engine import cuda_status, resolve_device
    chosen = resolve_device(opts["device"])  # an unusable device fails before any reading
    monitor = _Monitor(opts["epochs"], quiet=opts["quiet"], say=say, device=opts["device"],
                       chosen=chosen, why_not_cuda=None if chosen == "cuda" else cuda_status()[1])
    kwargs = _library_options(opts)
    common = dict(callback=monitor, stop=STOP, checkpoint_every=opts["checkpoint_every"])
    if resume is not None:
        if out_dir is not None:
            raise click.UsageError("--resume continues a run in its own folder; leave out --out")
        out_dir = resume
        given = {lib: opts[cli] for cli, lib in LIBRARY_NAMES.items()
                 if ctx.get_parameter_source(cli).name == "COMMANDLINE"}
        if data_file is not None:
            given["data"] = os.path.abspath(data_file)
        call = lambda: tabular.resume(resume, option_names=OPTION_NAMES,  # noqa: E731
                                      **common, **given)
    else:
        out_dir = out_dir or new_run_folder()
        call = lambda: tabular.train(data_file, out=out_dir, force=opts["force"],  # noqa: E731
                                     **common, **kwargs)
    try:
        with notes_to_stderr():
            run = call()
    except KeyboardInterrupt as exc:
        monitor.close()
        click.echo(f"Interrupted ({signal_name(exc)}) before the first epoch finished; nothing "
                   "was saved.", err=True)
        sys.exit(exit_code(exc))
    except DivergenceError as exc:
        monitor.close()
        drawn = _plot(exc.run, out_dir, stopped=True) if plot and exc.folder else ""
        kept = (f"; saved the metrics{drawn} and the best model so far (epoch "
                f"{exc.run.summary['best']['epoch']}) to {out_dir}" if exc.folder else
                "; nothing was saved")
        where = f"epoch {exc.epoch}" + (f", by step {exc.step}" if exc.step else "")
        raise DataError(f"training diverged at {where} (loss {exc.loss}); lower --lr (now "
                        f"{exc.learning_rate:g}){kept}") from None
    except ValueError as exc:
        monitor.close()
        if isinstance(exc, MLPFastError) or "threading layer" in str(exc):
            raise  # already worded for the user, or for main to word
        raise DataError(str(exc)) from None  # the estimator refused the options
    monitor.close()
    drawn = (_plot(run, out_dir, stopped=run.interrupted is not None)
             if plot and run.history else "")
    if run.interrupted is not None:
        best = run.summary["best"]
        saved = (f"after epoch {run.history[-1]['epoch']}: saved the metrics so far{drawn}, the "
                 f"best model so far (epoch {best['epoch']})" if best else
                 f"during epoch {run.estimator.n_iter_ + 1}: saved the weights so far")
        source = run.summary["data"]["file"]
        then = (f"continue with mlpfast train --resume {out_dir}"
                if source not in ("<stdin>", "DataFrame") else
                "its data came from standard input, so it cannot be resumed")
        click.echo(f"Interrupted ({signal_name(run.interrupted)}) {saved} and a checkpoint to "
                   f"{out_dir}; {then}", err=True)
        sys.exit(exit_code(run.interrupted))
    say(_summary(run, out_dir) + drawn)


# ---- pieces of train

def _plot(run, out_dir, stopped=False):
    """Draw the run's curves into its folder (the run itself is saved already): ', curves.png'
    for the report. A figure that cannot be written is an error saying the run is kept; for a
    run that stopped early (interrupted, diverged), whose stop is the news, a remark instead."""
    from mlpfast.plots import CURVES, learning_curves
    try:
        learning_curves(run, os.path.join(out_dir, CURVES))
    except MLPFastError as exc:
        if stopped:
            return f" (not {CURVES}: {exc})"
        raise DataError(f"{exc}; the run itself is saved in {out_dir}") from None
    return f", {CURVES}"


# this command's options -> mlpfast.tabular.train's keywords (mlpfast.tabular.options, where
# the files are --val and --test)
LIBRARY_NAMES = {{"val": "val_file", "test": "test_file"}.get(k, k): v
                 for k, v in options.LIBRARY_NAMES.items()}
OPTION_NAMES = {v: "--" + k.replace("_file", "").replace("_", "-") for k, v in LIBRARY_NAMES.items()}
OPTION_NAMES["data"] = "DATA"


def _library_options(opts):
    """tabular.train's keywords from this command's options."""
    out = {lib: opts[cli] for cli, lib in LIBRARY_NAMES.items()}
    out["categorical"] = out["categorical"] or ()
    out["na_values"] = out["na_values"] or ()
    out["tol"] = 1e-4 if opts["early_stopping"] else 0.0
    out["csv"] = csv_format({k: out.pop(k) for k in ("sep", "encoding", "decimal", "thousands")})
    return out


class _Monitor:
    """Says what data and device training got, then a progress bar on stderr (only on a
    terminal) until the last epoch."""

    def __init__(self, epochs, quiet, say, device, chosen, why_not_cuda):
        self.epochs, self.quiet, self.say = epochs, quiet, say
        self.device, self.chosen, self.why_not_cuda = device, chosen, why_not_cuda
        self.task = None
        self.bar = None
        COMPILE_NOTICE.quiet = quiet

    def __call__(self, est, event):
        if event["kind"] in ("chunk", "epoch"):
            COMPILE_NOTICE.stop()  # the compiled code has run: compiling is over
        if event["kind"] == "data":
            self._start(event)
        elif event["kind"] == "chunk":
            STOP.progressed = True
            if self.bar is not None:
                self.bar.n = event["epoch"] - 1 + event["rows_done"] / event["rows_total"]
                self.bar.set_postfix_str(f"loss {event['loss']:.4f}", refresh=True)
        elif event["kind"] == "epoch":
            STOP.progressed = True
        if event["kind"] == "epoch" and self.bar is not None:
            record = event["record"]
            self.bar.n = record["epoch"]
            self.bar.set_postfix_str(_postfix(record, self.task), refresh=True)
        return False

    def _start(self, event):
        STOP.deferred = True  # from here a signal stops training at a chunk's end
        sc = event["schema"]
        self.task = sc.task
        self.say(f"data: {event['train_rows']} training rows, {event['val_rows']} validation "
                 f"rows; {len(sc.columns)} columns ({sc.describe()}) -> {sc.n_features} features")
        weights = []
        if event.get("sample_weight"):
            weights.append(f"column {event['sample_weight']!r}")
        cw = event.get("class_weight")
        if cw:
            weights.append("class weights " + (cw if isinstance(cw, str) else
                                               ", ".join(f"{k}={v:g}" for k, v in cw.items())))
        if weights:
            self.say("weights: " + " x ".join(weights))
        if self.device == "auto":
            self.say(f"device: auto -> {self.chosen}" +
                     ("" if self.chosen == "cuda" else f" ({self.why_not_cuda})"))
        if not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=self.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")
            # the time spent compiling (the library's notice) moves on the bar, not its own line
            COMPILE_NOTICE.bar = self.bar

    def close(self):
        COMPILE_NOTICE.stop()
        COMPILE_NOTICE.bar = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _postfix(r, task):
    parts = [f"loss {r['train_loss']:.4f}"]
    if task == "classification":
        parts.append(f"acc {r['train_accuracy']:.3f}")
    if "val_loss" in r:
        parts.append(f"val_loss {r['val_loss']:.4f}")
        parts.append(f"val_{'acc' if task == 'classification' else 'r2'} {r['val_score']:.3f}")
    return ", ".join(parts)


def _summary(run, out_dir):
    history, task, summary = run.history, run.task, run.summary
    best, last = summary["best"], history[-1]
    lines = [f"trained {len(history)} epochs in {summary['total_seconds']:.1f} s "
             f"({last['samples_per_second']:,.0f} rows/s per epoch at the end)"]
    score = "val_accuracy" if task == "classification" else "val_r2"
    if best.get(score) is not None:
        name = "accuracy" if task == "classification" else "R2"
        lines.append(f"best epoch {best['epoch']}: validation loss {best['val_loss']:.4f}, "
                     f"{name} {best[score]:.4f}")
    else:
        lines.append(f"best epoch {best['epoch']}: training loss {best['train_loss']:.4f}")
    test = summary.get("test")
    if test:
        key = "accuracy" if task == "classification" else "r2"
        by = f" (weighted by {test['sample_weight']!r})" if test.get("sample_weight") else ""
        lines.append(f"test{by}: loss {test['loss']:.4f}, {key} {test[key]:.4f}")
    lines.append(f"wrote {out_dir}/model.npz, metrics.csv, run.json")
    return "\n".join(lines)
