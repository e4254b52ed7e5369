"""A trained model with its schema: `Run.predict(...)`, `Run.evaluate(...)`, `load(folder)`.

A Run applies the stored schema to any CSV file or DataFrame, block by block with bounded
memory, exactly as training encoded its own rows; training itself is mlpfast.tabular.flow.
"""
import datetime
import itertools
import json
import os
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import metrics
from ..errors import DataError, DataNote
from .learn import encoded_blocks
from .reader import CSVFormat, Source, Table
from .schema import Encoder


PREDICT_BLOCK_ROWS = 50_000


def note(message):
    warnings.warn(message, DataNote, stacklevel=3)


class Run:
    """A trained model with its schema: predicts and scores raw CSV files or DataFrames.

    Attributes: estimator (MLPClassifier / MLPRegressor), schema, history (one dict per epoch),
    summary (what run.json holds), interrupted, folder (where it was saved or loaded from).
    """

    def __init__(self, estimator, schema, meta=None, history=(), summary=None, folder=None):
        self.estimator, self.schema = estimator, schema
        self.meta = meta or {}
        self.history = list(history)
        self.summary = summary or {}
        self.folder = folder
        self.interrupted = None    # the KeyboardInterrupt that stopped training, if one did
        self.checkpoint = None     # the fit's state (Estimator.checkpoint()), saved with the run
        self.diverged = None       # the DivergenceError that stopped training, if one did
        self.best_theta = None

    @property
    def task(self):
        return self.schema.task

    @property
    def classes(self):
        """Class labels as values (numbers stay numbers), or None for regression."""
        return None if self.schema.classes is None else self.schema.label_values()

    # ---- applying the model

    def transform(self, data, csv=None):
        """The float feature matrix (rows x n_features) of a CSV file or DataFrame, encoded by
        the stored schema exactly as training encoded its own rows. `csv` (a CSVFormat) says
        how the file is written; by default, as the training file was (every method here)."""
        blocks = [X for X, *_ in self._blocks(data, csv)]
        return np.concatenate(blocks) if blocks else np.empty((0, self.schema.n_features))

    def predict(self, data, csv=None):
        """Predicted labels (classification; as values) or targets in their own units."""
        out = [self._predict_block(X)[0] for X, *_ in self._blocks(data, csv)]
        return np.concatenate(out) if out else np.empty(0)

    def predict_proba(self, data, csv=None):
        """Class probabilities (rows x classes, columns in the order of `classes`)."""
        self._need_classifier("predict_proba")
        out = [self.estimator.predict_proba(X) for X, *_ in self._blocks(data, csv)]
        return np.concatenate(out)

    def predict_csv(self, data, stream, proba=False, csv=None):
        """Write predictions as CSV text to `stream` (a text file object), block by block with
        bounded memory: column `prediction` and, with proba, `proba_<class>`."""
        import csv as csvmod
        if proba:
            self._need_classifier("proba")
        w = csvmod.writer(stream, lineterminator="\n")
        header = ["prediction"] + ([f"proba_{c}" for c in self.schema.classes] if proba else [])
        blocks = self._blocks(data, csv)
        # nothing is written before the first block has been read and encoded: a file refused
        # at its start leaves no header behind
        first = next(blocks, None)
        w.writerow(header)
        if first is None:
            return
        for X, *_ in itertools.chain([first], blocks):
            labels, P = self._predict_block(X)
            if self.task == "classification":
                shown = np.array(self.schema.classes, dtype=object)[np.argmax(P, axis=1)]
                w.writerows([[lab] + ([f"{p:.6g}" for p in row] if proba else [])
                             for lab, row in zip(shown, P)])
            else:
                w.writerows([[f"{v:.8g}"] for v in labels])

    def evaluate(self, data, target=None, csv=None, sample_weight=None):
        """Metrics on a labelled CSV file or DataFrame, streamed with bounded memory:
        classification: loss, accuracy, per-class precision/recall/F1, confusion matrix;
        regression: loss, mse, mae, r2, in the target's units.

        sample_weight: the column whose row weights weigh every metric (as scikit-learn's
        sample_weight does: support and the confusion matrix become sums of weights); by
        default the model's weight column (training's sample_weight) when the data has it,
        else unweighted (a note says so when the model has one); False: unweighted. The
        result's 'sample_weight' names the column used (None: unweighted) and 'weight_sum'
        the total weight."""
        sc = self.schema
        if sample_weight is None:
            weight, optional = sc.weight, True
        elif sample_weight is False:
            weight, optional = None, False
        else:
            weight, optional = str(sample_weight), False
        acc = _Scores(self.task, len(sc.classes) if sc.classes else 0)
        for X, y, w, _ in self._blocks(data, csv, target=target or sc.target, weight=weight,
                                       optional=optional):
            if self.task == "classification":
                acc.add_classes(self.estimator.predict_proba(X), y, w)
            else:
                acc.add_values(self._predict_block(X)[0], y, w)
        name = _name_of(data)
        if acc.rows == 0:
            raise DataError(f"{name}: has a header but no data rows to evaluate")
        if acc.weighted and not acc.total > 0:
            raise DataError(f"{name}: weight column {weight!r} is 0 in every row, so weighted "
                            "metrics are undefined")
        if weight is not None and not acc.weighted:
            note(f"{name}: no weight column {weight!r} (the model was trained with "
                 f"--sample-weight {weight}): the metrics are unweighted")
        result = acc.result(sc.classes)
        result["sample_weight"] = weight if acc.weighted else None
        result["weight_sum"] = acc.total
        return result

    def _need_classifier(self, what):
        if self.task != "classification":
            raise DataError(f"{what} needs a classification model; this one does regression")

    def _predict_block(self, X):
        if self.task == "classification":
            P = self.estimator.predict_proba(X)
            return self.classes[np.argmax(P, axis=1)], P
        pred = np.asarray(self.estimator.predict(X), np.float64).reshape(len(X))
        return pred * self.schema.target_scale + self.schema.target_center, None

    def _blocks(self, data, csv, target=None, weight=None, optional=False):
        """(X, y or None, w or None, first_row) blocks of a file or DataFrame, encoded by the
        schema; w from the column `weight` (see learn.encoded_blocks for `optional`)."""
        sc = self.schema
        dtype = _model_dtype(self.estimator)
        if isinstance(data, pd.DataFrame):
            yield from _frame_blocks(data, sc, dtype, target, weight, optional)
            return
        fmt = csv or sc.csv
        with Source(data) as src:
            with Table(src, fmt) as table:
                where = ((lambda r: f"line {table.line_of_row(r)}") if src.regular
                         else (lambda r: f"data row {r + 1}"))
                enc = Encoder(sc, fmt, src.name, where, dtype)
                for first, X, y, w in encoded_blocks(table, enc, target, " (pass --target)",
                                                     weight, optional):
                    yield X, y, w, first
            for text in enc.notes():
                note(text)

    # ---- the run folder

    def save(self, folder, force=False):
        """Write model.npz, metrics.csv and run.json into `folder` as one unit (see
        folder.write_run); a folder that holds files is replaced only with force. Returns the
        Run."""
        from .folder import write_run
        write_run(self, folder, force)
        self.folder = folder
        return self


