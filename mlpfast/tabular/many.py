"""Predictions for many CSV files at once: one task per file on dask.distributed (the sweep's
executor, mlpfast.cluster), each file streamed block by block as `predict` streams one, so a
worker's memory is bounded by a block, not a file."""
import glob as globmod
import os
import time

from ..errors import DataError, MLPFastError, one_line

# compressed files are predicted into plain CSV: a.csv.gz -> a.csv
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip")


def data_files(patterns):
    """The files of a list of paths and globs, sorted within each glob, each once. DataError
    for a glob that matches no file, or a path that does not exist."""
    out = []
    for pattern in [patterns] if isinstance(patterns, (str, os.PathLike)) else patterns:
        pattern = os.path.expanduser(os.fspath(pattern))
        found = sorted(globmod.glob(pattern)) if globmod.has_magic(pattern) else [pattern]
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            what = "matches no file" if globmod.has_magic(pattern) else "is not a file"
            raise DataError(f"{pattern} {what}")
        out += [os.path.abspath(f) for f in found if os.path.abspath(f) not in out]
    return out


def output_name(path):
    """The predictions' file name for data file `path`: its name, as .csv (a.csv.gz -> a.csv,
    b.tsv -> b.csv)."""
    name = os.path.basename(path)
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    stem, ext = os.path.splitext(name)
    return (stem if ext.lower() in (".csv", ".tsv", ".txt") else name) + ".csv"


def predict_files(model, data, out_dir, *, proba=False, csv=None, force=False, client=None,
                  scheduler=None, workers=None, callback=None, stop=None):
    """Predict every file of `data` (paths and globs) with `model` (a run folder or its
    model.npz) into out_dir/<file name>.csv, one task per file on dask.distributed: `client`,
    else `scheduler` (an address), else a LocalCluster of `workers` processes
    (mlpfast.cluster.executor). Each output is as `predict --out` writes it (column
    `prediction`, with proba `proba_<class>`), replaced only when complete.

    Returns a list of {'data', 'out', 'rows', 'status' ('written', 'failed', 'not started'),
    'error'} in the order of the files. A file that cannot be predicted is its entry's
    one-line error; the others go on. callback(entry, done, total) as each ends. stop: an
    object with is_set(): files not started are left once it is set.

    Raises DataError, before any work, for no files, two files whose outputs would share a
    name, an output that would be one of the inputs, an output file that exists already
    (unless force: then it is replaced, once its new version is complete), or an out_dir
    that cannot be made;
    ModelFileError for the model; ClusterError when dask is missing or the scheduler cannot
    be reached."""
    from ..cluster import executor, require_dask, task_started
    from .run import load
    require_dask("predicting many files")
    files = data_files(data)
    load(model)  # a missing or damaged model fails here, once, not once per file
    outs = [os.path.join(os.path.abspath(out_dir), output_name(f)) for f in files]
    seen = {}
    for f, o in zip(files, outs):
        if o in seen:
            raise DataError(f"{seen[o]} and {f} would both be predicted into {o}; predict them "
                            "into separate --out-dir folders")
        seen[o] = f
        if os.path.exists(o) and os.path.samefile(o, f):
            raise DataError(f"--out-dir {out_dir} would replace the input {f}; write the "
                            "predictions elsewhere")
    taken = [o for o in outs if os.path.lexists(o)]
    if taken and not force:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise DataError(f"{taken[0]}{more} exist(s) already; pass --force to replace them, or "
                        "name another --out-dir")
    for o in taken:
        if os.path.isdir(o):
            raise DataError(f"{o} is a folder; the predictions of "
                            f"{seen[o]} cannot be written there")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DataError(f"--out-dir {out_dir} is a file; name a folder")
    model = os.path.abspath(model)
    results = [{"data": f, "out": o, "rows": None, "status": "not started", "error": ""}
               for f, o in zip(files, outs)]
    with executor(client, scheduler, workers, tasks=len(files), stop=stop) as (cl, _):
        try:  # once the executor runs: a failure to connect leaves no empty folder behind
            os.makedirs(out_dir, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot make --out-dir {out_dir}: {exc.strerror}") from None
        futures = {cl.submit(predict_one, model, f, o, proba, csv, pure=False,
                             key=f"mlpfast-predict-{k}-{time.time_ns()}"): k
                   for k, (f, o) in enumerate(zip(files, outs))}
        done, stopping = 0, False
        import distributed
        pending = distributed.as_completed(list(futures))
        for fut in pending:
            k = futures[fut]
            if fut.status == "finished":
                results[k].update(fut.result())
            elif fut.status != "cancelled":
                results[k].update(status="failed",
                                  error=_naming(files[k], one_line(fut.exception())))
            done += 1
            if callback is not None:
                callback(results[k], done, len(files))
            if stop is not None and stop.is_set() and not stopping:
                stopping = True
                for other in futures:  # those a worker has are let finish (and counted)
                    if not other.done() and not task_started(cl, other):
                        other.cancel()
    return results


_MODELS = {}


def predict_one(model, data, out, proba=False, csv=None):
    """Predict one file into `out` (run on a worker); the model loaded once per worker (and
    again when its file changes). Never raises for the file's own failure: returns
    {'rows', 'status', 'error'}."""
    from .output import text_output
    from .run import load
    import warnings
    try:
        path = os.path.join(model, "model.npz") if os.path.isdir(model) else model
        key = (path, os.stat(path).st_mtime_ns)
        if key not in _MODELS:
            _MODELS.clear()
            _MODELS[key] = load(model)
        run = _MODELS[key]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with text_output(out, inputs=(data, path)) as stream:
                rows = _Counting(stream)
                run.predict_csv(data, rows, proba=proba, csv=csv)
        notes = [str(w.message) for w in caught if w.category.__name__ == "DataNote"]
        return {"rows": rows.lines - 1, "status": "written", "error": "", "notes": notes}
    except (MLPFastError, ValueError, OSError, MemoryError) as exc:
        return {"rows": None, "status": "failed", "error": _naming(data, one_line(exc))}
    except Exception as exc:  # noqa: BLE001 (a bug is a failed file, never a lost one)
        return {"rows": None, "status": "failed",
                "error": _naming(data, f"{type(exc).__name__}: {one_line(exc)}")}


def _naming(data, error):
    """The error as one line that names the data file (once)."""
    return error if data in error else f"{data}: {error}"


class _Counting:
    """A text stream that counts the lines written through it."""

    def __init__(self, stream):
        self.stream, self.lines = stream, 0

    def write(self, text):
        self.lines += text.count("\n")
        return self.stream.write(text)


