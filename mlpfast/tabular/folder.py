"""The run folder: model.npz, metrics.csv and run.json, written as one unit, under a lock."""
import contextlib
import csv
import fcntl
import io
import json
import os
import shutil
import tempfile
import time

import numpy as np

from ..errors import DataError
from ..model_io import _umask, atomic_write, save_model
from .run import metric_columns, metric_row


FILES = ("model.npz", "metrics.csv", "run.json")


def check_target(folder, force=False):
    """Refuse, before any work, a run folder that already holds something (unless force) or
    cannot be made where it is asked for."""
    folder = _resolve(folder)
    if os.path.exists(folder):
        if not os.path.isdir(folder):
            raise DataError(f"the run folder {folder} is a file; name a folder")
        if os.listdir(folder) and not force:
            raise DataError(f"the run folder {folder} already holds files; pass --force to "
                            "replace it, or name another --out")
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.exists(parent) and not os.access(parent, os.W_OK):
        raise DataError(f"cannot write in {parent} (permission denied)")


def write_run(run, folder, force=False):
    """Write model.npz, metrics.csv and run.json as one unit: into a hidden folder beside
    `folder`, renamed onto it once all three are complete, so that a reader (or a crash) sees
    the old folder or the new one, never a mix. An existing folder holding files is replaced
    only with force."""
    folder = _resolve(folder)
    check_target(folder, force)
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(folder)}.tmp-")
    except OSError as exc:
        raise DataError(f"cannot create the run folder {folder}: {exc.strerror}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        stopped = run.interrupted is not None or run.diverged is not None
        theta = run.best_theta if stopped and run.best_theta is not None else None
        # the fault-injection tests widen the window between the writes with this
        pause = float(os.environ.get("MLPFAST_TEST_WRITE_PAUSE", "0") or 0)
        save_model(os.path.join(tmp, "model.npz"), run.estimator, run.schema, theta=theta,
                   meta=run.meta)
        time.sleep(pause)
        write_text(os.path.join(tmp, "metrics.csv"), metrics_csv(run.history, run.task))
        time.sleep(pause)
        write_json(os.path.join(tmp, "run.json"), run.summary)
        if run.checkpoint is not None:
            atomic_write(os.path.join(tmp, "checkpoint.npz"),
                         lambda f: np.savez(f, **run.checkpoint))
        time.sleep(pause)
        _swap_into_place(tmp, folder)
    except OSError as exc:
        raise DataError(f"cannot write the run folder {folder}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp, folder):
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)
    if not os.path.exists(folder):
        os.rename(tmp, folder)
        return
    old = tempfile.mkdtemp(dir=os.path.dirname(folder), prefix=f".{os.path.basename(folder)}.old-")
    os.rmdir(old)
    os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def lock(folder):
    """Hold an exclusive lock on `folder`'s name (a hidden file beside it, left in place: a
    file removed while another process waits on it would let two in) for a whole training
    run, so that a second process aiming at the same folder fails at once."""
    folder = _resolve(folder)
    parent = os.path.dirname(folder)
    path = os.path.join(parent, f".{os.path.basename(folder)}.lock")
    try:
        os.makedirs(parent, exist_ok=True)
        f = open(path, "a")
    except OSError as exc:
        raise DataError(f"cannot make the run folder {folder}: {exc.strerror}") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(f"another mlpfast process is writing the run folder {folder}; "
                            "wait for it, or name another --out") from None
        recover(folder)  # we hold the name: what a killed writer left can be settled
        yield


def _resolve(folder):
    """The folder's real path (a symlink to a folder is written through to its target)."""
    return os.path.realpath(os.path.abspath(os.fspath(folder)))


def recover(folder):
    """Settle what a writer killed mid-swap left beside `folder`: with the folder gone, its
    complete new version (.tmp-, all files written) or else its previous one (.old-) is put
    back; the rest is removed. Call with the folder's lock held."""
    parent, name = os.path.dirname(folder), os.path.basename(folder)
    if not os.path.isdir(parent):
        return
    siblings = sorted(os.path.join(parent, e) for e in os.listdir(parent)
                      if e.startswith((f".{name}.tmp-", f".{name}.old-")))
    if not os.path.exists(folder):
        new = [p for p in siblings if ".tmp-" in os.path.basename(p) and _complete(p)]
        old = [p for p in siblings if ".old-" in os.path.basename(p) and _complete(p)]
        for candidate in new[:1] or old[:1]:
            os.rename(candidate, folder)
            siblings.remove(candidate)
    for p in siblings:
        shutil.rmtree(p, ignore_errors=True)


def _complete(path):
    return all(os.path.exists(os.path.join(path, f)) for f in FILES)


def read_checkpoint(folder):
    """(run.json as a dict, the estimator's checkpoint arrays, the watch's arrays) of a run
    folder that can be resumed; DataError says why one cannot."""
    from ..model_io import check_sizes
    path = os.path.join(folder, "checkpoint.npz")
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such run folder")
    try:
        with open(os.path.join(folder, "run.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError):
        raise DataError(f"{folder}: no readable run.json; not a run folder") from None
    needed = ("config", "data", "status")
    if not isinstance(summary, dict) or any(not summary.get(k) for k in needed) or not all(
            k in summary["config"] for k in ("sep", "encoding", "decimal", "thousands", "seed")):
        raise DataError(f"{folder}: its run.json is damaged; start a new run")
    if not os.path.exists(path):
        raise DataError(f"{folder}: holds no checkpoint.npz to resume from")
    if summary.get("status") == "finished":
        raise DataError(f"{folder}: the run finished (epoch {summary.get('epochs_run')}); "
                        "there is nothing to resume")
    try:
        check_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 (any damage is one line)
        raise DataError(f"{path}: the checkpoint is damaged ({exc})") from None
    watch = {k: arrays.pop(k) for k in ("watch_theta", "watch_score") if k in arrays}
    return summary, arrays, watch


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
