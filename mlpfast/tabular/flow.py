"""Training from a CSV file: `train(path, target=...) -> Run` and `resume(folder)`.

Reads the file twice (learn.py), splits, fits the estimator under a _Watch that keeps the best
weights, checkpoints the run folder and stops at a chunk's end when asked; saves the run folder
(folder.py). Everything the flow drops, imputes or guesses is said through warnings of category
DataNote (the CLI prints them on stderr); everything it cannot use raises DataError naming the
file, column, line or value.
"""
import contextlib
import datetime
import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from .._version import __version__
from ..errors import DataError, DivergenceError, MLPFastError
from ..estimators import MLPClassifier, MLPRegressor
from . import parse
from .learn import allocate, encode_file, finish_numeric, learn_schema
from .reader import CSVFormat, Source
from .run import Run, best_record, metric_row, note
from .scan import Moments
from .split import split

# estimator parameters the flow sets itself
_FLOW_PARAMS = ("random_state",)
# the most of the training time that per-epoch checkpoints may take (benchmarks/checkpoint_cost.py)
SAVE_SHARE = 0.01


def train(data, target=None, *, features=None, drop=None, categorical=(), task=None,
          val_fraction=0.1, val=None, test=None, on_missing="impute", na_values=(),
          default_na=True, max_categories=100, scale_target=True, csv=None, seed=0,
          sample_weight=None, class_weight=None, callback=None, out=None, force=False,
          checkpoint_every=None, stop=None, block_bytes=None, **params):
    """Train an MLP on a CSV file; returns a Run (saved to the folder `out` when given).

    data: a path, '-' for standard input, a pipe, or a DataFrame of raw columns (written as
    CSV text and read back, so it trains as the same file would); gzip/bz2/xz/zip are read.
    target: the target column (default: the last). Column roles are learnt from the whole
    file before the split (see mlpfast.tabular.schema); `val_fraction` of the rows
    (stratified, every class keeping a training row) or the file `val` validates; `test` is
    checked before training and scored after it. `scale_target` standardises a regression
    target (predictions and metrics stay in its units). csv: a CSVFormat (how the file is
    written).
    sample_weight: the column holding each row's weight (scikit-learn's sample_weight: the
    loss is the weighted mean; 2 counts a row twice): numbers, finite and >= 0, never
    imputed; no feature and not the target. Rows of weight 0 are kept (and said). The
    validation rows (split or `val`, which must have the column) carry their weights, so the
    validation loss and score are weighted; the column's name is stored in the model
    (evaluate weighs its metrics by it when a file has it; predict ignores it).
    class_weight (classification): 'balanced' (n_samples / (n_classes * bincount(y)) over
    the training rows) or {label: weight} with labels as the target column writes them
    (matched as the schema matches classes: text stripped, numbers by value); labels not
    named weigh 1. With sample_weight, the two multiply. `out`: the run folder to write (refused before any work when it holds files,
    unless `force`; locked against a second process while training), rewritten whole with a
    checkpoint after every epoch (fewer when epochs are so short that saving would take over
    1 % of the time), or every `checkpoint_every` seconds (see resume()). `stop`: an object
    with is_set() (a threading.Event) that, once set, stops training at the next progress
    chunk as Ctrl-C does, with a state that resumes exactly. `params` are MLPClassifier /
    MLPRegressor parameters (hidden_layer_sizes, max_iter, ...); random_state is `seed`.
    callback(estimator, event) is passed to fit; the flow adds one event before it,
    {'kind': 'data', 'schema', 'train_rows', 'val_rows'}.

    Raises DataError for anything in the files that cannot be used, and DivergenceError when
    the loss turns non-finite (its `run` holds the epochs before, saved to `out` when one
    finished). Ctrl-C (KeyboardInterrupt) or `stop` during fit returns the Run so far with
    `interrupted` set (saved to `out` with its checkpoint); before the first progress chunk
    has run, KeyboardInterrupt propagates.
    """
    options = dict(target=target, features=features, drop=drop, categorical=categorical,
                   task=task, val_fraction=val_fraction, val=val, test=test,
                   on_missing=on_missing, na_values=na_values, default_na=default_na,
                   max_categories=max_categories, scale_target=scale_target, csv=csv, seed=seed,
                   sample_weight=sample_weight, class_weight=class_weight_option(class_weight),
                   callback=callback, block_bytes=block_bytes, stop=stop,
                   checkpoint_every=checkpoint_every, **params)
    if options["class_weight"] is not None and task == "regression":
        raise DataError("--class-weight weighs classes, and --task regression has none; leave "
                        "it out, or weigh rows with --sample-weight")
    if out is None:
        return _finish(_train_frame_or_file(data, options), None, force)
    from .folder import check_target, lock
    check_target(out, force)  # before any work: a taken folder fails in a second, not an hour
    with lock(out):
        return _finish(_train_frame_or_file(data, dict(options, out=out, force=force)), out, force)


