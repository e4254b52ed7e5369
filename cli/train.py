"""`mlpfast train`: CSV in; run folder (model.npz, metrics.csv, run.json) out."""
import datetime
import os
import sys
import time

import click
import numpy as np

from mlpfast import MLPClassifier, MLPRegressor, __version__, data
from mlpfast.errors import DataError, MLPFastError
from mlpfast.model_io import save_model
from mlpfast.registry import ACTIVATIONS, DEVICES, DTYPES, SOLVERS

from .common import comma_list, csv_options, warnings_to_stderr, write_csv_rows, write_json
from .main import cli

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
@click.option("--features", callback=comma_list, help="Use only these columns (comma-separated).")
@click.option("--drop", callback=comma_list, help="Leave out these columns.")
@click.option("--categorical", callback=comma_list,
              help="Treat these columns as categorical whatever their type.")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="[default: inferred from the target]")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Share of rows held out for validation (stratified).")
@click.option("--val", "val_file", type=click.Path(dir_okay=False),
              help="Validation CSV (instead of --val-fraction).")
@click.option("--test", "test_file", type=click.Path(dir_okay=False),
              help="Test CSV, evaluated once after training.")
@click.option("--on-missing", type=click.Choice(["impute", "error"]), default="impute",
              show_default=True, help="Impute missing values (median / own level) or refuse them.")
@csv_options
@click.option("--hidden", default="128", show_default=True, callback=_hidden,
              help="Hidden layer widths, comma-separated.")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS)), default="relu", show_default=True)
@click.option("--optimizer", type=click.Choice(list(SOLVERS)), default="adam", show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
              help="Initial learning rate.")
@click.option("--batch-size", default="auto", show_default=True, callback=_batch_size,
              help="Rows per minibatch, or 'auto' (min(200, rows)).")
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--momentum", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="SGD momentum.")
@click.option("--alpha", type=click.FloatRange(0), default=1e-4, show_default=True,
              help="L2 penalty.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--early-stopping/--no-early-stopping", default=False, show_default=True,
              help="Stop when the validation score stops improving; keep the best model.")
@click.option("--patience", type=click.IntRange(1), default=10, show_default=True,
              help="Epochs without improvement before stopping.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(list(DEVICES)), default="cpu", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float32", show_default=True)
