"""`mlpfast predict` and `mlpfast evaluate`: a saved model applied to a raw CSV file."""
import csv
import io
import json
import sys

import click
import numpy as np

from mlpfast import data, metrics
from mlpfast.errors import DataError
from mlpfast.model_io import atomic_write, load_model

from .common import csv_options, warnings_to_stderr
from .main import cli

CHUNK_ROWS = 50_000


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("--out", "out_file", type=click.Path(dir_okay=False),
              help="CSV file to write. [default: stdout]")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@csv_options
def predict(model, data_file, out_file, proba, sep, encoding):
    """Predict every row of DATA with MODEL (a run folder or its model.npz).

    Writes one row per input row, in order: the predicted label (column `prediction`) and,
    with --proba, `proba_<class>` columns. The preprocessing saved in the model is applied to
    the raw CSV; columns the model does not use (the target among them) are ignored.

    \b
    Examples:
      mlpfast predict runs/letters datasets/letter-recognition.csv --proba --out pred.csv
      mlpfast predict runs/letters/model.npz new.csv | head
    """
    est, pre, _ = load_model(model)
    if proba and pre.task != "classification":
        raise DataError("--proba needs a classification model; this one does regression")
    header = ["prediction"]
    if proba:
        header += [f"proba_{c}" for c in pre.classes]

    def write(stream):
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(header)
        for chunk in data.read_csv(data_file, sep=sep, encoding=encoding, chunksize=CHUNK_ROWS):
            if len(chunk) == 0:
                continue
            X = pre.transform(chunk, name=data_file)
            if pre.task == "classification":
                P = est.predict_proba(X)
                labels = pre.classes[np.argmax(P, axis=1)]
                rows = [[lab] + ([f"{p:.6g}" for p in row] if proba else [])
                        for lab, row in zip(labels, P)]
            else:
                pred = np.asarray(est.predict(X)).reshape(len(X), -1)
                rows = [[f"{v:.8g}" for v in row] if pred.shape[1] > 1 else [f"{row[0]:.8g}"]
                        for row in pred]
            w.writerows(rows)

    with warnings_to_stderr():
        if out_file:
            atomic_write(out_file, lambda f: _text(f, write))
        else:
            write(sys.stdout)


def _text(binary, write):
    stream = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    write(stream)
    stream.flush()
    stream.detach()


@cli.command()
@click.argument("model", type=click.Path())
@click.argument("data_file", metavar="DATA", type=click.Path(dir_okay=False))
@click.option("--target", help="Target column. [default: the one the model was trained on]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@csv_options
def evaluate(model, data_file, target, as_json, sep, encoding):
    """Score MODEL on a labelled CSV file.

    Classification: loss, accuracy, per-class precision, recall and F1, macro and weighted
    averages, and the confusion matrix. Regression: loss, MSE, MAE and R2.

    \b
    Examples:
      mlpfast evaluate runs/letters datasets/letter-recognition.csv
      mlpfast evaluate runs/letters test.csv --json | jq .accuracy
    """
    est, pre, _ = load_model(model)
    frame = data.read_csv(data_file, sep=sep, encoding=encoding)
    if target and target != pre.target:
        frame = frame.rename(columns={target: pre.target})
    with warnings_to_stderr():
        result = evaluate_frame(est, pre, frame, data_file)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(_report(result))


def evaluate_frame(est, pre, frame, name):
    """Metrics of a fitted estimator on a raw labelled DataFrame, as a JSON-able dict."""
    if pre.target not in frame.columns:
        raise DataError(f"{name}: no target column {pre.target!r}; columns are "
                        f"{list(frame.columns)} (pass --target)")
    X = pre.transform(frame, name=name)
    y = pre.encode_target(frame[pre.target], name=name)
    if pre.task == "regression":
        pred = est.predict(X)
        return {"task": "regression", "rows": len(X), "loss": metrics.squared_loss(pred, y),
                "mse": metrics.mse(y, pred), "mae": metrics.mae(y, pred), "r2": metrics.r2(y, pred)}
    P = est.predict_proba(X)
    pred = np.argmax(P, axis=1)
    cm = metrics.confusion_matrix(y, pred, len(pre.classes))
    rep = metrics.classification_report(cm)
    labels = [str(c) for c in pre.classes]
    return {
        "task": "classification", "rows": len(X), "loss": metrics.log_loss(P, y),
        "accuracy": metrics.accuracy(y, pred), "labels": labels,
        "per_class": {lab: {"precision": float(rep["precision"][k]), "recall": float(rep["recall"][k]),
                            "f1": float(rep["f1"][k]), "support": int(rep["support"][k])}
                      for k, lab in enumerate(labels)},
        "macro": rep["macro"], "weighted": rep["weighted"],
        "confusion_matrix": cm.tolist(),
    }


def _report(r):
    if r["task"] == "regression":
        return (f"rows {r['rows']}\nloss {r['loss']:.6g}\nmse  {r['mse']:.6g}\n"
                f"mae  {r['mae']:.6g}\nr2   {r['r2']:.6f}")
    width = max(12, max(len(lab) for lab in r["labels"]) + 2)
    lines = [f"rows {r['rows']}   loss {r['loss']:.4f}   accuracy {r['accuracy']:.4f}", "",
             f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for lab, m in r["per_class"].items():
        lines.append(f"{lab:<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                     f"{m['f1']:>10.4f}{m['support']:>10d}")
    for avg in ("macro", "weighted"):
        m = r[avg]
        lines.append(f"{avg + ' avg':<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}"
                     f"{m['f1']:>10.4f}{r['rows']:>10d}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    cw = max(5, max(len(lab) for lab in r["labels"]) + 1,
             max(len(str(v)) for row in r["confusion_matrix"] for v in row) + 1)
    lines.append(" " * width + "".join(f"{lab:>{cw}}" for lab in r["labels"]))
    for lab, row in zip(r["labels"], r["confusion_matrix"]):
        lines.append(f"{lab:<{width}}" + "".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


__all__ = ["predict", "evaluate", "evaluate_frame"]