def resume(folder, *, callback=None, stop=None, checkpoint_every=None, block_bytes=None,
           option_names=None, **given):
    """Continue the run saved in `folder` (stopped by Ctrl-C, a signal, or killed after a
    checkpoint) from its checkpoint.npz, on its data file, to the end it was set for. The
    data file must be unchanged (its sha256 is checked); `given` options (train's keywords)
    must equal the stored ones, or DataError names the conflicts (in option_names' words,
    e.g. {'max_iter': '--epochs'}). The run ends with weights and per-epoch losses
    bit-identical to a run that never stopped. Returns the Run, saved in `folder`."""
    from .folder import lock
    folder = os.fspath(folder)
    with lock(folder):
        return _resume(folder, callback, stop, checkpoint_every, block_bytes, option_names, given)


def _resume(folder, callback, stop, checkpoint_every, block_bytes, option_names, given):
    from .folder import read_checkpoint
    summary, state, watch = read_checkpoint(folder)
    config = dict(summary["config"])
    for key in ("sample_weight", "class_weight"):  # runs from before these options had none
        config.setdefault(key, None)
    names = option_names or {}
    if "data" in given:
        config["data"] = summary["data"]["file"]
    if "class_weight" in given:
        given["class_weight"] = class_weight_option(given["class_weight"])
    conflicts = [k for k, v in given.items() if k in config and _plain(v) != _plain(config[k])]
    if conflicts:
        shown = ", ".join(f"{names.get(k, k)} {_shown(given[k])} (the run has "
                          f"{_shown(config[k])})" for k in conflicts)
        raise DataError(f"{folder}: options differ from the run's: {shown}; resume with the "
                        "run's options, or start a new run")
    data = summary["data"]
    path, sha = data["file"], data.get("sha256")
    if not path or path in ("<stdin>", "DataFrame") or not os.path.isfile(path):
        raise DataError(f"{folder}: its data {path!r} is not a file that can be read again; "
                        "start a new run")
    if sha is not None and _sha256(path) != sha:
        raise DataError(f"{folder}: {path} changed since the run started (sha256 differs); "
                        "resume needs the same data")
    config.pop("data", None)
    fmt = CSVFormat(config.pop("sep"), config.pop("encoding"), config.pop("decimal"),
                    config.pop("thousands"))
    seed = config.pop("seed")
    config.pop("stop", None)
    run = _train(path, csv=fmt, seed=seed, callback=callback, stop=stop,
                 checkpoint_every=checkpoint_every, block_bytes=block_bytes, out=folder,
                 force=True, resume_state=(state, watch), **config)
    return _finish(run, folder, True)


def _absolute(path):
    """A file option as run.json keeps it: absolute, so that --resume finds it from anywhere."""
    return path if path in (None, "-") else os.path.abspath(path)