@click.option("--threads", type=click.IntRange(1), help="CPU threads. [default: all cores]")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def train(data_file, out_dir, **opts):
    """Train an MLP on a CSV file and write a run folder.

    DATA is a CSV file with a header row; without it, the bundled letter-recognition data is
    used. The run folder gets model.npz (weights and preprocessing), metrics.csv (one row per
    epoch) and run.json (configuration, data, timings, final and best metrics).

    \b
    Examples:
      mlpfast train
      mlpfast train datasets/adult.csv --hidden 64 --epochs 20 --out runs/adult
      mlpfast train houses.csv --target price --task regression --early-stopping
    """
    t_start = time.perf_counter()
    if opts["threads"]:
        import numba
        numba.set_num_threads(min(opts["threads"], numba.config.NUMBA_NUM_THREADS))
    target = opts["target"]
    if data_file is None:
        data_file = str(data.bundled_dataset(DEFAULT_DATA))
        target = target or DEFAULT_TARGET
    say = (lambda msg: None) if opts["quiet"] else (lambda msg: click.echo(msg, err=True))

    frame = data.read_csv(data_file, sep=opts["sep"], encoding=opts["encoding"])
    target = target or frame.columns[-1]
    frame = _select_columns(frame, target, opts, data_file)
    task = opts["task"]
    if task is None:
        task, why = data.infer_task(frame[target])
        say(f"task: {task} (target {target!r} has {why}; override with --task)")
    if frame[target].isna().any():
        raise DataError(f"{data_file}: target column {target!r} has "
                        f"{int(frame[target].isna().sum())} missing values, first at row "
                        f"{data.first_row(frame[target].isna())}")
    if task == "classification" and frame[target].nunique() < 2:
        raise DataError(f"{data_file}: target column {target!r} has a single class "
                        f"({frame[target].iloc[0]!r}); a classifier needs at least 2")

    train_df, val_df = _split(frame, target, task, opts, data_file)
    pre = data.Preprocessor.fit(train_df, target, task, categorical=opts["categorical"] or (),
                                on_missing=opts["on_missing"], name=data_file)
    with warnings_to_stderr():
        X, y = _arrays(pre, train_df, data_file, opts)
        X_val, y_val = _arrays(pre, val_df, opts["val_file"] or data_file, opts) if val_df is not None else (None, None)
    say(f"data: {len(train_df)} training rows, {0 if val_df is None else len(val_df)} validation "
        f"rows; {len(pre.columns)} columns ({pre.describe()}) -> {pre.n_features} features")

    est = _estimator(task, opts)
    from mlpfast.engine import cuda_status, resolve_device
    chosen = resolve_device(opts["device"])  # an unusable device fails before any folder exists
    if opts["device"] == "auto":
        say(f"device: auto -> {chosen}" + ("" if chosen == "cuda" else f" ({cuda_status()[1]})"))
    if chosen == "cpu":
        from mlpfast.engine.cpu import kernels_cached
        if kernels_cached() is False:
            say("compiling the kernels: once after an install, about a minute on 2 cores; "
                "later runs load them from the cache")
    out_dir = _make_run_dir(out_dir)
    monitor = _Monitor(est, opts["epochs"], task, quiet=opts["quiet"])
    eval_set = None if X_val is None else (X_val, y_val)
    interrupted = False
    try:
        with warnings_to_stderr():
            est.fit(X, y, eval_set=eval_set, callback=monitor)
    except KeyboardInterrupt:
        interrupted = True
    except (MLPFastError, ValueError) as exc:
        _remove_if_empty(out_dir)
        if isinstance(exc, MLPFastError):
            raise  # already worded for the user
        raise DataError(str(exc)) from None  # the estimator refused the data or options
    finally:
        monitor.close()
    if not est.history_:
        _remove_if_empty(out_dir)
        if interrupted:
            click.echo("Interrupted before the first epoch finished; nothing was saved.", err=True)
            sys.exit(130)
        raise DataError("training stopped before the first epoch finished")

    history = est.history_
    best = _best_record(history, task)
    theta = monitor.best_theta if interrupted and monitor.best_theta is not None else None
    test_metrics = None
    if opts["test_file"] and not interrupted:
        from .apply import evaluate_frame
        test_df = data.read_csv(opts["test_file"], sep=opts["sep"], encoding=opts["encoding"])
        with warnings_to_stderr():
            test_metrics = evaluate_frame(est, pre, test_df, opts["test_file"])
    meta = {"data": os.path.abspath(data_file), "target": target, "task": task,
            "trained": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    run = _run_summary(data_file, frame, train_df, val_df, pre, est, opts, history, best,
                       test_metrics, time.perf_counter() - t_start, interrupted)
    save_model(os.path.join(out_dir, "model.npz"), est, pre, theta=theta, meta=meta)
    _write_metrics(os.path.join(out_dir, "metrics.csv"), history, task)
    write_json(os.path.join(out_dir, "run.json"), run)
    if interrupted:
        click.echo(f"Interrupted after epoch {history[-1]['epoch']}: saved the metrics so far "
                   f"and the best model so far (epoch {best['epoch']}) to {out_dir}", err=True)
        sys.exit(130)
    say(_summary(best, history, task, run, out_dir, test_metrics))


# ---- pieces of train

def _select_columns(frame, target, opts, name):
    if target not in frame.columns:
        raise DataError(f"{name}: no target column {target!r}; columns are {list(frame.columns)}")
    cols = list(frame.columns)
    if opts["features"]:
        unknown = [c for c in opts["features"] if c not in cols]
        if unknown:
            raise DataError(f"{name}: --features names unknown column(s) {unknown}; columns are {cols}")
        cols = [c for c in cols if c in opts["features"] or c == target]
    for c in opts["drop"] or ():
        if c not in frame.columns:
            raise DataError(f"{name}: --drop names unknown column {c!r}; columns are {list(frame.columns)}")
        if c == target:
            raise DataError(f"{name}: --drop names the target column {c!r}")
        cols.remove(c)
    for c in opts["categorical"] or ():
        if c not in frame.columns:
            raise DataError(f"{name}: --categorical names unknown column {c!r}")
    if len(cols) < 2:
        raise DataError(f"{name}: no feature columns left besides the target {target!r}")
    return frame[cols]


def _split(frame, target, task, opts, name):
    if opts["val_file"]:
        val_df = data.read_csv(opts["val_file"], sep=opts["sep"], encoding=opts["encoding"])
        return frame, val_df
    if opts["val_fraction"] == 0:
        if opts["early_stopping"]:
            raise DataError("--early-stopping needs validation rows: give --val FILE or a "
                            "--val-fraction above 0")
        if len(frame) < 2:
            raise DataError(f"{name}: {len(frame)} row is too few to train on")
        return frame, None
    strata = frame[target].astype(str).to_numpy() if task == "classification" else None
    if strata is not None and np.unique(strata, return_counts=True)[1].min() < 2:
        strata = None  # a class with one row cannot be split both ways
    tr, va = data.split(len(frame), opts["val_fraction"], opts["seed"], strata)
    # keep the index: error messages name rows by their place in the file
    return frame.iloc[tr], frame.iloc[va]


def _arrays(pre, frame, name, opts):
    if pre.target not in frame.columns:
        raise DataError(f"{name}: no target column {pre.target!r}; columns are {list(frame.columns)}")
    X = pre.transform(frame, name=name, on_missing=opts["on_missing"])
    y = pre.encode_target(frame[pre.target], name=name)
    return X, (pre.classes[y] if pre.task == "classification" else y)


def _estimator(task, opts):
    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(hidden_layer_sizes=opts["hidden"], activation=opts["activation"],
               solver=opts["optimizer"], learning_rate_init=opts["lr"],
               batch_size=opts["batch_size"], max_iter=opts["epochs"],
               momentum=opts["momentum"], alpha=opts["alpha"], dropout=opts["dropout"],
               early_stopping=opts["early_stopping"], n_iter_no_change=opts["patience"],
               tol=1e-4 if opts["early_stopping"] else 0.0,
               random_state=opts["seed"], device=opts["device"], dtype=opts["dtype"])


def _make_run_dir(out_dir):
    if out_dir is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = os.path.join("runs", stamp)
        k = 1
        while os.path.exists(out_dir):
            k += 1
            out_dir = os.path.join("runs", f"{stamp}-{k}")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the run folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise DataError(f"cannot write to the run folder {out_dir}")
    return out_dir


def _remove_if_empty(folder):
    try:
        os.rmdir(folder)
    except OSError:
        pass


class _Monitor:
    """Progress bar on stderr (only on a terminal), and a copy of the best weights so far."""

    def __init__(self, est, epochs, task, quiet):
        self.est = est
        self.task = task
        self.best_theta = None
        self.best_score = None
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}{postfix}]")

    def __call__(self, est, event):
        if event["kind"] == "chunk":
            if self.bar is not None:
                self.bar.n = event["epoch"] - 1 + event["rows_done"] / event["rows_total"]
                self.bar.set_postfix_str(f"loss {event['loss']:.4f}", refresh=True)
            return False
        self.on_epoch(event["record"])
        return False

    def on_epoch(self, record):
        score = record.get("val_score", -record["train_loss"])
        if self.best_score is None or score > self.best_score:
            self.best_score = score
            self.best_theta = self.est._theta.copy()
        if self.bar is not None:
            self.bar.n = record["epoch"]
            self.bar.set_postfix_str(_postfix(record, self.task), refresh=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _postfix(r, task):
    parts = [f"loss {r['train_loss']:.4f}"]
    if task == "classification":
        parts.append(f"acc {r['train_accuracy']:.3f}")
    if "val_loss" in r:
        parts.append(f"val_loss {r['val_loss']:.4f}")
        parts.append(f"val_{'acc' if task == 'classification' else 'r2'} {r['val_score']:.3f}")
    return ", ".join(parts)


def _metric_columns(task):
    if task == "classification":
        return ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "learning_rate", "epoch_seconds", "samples_per_second"]
    return ["epoch", "train_loss", "val_loss", "val_r2", "learning_rate", "epoch_seconds",
            "samples_per_second"]


