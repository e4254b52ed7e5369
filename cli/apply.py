"""`mlpfast predict` and `mlpfast evaluate`: a saved model applied to a raw CSV file, through
mlpfast.tabular's Run (the same reader and stored schema as training)."""
import json
import os

import click

from .common import csv_format, csv_options, notes_to_stderr
from .main import cli


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data_files", metavar="DATA...", nargs=-1, required=True)
@click.option("--out", "out_file", type=click.Path(),
              help="CSV file to write, replaced only when complete; - or a device such as "
                   "/dev/null is written through. [default: stdout, written once complete]")
@click.option("--out-dir", type=click.Path(file_okay=False),
              help="Predict every DATA file (globs allowed) into this folder, as <name>.csv "
                   "each, in parallel on a local dask cluster (or --scheduler's).")
@click.option("--scheduler", metavar="ADDRESS",
              help="With --out-dir: a running dask scheduler (e.g. tcp://host:8786) whose "
                   "workers see the files.")
@click.option("--workers", type=click.IntRange(1),
              help="With --out-dir: worker processes of the local cluster. [default: one per "
                   "core, up to the files]")
@click.option("--force", is_flag=True,
              help="With --out-dir: replace prediction files that exist already.")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@csv_options(model=True)
def predict(model, data_files, out_file, out_dir, scheduler, workers, force, proba, **fmt_opts):
    """Predict every row of DATA with MODEL (a run folder or its model.npz).

    Writes one row per input row, in order: the predicted label (column `prediction`) and,
    with --proba, `proba_<class>` columns. DATA (a file, or - for standard input) is read in
    blocks by the schema stored in the model, exactly as training read its file; columns the
    model does not use (the target and a --sample-weight column among them) are ignored.
    Several files or globs with --out-dir: each into --out-dir/<name>.csv (replaced when
    complete), one task per file on dask (pip install 'mlpfast[dask]'); a file that fails is
    reported and the others go on.

    \b
    Examples:
      mlpfast predict runs/letters datasets/letter-recognition.csv --proba --out pred.csv
      mlpfast predict runs/letters/model.npz new.csv | head
      mlpfast predict runs/shops 'shops/*.csv' --out-dir preds/
    """
    from mlpfast import tabular
    from mlpfast.tabular.output import text_output
    if out_dir is not None or len(data_files) > 1 or _is_glob(data_files[0]):
        return _predict_many(model, data_files, out_file, out_dir, scheduler, workers, force,
                             proba, fmt_opts)
    if scheduler or workers or force:
        raise click.UsageError("--scheduler, --workers and --force go with --out-dir (many "
                               "files)")
    data_file = data_files[0]
    run = tabular.load(model)
    fmt = csv_format(fmt_opts, run.schema.csv)
    model_file = os.path.join(model, "model.npz") if os.path.isdir(model) else model
    with notes_to_stderr(), text_output(out_file, inputs=(data_file, model_file)) as stream:
        run.predict_csv(data_file, stream, proba=proba, csv=fmt)


def _is_glob(path):
    import glob
    return glob.has_magic(path) and not os.path.exists(path)


