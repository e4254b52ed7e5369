"""The run folder: model.npz, metrics.csv and run.json, each written atomically."""
import csv
import io
import json
import os

import numpy as np

from ..errors import DataError
from ..model_io import atomic_write, save_model
from .run import metric_columns, metric_row


def write_run(run, folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the run folder {folder}: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise DataError(f"cannot write to the run folder {folder}")
    stopped = run.interrupted is not None or run.diverged is not None
    theta = run.best_theta if stopped and run.best_theta is not None else None
    save_model(os.path.join(folder, "model.npz"), run.estimator, run.schema, theta=theta,
               meta=run.meta)
    write_text(os.path.join(folder, "metrics.csv"), metrics_csv(run.history, run.task))
    write_json(os.path.join(folder, "run.json"), run.summary)


def metrics_csv(history, task):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(metric_columns(task))
    for r in history:
        w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
                    for v in metric_row(r, task).values()])
    return buf.getvalue()


def write_text(path, text):
    """Write UTF-8 text atomically (a temporary file renamed into place)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