def _metric_row(r, task):
    named = dict(r)
    if "val_score" in r:
        named["val_accuracy" if task == "classification" else "val_r2"] = r["val_score"]
    return {k: named.get(k) for k in _metric_columns(task)}


def _write_metrics(path, history, task):
    cols = _metric_columns(task)
    rows = [["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
             for v in _metric_row(r, task).values()] for r in history]
    write_csv_rows(path, cols, rows)


def _best_record(history, task):
    if "val_score" in history[0]:
        return max(history, key=lambda r: r["val_score"])
    return min(history, key=lambda r: r["train_loss"])


def _run_summary(data_file, frame, train_df, val_df, pre, est, opts, history, best,
                 test_metrics, total, interrupted):
    import numba
    import pandas
    secs = [r["epoch_seconds"] for r in history]
    steady = float(np.median(secs[1:])) if len(secs) > 1 else None
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()}
    return {
        "config": config,
        "data": {"file": os.path.abspath(data_file), "sha256": data.sha256(data_file),
                 "rows": len(frame), "train_rows": len(train_df),
                 "val_rows": 0 if val_df is None else len(val_df),
                 "columns": pre.columns, "target": pre.target, "task": pre.task,
                 "n_features": pre.n_features,
                 "classes": None if pre.classes is None else [str(c) for c in pre.classes]},
        "device": getattr(est, "device_", opts["device"]),
        "threads": numba.get_num_threads(),
        "versions": {"mlpfast": __version__, "numba": numba.__version__,
                     "numpy": np.__version__, "pandas": pandas.__version__},
        # the first epoch includes compiling (or loading cached) kernels: its excess over a
        # steady epoch is the compile time
        "compile_seconds": None if steady is None else max(0.0, secs[0] - steady),
        "steady_epoch_seconds": steady,
        "total_seconds": total,
        "epochs_run": len(history),
        "interrupted": interrupted,
        "best_epoch": best["epoch"],
        "final": _metric_row(history[-1], pre.task),
        "best": _metric_row(best, pre.task),
        "test": test_metrics,
    }


def _summary(best, history, task, run, out_dir, test_metrics):
    last = history[-1]
    lines = [f"trained {len(history)} epochs in {run['total_seconds']:.1f} s "
             f"({last['samples_per_second']:,.0f} rows/s per epoch at the end)"]
    if "val_score" in best:
        name = "accuracy" if task == "classification" else "R2"
        lines.append(f"best epoch {best['epoch']}: validation loss {best['val_loss']:.4f}, "
                     f"{name} {best['val_score']:.4f}")
    else:
        lines.append(f"best epoch {best['epoch']}: training loss {best['train_loss']:.4f}")
    if test_metrics:
        key = "accuracy" if task == "classification" else "r2"
        lines.append(f"test: loss {test_metrics['loss']:.4f}, {key} {test_metrics[key]:.4f}")
    lines.append(f"wrote {out_dir}/model.npz, metrics.csv, run.json")
    return "\n".join(lines)
