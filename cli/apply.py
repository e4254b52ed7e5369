"""`mlpfast predict` and `mlpfast evaluate`: a saved model applied to a raw CSV file, through
mlpfast.tabular's Run (the same reader and stored schema as training)."""
import json
import os

import click

from .common import csv_format, csv_options, notes_to_stderr
from .main import cli


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("--out", "out_file", type=click.Path(),
              help="CSV file to write, replaced only when complete; - or a device such as "
                   "/dev/null is written through. [default: stdout, written once complete]")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@csv_options(model=True)
def predict(model, data_file, out_file, proba, **fmt_opts):
    """Predict every row of DATA with MODEL (a run folder or its model.npz).

    Writes one row per input row, in order: the predicted label (column `prediction`) and,
    with --proba, `proba_<class>` columns. DATA (a file, or - for standard input) is read in
    blocks by the schema stored in the model, exactly as training read its file; columns the
    model does not use (the target and a --sample-weight column among them) are ignored.

    \b
    Examples:
      mlpfast predict runs/letters datasets/letter-recognition.csv --proba --out pred.csv
      mlpfast predict runs/letters/model.npz new.csv | head
    """
    from mlpfast import tabular
    from mlpfast.tabular.output import text_output
    run = tabular.load(model)
    fmt = csv_format(fmt_opts, run.schema.csv)
    model_file = os.path.join(model, "model.npz") if os.path.isdir(model) else model
    with notes_to_stderr(), text_output(out_file, inputs=(data_file, model_file)) as stream:
        run.predict_csv(data_file, stream, proba=proba, csv=fmt)


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