def _checkpoint_of(est, watch):
    """The estimator's checkpoint with the watch's best weights, or None for a fit that cannot
    be checkpointed (the CUDA engine keeps no row order on the host)."""
    try:
        return {**est.checkpoint(), **watch.state()}
    except ValueError:
        return None


def _shown(v):
    """An option's value as it is written on the command line."""
    v = _plain(v)
    if isinstance(v, list):
        return ",".join(map(str, v)) or "(none)"
    if isinstance(v, dict):
        return ",".join(f"{k}={w:g}" for k, w in v.items()) or "(none)"
    return "(none)" if v is None else str(v)


def _plain(v):
    """An option as run.json holds it (tuples as lists), for comparing."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _train_frame_or_file(data, options):
    if not isinstance(data, pd.DataFrame):
        if data == "-" and options["val"] == "-":
            raise DataError("standard input can be read once: give the training data or the "
                            "validation file (--val) as -, not both")
        return _train(data, **options)
    # column names become text, as in a CSV header, and so do the options naming them
    for key in ("target", "features", "drop", "categorical", "sample_weight"):
        value = options[key]
        if value is not None and not isinstance(value, str):
            options[key] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        elif isinstance(value, str) and key not in ("target", "sample_weight"):
            options[key] = [value]
    with _frame_as_csv(data) as path:
        run = _train(path, source_name="DataFrame", **options)
    run.meta["data"] = run.summary["data"]["file"] = "DataFrame"
    return run


def _finish(run, out, force):
    """Save the run (when asked) and raise the divergence that stopped it, if one did: the
    epochs before it stand, with their metrics and the best finite weights."""
    if out is not None:
        force = force or run.folder == out  # checkpoints made it this run's own
    if run.diverged is not None:
        run.summary["diverged"] = str(run.diverged)
        if out is not None and run.best_theta is not None:
            run.save(out, force)
            run.diverged.folder = out
        run.diverged.run = run
        raise run.diverged
    return run.save(out, force) if out is not None else run


def _train(data, target, *, features, drop, categorical, task, val_fraction, val, test,
           on_missing, na_values, default_na, max_categories, scale_target, csv, seed, callback,
           block_bytes, stop=None, checkpoint_every=None, out=None, force=False,
           resume_state=None, source_name=None, sample_weight=None, class_weight=None, **params):
    t_start = time.perf_counter()
    fmt = csv or CSVFormat()
    config = dict(target=target, features=features, drop=drop, categorical=list(categorical or ()),
                  task=task, val_fraction=val_fraction, val=_absolute(val), test=_absolute(test),
                  on_missing=on_missing, na_values=list(na_values), default_na=default_na,
                  max_categories=max_categories, scale_target=scale_target, sep=fmt.sep,
                  encoding=fmt.encoding, decimal=fmt.decimal, thousands=fmt.thousands,
                  seed=seed, sample_weight=sample_weight, class_weight=class_weight, **params)
    missing = parse.Missing(na_values, default_na)
    if on_missing not in ("impute", "error"):
        raise ValueError(f"on_missing must be 'impute' or 'error', not {on_missing!r}")
    dtype = np.dtype(params.get("dtype", "float32"))
    key = _CACHE.key(data, source_name, fmt, target, features, drop, categorical, task,
                     max_categories, na_values, default_na, on_missing, sample_weight, dtype,
                     block_bytes)
    with Source(data, rereadable=True, name=source_name) as src, _CACHE.reading(key) as cached:
        if cached is None:
            schema, y_all, notes, info = learn_schema(
                src, fmt, target, features, drop, categorical, task, max_categories, missing,
                block_bytes, refuse_missing=on_missing == "error", weight=sample_weight)
        else:
            schema, y_all, notes, info = cached.fresh()
        for text in notes:
            note(text)
        class_index = _class_weights(class_weight, schema, src.name)
        config["target"] = schema.target  # as found (the last column by default), for resume
        n = info["rows"]
        y_class = y_all if schema.task == "classification" else None
        if val is not None:
            tr, va, small = np.arange(n), np.empty(0, np.int64), []
        elif val_fraction > 0:
            tr, va, small = split(n, val_fraction, seed, y_class, src.name)
        else:
            if n < 2:
                raise DataError(f"{src.name}: {n} row is too few to train on")
            tr, va, small = np.arange(n), np.empty(0, np.int64), []
        if small:
            shown = ", ".join(f"{schema.classes[k]!r} (line "
                              f"{_line(src, fmt, info['sep'], int(np.flatnonzero(y_class == k)[0]))})"
                              for k in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            note(f"{src.name}: {'class' if len(small) == 1 else f'{len(small)} classes'} of target "
                 f"{schema.target!r} with 1 row: {shown}{more}: kept in the training rows, so "
                 "validation holds none of them")
        positions = np.empty(n, np.int64)
        positions[tr] = np.arange(len(tr))
        positions[va] = len(tr) + np.arange(len(va))
        X = allocate(n, schema.n_features, dtype, src.name)
        if cached is not None:
            X[positions] = cached.X  # the rows as the file's pass two encoded them
        elif key is not None and _CACHE.fits(X):
            # in the file's order once, kept for the next trial on these data (a row's
            # provisional encoding does not depend on where it goes)
            in_order = allocate(n, schema.n_features, dtype, src.name)
            encode_file(src, _with_sep(fmt, info["sep"]), schema, in_order, None, dtype,
                        provisional=True, block_bytes=block_bytes)
            X[positions] = in_order
            _CACHE.store(key, schema, y_all, notes, info, in_order, _sha256(src.file))
        else:
            encode_file(src, _with_sep(fmt, info["sep"]), schema, X, positions, dtype,
                        provisional=True, block_bytes=block_bytes)
        for name, (count, value) in finish_numeric(schema, X, len(tr), dtype).items():
            note(f"{src.name}: column {name!r}: {count} missing value(s) {value}")
        y = np.empty_like(y_all)
        y[positions] = y_all
        n_train = len(tr)
        w = None
        if sample_weight is not None:
            w = np.empty(n, np.float64)
            w[positions] = info["weights"]
        if scale_target and schema.task == "regression":
            moments = Moments()  # a target of 1e300s must not overflow its own statistics
            moments.add(y[:n_train])
            center, sd = moments.result()
            schema.target_center, schema.target_scale = center, (sd if sd > 0 else 1.0)
            y = schema.scale_y(y)
        data_name, data_path = src.name, (None if data == "-" else os.path.abspath(data))
        sha = cached.sha if cached is not None else _CACHE.sha_of(key) or _sha256(src.file)
    X_train, y_train = X[:n_train], y[:n_train]
    X_val, y_val = (X[n_train:], y[n_train:]) if len(va) else (None, None)
    w_train, w_val = (None, None) if w is None else (w[:n_train], w[n_train:])
    _check_training_weights(data_name, sample_weight, w_train, class_index, y_train)
    if val is not None:
        X_val, y_val, w_val = _encode_labelled(val, fmt, schema, dtype, on_missing,
                                               weights="required" if w is not None else None)
        if schema.task == "regression":
            y_val = schema.scale_y(y_val)
    if w_val is not None and len(w_val) and not w_val.sum() > 0:
        where = val if val is not None else f"the validation rows of {data_name}"
        raise DataError(f"{where}: weight column {sample_weight!r} is 0 in every validation row, "
                        "so the weighted validation loss is undefined; give some of them a "
                        "weight above 0" + ("" if val is not None else
                                            ", another --seed, or --val-fraction 0"))
    if test is not None:
        _encode_labelled(test, fmt, schema, dtype, on_missing, keep=False,
                         weights="optional" if w is not None else None)
    if params.get("early_stopping") and X_val is None:
        raise DataError("early stopping needs validation rows: give a validation file or a "
                        "validation fraction above 0")
    if class_index is not None:
        params = dict(params, class_weight=class_index)
    est = _estimator(schema.task, seed, params)
    if callback is not None:
        callback(est, {"kind": "data", "schema": schema, "train_rows": n_train,
                       "val_rows": 0 if X_val is None else len(X_val),
                       "sample_weight": sample_weight, "class_weight": class_weight})
    run = Run(est, schema, meta={"data": data_path or data_name, "target": schema.target,
                                 "task": schema.task})
    n_val = 0 if X_val is None else len(X_val)

    def describe(status):
        run.history = [dict(r) for r in est.history_]
        run.summary = _summary(run, data_name, data_path, sha, n, n_train, n_val, config,
                               time.perf_counter() - t_start, w)
        run.summary["status"] = status

    def saver(est):
        if not np.isfinite(est._theta).all():
            # weights past float range (the loss diverges next): nothing worth keeping or
            # resuming, and a folder written now would say 'running' for a dead run
            return
        run.best_theta = watch.theta
        describe("running")
        run.checkpoint = _checkpoint_of(est, watch)
        # the folder is this run's own after its first save
        run.save(out, force or run.folder == out)
    saved_best = resume_state[1] if resume_state is not None else {}
    watch = _Watch(callback, stop, saver if out is not None else None, checkpoint_every,
                   saved_best.get("watch_theta"),
                   None if "watch_score" not in saved_best else float(saved_best["watch_score"]))
    eval_set = None if X_val is None else (X_val, y_val) if w_val is None else (X_val, y_val, w_val)
    # sample_weight only when there are weights, so that an unweighted run asks nothing new of
    # the estimator
    weighted = {} if w_train is None else {"sample_weight": w_train}
    try:
        if resume_state is None:
            est.fit(X_train, y_train, eval_set=eval_set, callback=watch, **weighted)
        else:
            try:
                est.resume(resume_state[0], X_train, y_train, eval_set=eval_set, callback=watch,
                           **weighted)
            except ValueError as exc:
                if isinstance(exc, MLPFastError):
                    raise
                raise DataError(f"{out}: cannot resume: {exc}") from None
    except KeyboardInterrupt as exc:
        # nothing to keep before the first progress chunk has run; after it, even in the
        # first epoch, the state resumes
        if not getattr(est, "history_", None) and getattr(est, "_position", (0, None))[0] == 0:
            raise
        run.interrupted = exc
    except DivergenceError as exc:
        run.diverged = exc
    run.best_theta = watch.theta
    status = ("interrupted" if run.interrupted is not None else
              "diverged" if run.diverged is not None else "finished")
    describe(status)
    if run.diverged is None:
        run.checkpoint = _checkpoint_of(est, watch)
    if test is not None and run.interrupted is None and run.diverged is None:
        run.summary["test"] = run.evaluate(test, csv=fmt)
    return run


class _Cached:
    """A data file as pass one learnt it and pass two encoded it (in the file's order)."""

    def __init__(self, schema, y_all, notes, info, X, sha):
        self.schema, self.y_all, self.notes, self.info = schema, y_all, notes, info
        self.X, self.sha = X, sha
        for a in (y_all, X):
            a.flags.writeable = False  # shared by every trial: nobody writes into them

    def fresh(self):
        """(schema, y, notes, info) for one more run: the schema a copy (training fills in
        its statistics)."""
        import copy
        return copy.deepcopy(self.schema), self.y_all, list(self.notes), dict(self.info)


class _DataCache:
    """Encoded data files kept between runs in one process, for sweeps (cache_data): many
    trials on one file read and encode it once. Keyed by the file (path, size, modification
    time) and every option that changes how it is read; least recently used first out, within
    a memory budget. Off unless a sweep's worker turns it on."""

    def __init__(self):
        import threading
        self.on = False
        self.entries = {}
        self.lock = threading.Lock()
        self.budget = 0

    def key(self, data, source_name, fmt, *options):
        if not self.on or source_name is not None or not isinstance(data, (str, os.PathLike)):
            return None
        path = os.path.abspath(data)
        try:
            st = os.stat(path)
        except OSError:
            return None
        import stat
        if not stat.S_ISREG(st.st_mode):
            return None  # a pipe reads once
        return repr((path, st.st_size, st.st_mtime_ns, fmt, options))

    @contextlib.contextmanager
    def reading(self, key):
        """The cached entry of `key` (None: not kept), the cache held while a run reads, so
        that two runs of one process starting on the same file read it once."""
        if key is None:
            yield None
            return
        with self.lock:
            entry = self.entries.pop(key, None)
            if entry is not None:
                self.entries[key] = entry  # most recently used last
            yield entry

    def fits(self, X):
        return 2 * X.nbytes <= self.budget

    def store(self, key, schema, y_all, notes, info, X, sha):
        import copy
        self.entries[key] = _Cached(copy.deepcopy(schema), y_all.copy(), list(notes),
                                    dict(info), X, sha)
        while sum(e.X.nbytes for e in self.entries.values()) > self.budget:
            self.entries.pop(next(iter(self.entries)))

    def sha_of(self, key):
        entry = self.entries.get(key) if key is not None else None
        return entry.sha if entry is not None else None


_CACHE = _DataCache()


def cache_data(on=True, budget=None):
    """Keep encoded data files between runs in this process (see _DataCache): for a sweep's
    workers. budget: bytes (default an eighth of the machine's memory). off clears it."""
    _CACHE.on = bool(on)
    if budget is None:
        try:
            budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 8
        except (ValueError, OSError, AttributeError):
            budget = 1 << 30
    _CACHE.budget = int(budget)
    if not on:
        _CACHE.entries.clear()


def arrays(data, target=None, csv=None, task=None):
    """(X float32, y, schema) of a whole CSV file, without a split: class indices (int64) or
    float targets. For tools that need the encoded matrix itself (mlpfast bench)."""
    fmt = csv or CSVFormat()
    with Source(data, rereadable=True) as src:
        schema, y, notes, info = learn_schema(src, fmt, target, task=task)
        for text in notes:
            note(text)
        X = allocate(info["rows"], schema.n_features, np.float32, src.name)
        encode_file(src, _with_sep(fmt, info["sep"]), schema, X, provisional=True)
        finish_numeric(schema, X, len(X), np.float32)
    return X, y, schema


def new_run_folder(parent="runs"):
    """runs/<timestamp> (with -2, -3 ... when taken): the default run folder."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder, k = os.path.join(parent, stamp), 1
    while os.path.exists(folder):
        k += 1
        folder = os.path.join(parent, f"{stamp}-{k}")
    return folder


@contextlib.contextmanager


def _frame_as_csv(frame):
    """A DataFrame written as the CSV text the reader reads (its index left out), so that it
    trains exactly as the same data in a file would; messages name it 'DataFrame' and count
    its rows as a file's lines (row k, from 0, is line k + 2)."""
    import tempfile
    fd, path = tempfile.mkstemp(prefix="mlpfast-frame-", suffix=".csv")
    os.close(fd)
    try:
        frame.to_csv(path, index=False)
        yield path
    finally:
        os.unlink(path)


def _with_sep(fmt, sep):
    return CSVFormat(sep, fmt.encoding, fmt.decimal, fmt.thousands)


def _line(src, fmt, sep, row):
    from .reader import line_of_record
    return line_of_record(src, fmt.encoding, sep, row + 2)


def _encode_labelled(path, fmt, schema, dtype, on_missing, keep=True, weights=None):
    """(X, y, w) of a validation or test file, checked before training: columns, values,
    labels and, with weights ('required' or 'optional', see encode_file), the weights."""
    with Source(path, rereadable=True) as src:
        rows = _count_rows(src, fmt)
        out = allocate(rows, schema.n_features, dtype, src.name) if keep else _Discard(rows)
        _, enc, y, *w = encode_file(src, fmt, schema, out, dtype=dtype, targets=True,
                                    refuse_missing=on_missing == "error", weights=weights)
        w = w[0] if w else None
        for text in enc.notes():
            note(text)
    return (out, y, w) if keep else (None, None, None)


class _Discard:
    """An output that takes encoded rows and keeps none (a file checked, not kept)."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return self.rows

    def __setitem__(self, key, value):
        pass


def _count_rows(src, fmt):
    from .reader import Table
    with Table(src, fmt) as table:
        return sum(len(next(iter(cols.values()))) for _, cols in table)


def class_weight_option(value):
    """train's class_weight as run.json keeps it: None, 'balanced', or {label text: float}
    with every weight a finite number >= 0 (labels are matched to classes once the target is
    read, see _class_weights). DataError for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "balanced":
            return "balanced"
        raise DataError(f"--class-weight is 'balanced' or label=weight pairs such as "
                        f"'A=2,B=1', not {value!r}")
    if not isinstance(value, dict):
        raise DataError(f"--class-weight is 'balanced' or a dict of label: weight, not "
                        f"{type(value).__name__} {value!r}")
    out = {}
    for label, weight in value.items():
        text = (parse.format_number(label) if isinstance(label, (float, np.floating))
                else str(label)).strip()
        if not text:
            raise DataError("--class-weight names an empty label")
        if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, (int, float, np.integer,
                                                                           np.floating)):
            raise DataError(f"--class-weight gives label {text!r} the weight {weight!r}, which is "
                            "not a number; weights must be finite numbers >= 0")
        if not (np.isfinite(weight) and weight >= 0):
            raise DataError(f"--class-weight gives label {text!r} the weight {weight!r}; weights "
                            "must be finite numbers >= 0")
        if text in out:
            raise DataError(f"--class-weight names label {text!r} twice")
        out[text] = float(weight)
    return out