def _name_of(data):
    return "DataFrame" if isinstance(data, pd.DataFrame) else ("<stdin>" if data == "-" else str(data))


def _model_dtype(est):
    return np.dtype(est._theta.dtype)


def _frame_blocks(frame, schema, dtype, target, weight=None, optional=False):
    enc = Encoder(schema, CSVFormat(), "DataFrame", lambda r: f"row {frame.index[r]!r}", dtype)
    names = [str(c) for c in frame.columns]
    enc.check_columns(names)
    if target is not None and target not in names:
        raise DataError(f"DataFrame: no target column {target!r}")
    if weight is not None and weight not in names:
        if not optional:
            raise DataError(f"DataFrame: no weight column {weight!r}; columns are {names[:20]}")
        weight = None
    for first in range(0, max(len(frame), 1), PREDICT_BLOCK_ROWS):
        part = frame.iloc[first:first + PREDICT_BLOCK_ROWS]
        if len(part) == 0:
            break
        cols = {str(c): _as_text(part[c]) for c in frame.columns
                if str(c) in schema.names or str(c) in (target, weight)}
        X = np.empty((len(part), schema.n_features), dtype)
        enc.encode(first, cols, X)
        y = enc.target(first, cols[target]) if target is not None else None
        w = enc.weights(first, cols[weight], weight) if weight is not None else None
        yield X, y, w, first
    for text in enc.notes():
        note(text)


def _as_text(series):
    """A DataFrame column as the text a CSV file would hold (missing values as nulls)."""
    values = series.astype(object).to_numpy()
    missing = pd.isna(values)
    out = []
    for v, m in zip(values, missing):
        if m:
            out.append(None)
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, (bool, np.bool_)):
            out.append("true" if v else "false")
        elif isinstance(v, (float, np.floating)):
            out.append(repr(float(v)))
        elif isinstance(v, (pd.Timestamp, datetime.datetime, np.datetime64)):
            out.append(pd.Timestamp(v).isoformat())
        else:
            out.append(str(v))
    return pa.array(out, pa.string())