def _predict_many(model, data_files, out_file, out_dir, scheduler, workers, force, proba,
                  fmt_opts):
    import sys

    from mlpfast.tabular.many import predict_files

    from .signals import STOP, exit_code, signal_name
    if out_dir is None:
        raise click.UsageError(f"{len(data_files)} files ({', '.join(data_files[:3])}"
                               f"{' ...' if len(data_files) > 3 else ''}) need --out-dir "
                               "(each file's predictions go to <out-dir>/<name>.csv)")
    if out_file is not None:
        raise click.UsageError("give --out (one file) or --out-dir (many), not both")
    if "-" in data_files:
        raise click.UsageError("standard input (-) is one stream; predict it alone with --out")
    given = {k: v for k, v in fmt_opts.items() if v is not None}
    fmt = None
    if given:
        from mlpfast import tabular
        fmt = csv_format(fmt_opts, tabular.load(model).schema.csv)
    STOP.deferred = STOP.progressed = True  # a signal leaves the files not started
    failed = []

    def report(entry, done, total):
        for text in entry.get("notes", ()):
            click.echo(f"note: {text}", err=True)
        if entry["status"] == "failed":
            failed.append(entry)
            click.echo(f"failed: {entry['error']}", err=True)

    with notes_to_stderr():
        try:
            results = predict_files(model, list(data_files), out_dir, proba=proba, csv=fmt,
                                    force=force, scheduler=scheduler, workers=workers,
                                    callback=report, stop=STOP)
        except KeyboardInterrupt as exc:  # while connecting: nothing was written
            click.echo(f"Interrupted ({signal_name(exc)}); nothing was written.", err=True)
            sys.exit(exit_code(exc))
    written = [r for r in results if r["status"] == "written"]
    if STOP.is_set():
        click.echo(f"Interrupted ({signal_name(None)}): wrote {len(written)} of {len(results)} "
                   f"files to {out_dir} (each complete); the rest were not started", err=True)
        sys.exit(exit_code(None))
    files = "file" if len(written) == 1 else "files"
    click.echo(f"wrote {len(written)} {files} ({sum(r['rows'] for r in written):,} rows) to "
               f"{out_dir}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} files failed (first: "
                                   f"{failed[0]['error']})")


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("--target", help="Target column. [default: the one the model was trained on]")
@click.option("--sample-weight", metavar="COLUMN",
              help="Weigh the metrics by this column's row weights. [default: the model's "
                   "--sample-weight column when DATA has it]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@csv_options(model=True)
def evaluate(model, data_file, target, sample_weight, as_json, **fmt_opts):
    """Score MODEL on a labelled CSV file.

    Classification: loss, accuracy, per-class precision, recall and F1, macro and weighted
    averages, and the confusion matrix. Regression: loss, MSE, MAE and R2. A model trained
    with --sample-weight weighs every metric by that column when DATA has it (and says so);
    support and the confusion matrix are then sums of weights.

    \b
    Examples:
      mlpfast evaluate runs/letters datasets/letter-recognition.csv
      mlpfast evaluate runs/letters test.csv --json | jq .accuracy
      mlpfast evaluate runs/claims test.csv --sample-weight exposure
    """
    from mlpfast import tabular
    run = tabular.load(model)
    with notes_to_stderr():
        result = run.evaluate(data_file, target=target, csv=csv_format(fmt_opts, run.schema.csv),
                              sample_weight=sample_weight)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(_report(result))


def _report(r):
    by = r.get("sample_weight")
    head = (f"weighted by column {by!r} (total weight {r['weight_sum']:.6g} in {r['rows']} rows)\n"
            if by else "")
    if r["task"] == "regression":
        return (f"{head}rows {r['rows']}\nloss {r['loss']:.6g}\nmse  {r['mse']:.6g}\n"
                f"mae  {r['mae']:.6g}\nr2   {r['r2']:.6f}")
    width = max(12, max(len(lab) for lab in r["labels"]) + 2)
    count = (lambda v: f"{v:>10.6g}") if by else (lambda v: f"{v:>10d}")  # noqa: E731
    lines = [f"{head}rows {r['rows']}   loss {r['loss']:.4f}   accuracy {r['accuracy']:.4f}", "",
             f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for lab, m in r["per_class"].items():
        lines.append(f"{lab:<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                     f"{m['f1']:>10.4f}{count(m['support'])}")
    for avg in ("macro", "weighted"):
        m = r[avg]
        lines.append(f"{avg + ' avg':<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                     f"{m['f1']:>10.4f}{count(r['weight_sum'] if by else r['rows'])}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)" +
              (" in sums of weights" if by else "")]
    if by:
        r = dict(r, confusion_matrix=[[f"{v:.6g}" for v in row] for row in r["confusion_matrix"]])
    cw = max(5, max(len(lab) for lab in r["labels"]) + 1,
             max(len(str(v)) for row in r["confusion_matrix"] for v in row) + 1)
    lines.append(" " * width + "".join(f"{lab:>{cw}}" for lab in r["labels"]))
    for lab, row in zip(r["labels"], r["confusion_matrix"]):
        lines.append(f"{lab:<{width}}" + "".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


__all__ = ["predict", "evaluate"]