def _class_weights(class_weight, schema, name):
    """The estimator's class_weight for the option (see class_weight_option): 'balanced', or
    {class index: weight} (the flow trains on class indices). DataError for regression and
    for a label the target does not have, listing the ones it has."""
    if class_weight is None:
        return None
    at = f"{name}: target column {schema.target!r}"
    if schema.task != "classification":
        raise DataError(f"{at} is trained as regression, and --class-weight weighs classes; "
                        "leave it out (--sample-weight weighs rows), or pass --task "
                        "classification if its values are labels")
    if class_weight == "balanced":
        return "balanced"
    out = {}
    for label, weight in class_weight.items():
        k = schema.class_index(label)
        if k is None:
            shown = ", ".join(map(repr, schema.classes[:20]))
            more = f" ... ({len(schema.classes)} in all)" if len(schema.classes) > 20 else ""
            raise DataError(f"{at} has no label {label!r} (--class-weight); its labels are "
                            f"{shown}{more}")
        if k in out:
            raise DataError(f"--class-weight names class {schema.classes[k]!r} twice "
                            f"({', '.join(repr(x) for x in class_weight if schema.class_index(x) == k)})")
        out[k] = weight
    return out


def _check_training_weights(name, column, w_train, class_index, y_train):
    """Refuse training rows whose weights (sample weights times class weights) are all 0."""
    if column is None and not isinstance(class_index, dict):
        return
    w = np.ones(len(y_train)) if w_train is None else w_train
    if isinstance(class_index, dict):
        per_class = np.ones(int(y_train.max()) + 1)
        for k, v in class_index.items():
            if k < len(per_class):
                per_class[k] = v
        w = w * per_class[y_train]
    if w.sum() > 0:
        return
    if not isinstance(class_index, dict):
        raise DataError(f"{name}: weight column {column!r} (--sample-weight) is 0 in every "
                        "training row; training needs rows of weight above 0")
    raise DataError(f"{name}: " + ("--class-weight and --sample-weight leave" if column else
                                   "--class-weight leaves") +
                    " every training row with weight 0; give a class of the training rows a "
                    "weight above 0")