class _Scores:
    """Running sums for evaluate: the whole file is never held at once. With row weights
    every sum is weighted (the confusion matrix too: sums of weights, as scikit-learn's)."""

    def __init__(self, task, n_classes):
        self.task, self.rows = task, 0
        self.total = 0.0           # the sum of the weights (the row count when unweighted)
        self.weighted = False
        self.cm = np.zeros((n_classes, n_classes), np.int64)
        self.log_loss = 0.0
        self.sse = self.sae = 0.0
        self.y_sum = self.y_sq = 0.0

    def _weighted(self):
        if not self.weighted:
            self.weighted = True
            self.cm = self.cm.astype(np.float64)

    def add_classes(self, P, y, w=None):
        self.rows += len(y)
        if w is None:
            np.add.at(self.cm, (y, np.argmax(P, axis=1)), 1)
            self.log_loss += metrics.log_loss(P, y) * len(y)
            self.total += len(y)
            return
        self._weighted()
        np.add.at(self.cm, (y, np.argmax(P, axis=1)), w)
        p = np.asarray(P, np.float64)[np.arange(len(y)), y]
        self.log_loss += float(-np.log(np.clip(p, 1e-300, None)) @ w)
        self.total += float(w.sum())

    def add_values(self, pred, y, w=None):
        self.rows += len(y)
        d = pred - y
        if w is None:
            self.sse += float(d @ d)
            self.sae += float(np.abs(d).sum())
            self.y_sum += float(y.sum())
            self.y_sq += float(y @ y)
            self.total += len(y)
            return
        self._weighted()
        self.sse += float((d * d) @ w)
        self.sae += float(np.abs(d) @ w)
        self.y_sum += float(y @ w)
        self.y_sq += float((y * y) @ w)
        self.total += float(w.sum())

    def result(self, labels):
        sums = np.array([self.total, self.sse, self.sae, self.y_sum, self.y_sq, self.log_loss],
                        np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            square = sums[3] ** 2 / max(sums[0], 1.0)
        if not np.isfinite(sums).all() or (self.task == "regression" and not np.isfinite(square)):
            raise DataError("the weighted sums of the metrics overflow float64: the weights "
                            "(or the targets) are too large; scale the weight column down")
        n = float(self.total) if self.total > 0 else 1.0
        if self.task == "regression":
            ss_tot = self.y_sq - self.y_sum ** 2 / n
            r2 = 1.0 - self.sse / ss_tot if ss_tot > 0 else (1.0 if self.sse == 0 else 0.0)
            return {"task": "regression", "rows": self.rows, "loss": 0.5 * self.sse / n,
                    "mse": self.sse / n, "mae": self.sae / n, "r2": r2}
        rep = metrics.classification_report(self.cm)
        labels = [str(c) for c in labels]
        return {
            "task": "classification", "rows": self.rows, "loss": self.log_loss / n,
            "accuracy": float(np.trace(self.cm) / n), "labels": labels,
            "per_class": {lab: {"precision": float(rep["precision"][k]),
                                "recall": float(rep["recall"][k]), "f1": float(rep["f1"][k]),
                                "support": (float(rep["support"][k]) if self.weighted
                                            else int(rep["support"][k]))}
                          for k, lab in enumerate(labels)},
            "macro": rep["macro"], "weighted": rep["weighted"],
            "confusion_matrix": self.cm.tolist(),
        }


def best_record(history):
    if not history:
        return None
    if "val_score" in history[0]:
        finite = [r for r in history if np.isfinite(r["val_score"])]
        return max(finite, key=lambda r: r["val_score"]) if finite else history[-1]
    return min(history, key=lambda r: r["train_loss"])


def metric_columns(task):
    if task == "classification":
        return ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                "learning_rate", "epoch_seconds", "samples_per_second"]
    return ["epoch", "train_loss", "val_loss", "val_r2", "learning_rate", "epoch_seconds",
            "samples_per_second"]


def metric_row(r, task):
    named = dict(r)
    if "val_score" in r:
        named["val_accuracy" if task == "classification" else "val_r2"] = r["val_score"]
    return {k: named.get(k) for k in metric_columns(task)}


def _settle(path):
    """A run folder whose writer was killed between the two renames of its swap is missing,
    with its old and new versions beside it: put one back (see folder.recover)."""
    from .folder import lock
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.dirname(path), os.path.basename(path)
    if os.path.exists(path) or not os.path.isdir(parent) or not any(
            e.startswith((f".{name}.tmp-", f".{name}.old-")) for e in os.listdir(parent)):
        return
    try:
        with lock(path):
            pass
    except DataError:
        pass  # its writer is alive: the folder will be back in a moment


def load(path):
    """A Run from a run folder (or its model.npz) written by `train` or `mlpfast train`.

    Raises ModelFileError for a missing, damaged or foreign file."""
    from ..model_io import load_model
    _settle(path)
    est, schema, meta = load_model(path)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    summary = {}
    run_json = os.path.join(folder, "run.json")
    if os.path.exists(run_json):
        try:
            with open(run_json) as f:
                summary = json.load(f)
        except (OSError, ValueError):
            summary = {}
    return Run(est, schema, meta=meta, summary=summary, folder=folder)


__all__ = ["Run", "load"]