def _estimator(task, seed, params):
    params = {k: v for k, v in params.items() if k not in _FLOW_PARAMS}
    cls = MLPClassifier if task == "classification" else MLPRegressor
    try:
        return cls(random_state=seed, **params)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


class _Watch:
    """Watches a fit through its callback: keeps the best weights so far (a run stopped midway
    saves them), stops at a progress-chunk boundary when `stop` is set (so the state it saves
    is exact), writes a checkpoint through `save` after every epoch or, with `every`, every
    that many seconds (at a chunk's end), and forwards the events to the user's callback."""

    def __init__(self, callback, stop=None, save=None, every=None, theta=None, score=None):
        self.callback, self.stop, self.save, self.every = callback, stop, save, every
        self.theta, self.score = theta, score
        self.last = time.perf_counter()
        self.took = 0.0  # seconds the last save took

    def __call__(self, est, event):
        if self.stop is not None and self.stop.is_set():
            raise KeyboardInterrupt("stop requested")
        if event["kind"] == "epoch":
            r = event["record"]
            score = r.get("val_score", -r["train_loss"])
            if np.isfinite(score) and (self.score is None or score > self.score):
                self.score = score
                self.theta = est._theta.copy()
        if self.save is not None:
            now = time.perf_counter()
            if self.every:
                due = now - self.last >= self.every
            else:
                # after every epoch, but no sooner than SAVE_SHARE allows: epochs of a tenth of
                # a second would otherwise spend several percent of the time saving
                due = event["kind"] == "epoch" and now - self.last >= self.took / SAVE_SHARE
            if due:
                self.save(est)
                self.last = time.perf_counter()
                self.took = self.last - now
        return self.callback(est, event) if self.callback is not None else False

    def state(self):
        """The watch's own part of a checkpoint."""
        out = {}
        if self.theta is not None:
            out.update(watch_theta=self.theta, watch_score=np.array(self.score))
        return out


def _sha256(path):
    import hashlib
    if path is None:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _summary(run, name, path, sha, rows, n_train, n_val, config, total, weights=None):
    import numba
    est, sc = run.estimator, run.schema
    history = est.history_
    secs = [r["epoch_seconds"] for r in history]
    steady = float(np.median(secs[1:])) if len(secs) > 1 else None
    best = best_record(history)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}
    return {
        "config": config,
        "data": {"file": path or name, "sha256": sha, "rows": rows, "train_rows": n_train,
                 "val_rows": n_val, "columns": sc.names, "roles": {c.name: c.role for c in sc.columns},
                 "left_out": sc.dropped, "target": sc.target, "task": sc.task,
                 "n_features": sc.n_features, "classes": sc.classes,
                 "target_scaling": ({"center": sc.target_center, "scale": sc.target_scale}
                                    if sc.task == "regression" else None),
                 # the weight column and the data file's rows of weight 0
                 "sample_weight": (None if weights is None else
                                   {"column": sc.weight, "zero_rows": int((weights == 0).sum())})},
        "device": getattr(est, "device_", config.get("device", "cpu")),
        "threads": numba.get_num_threads(),
        "versions": {"mlpfast": __version__, "numba": numba.__version__,
                     "numpy": np.__version__, "pandas": pd.__version__, "pyarrow": pa.__version__},
        # the first epoch includes compiling (or loading cached) kernels: its excess over a
        # steady epoch is the compile time
        "compile_seconds": None if steady is None else max(0.0, secs[0] - steady),
        "steady_epoch_seconds": steady,
        "total_seconds": total,
        "epochs_run": len(history),
        "interrupted": run.interrupted is not None,
        "best_epoch": best["epoch"] if best else None,
        "final": metric_row(history[-1], sc.task) if history else None,
        "best": metric_row(best, sc.task) if best else None,
        "test": None,
    }
