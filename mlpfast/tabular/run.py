"""The CSV-to-model flow: `train(path, target=...) -> Run`, `Run.predict(...)`, `load(folder)`.

The command line and Python users call the same functions. Everything the flow drops, imputes
or guesses is said through warnings of category DataNote (the CLI prints them on stderr);
everything it cannot use raises DataError naming the file, column, line or value.
"""
import contextlib
import datetime
import itertools
import json
import os
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

from .._version import __version__
from ..errors import DataError, DataNote, DivergenceError, MLPFastError
from ..estimators import MLPClassifier, MLPRegressor
from .. import metrics
from . import parse
from .learn import allocate, encode_file, finish_numeric, learn_schema
from .reader import CSVFormat, Source
from .scan import Moments
from .schema import Encoder, _short_list
from .split import split

# estimator parameters the flow sets itself
_FLOW_PARAMS = ("random_state",)
# the most of the training time that per-epoch checkpoints may take (benchmarks/checkpoint_cost.py)
SAVE_SHARE = 0.01
PREDICT_BLOCK_ROWS = 50_000


def note(message):
    warnings.warn(message, DataNote, stacklevel=3)


def train(data, target=None, *, features=None, drop=None, categorical=(), task=None,
          val_fraction=0.1, val=None, test=None, on_missing="impute", na_values=(),
          default_na=True, max_categories=100, scale_target=True, csv=None, seed=0,
          callback=None, out=None, force=False, checkpoint_every=None, stop=None,
          block_bytes=None, **params):
    """Train an MLP on a CSV file; returns a Run (saved to the folder `out` when given).

    data: a path, '-' for standard input, a pipe, or a DataFrame of raw columns (written as
    CSV text and read back, so it trains as the same file would); gzip/bz2/xz/zip are read. target: the
    target column (default: the last). The column roles are learnt from the whole file before
    the split (see mlpfast.tabular.schema); `val_fraction` of the rows (stratified, every class
    keeping a training row) or the file `val` validates; `test` is checked before training and
    scored after it. `scale_target` standardises a regression target (predictions and metrics
    stay in its units). `out`: the run folder to write (refused before any work when it holds
    files, unless `force`; locked against a second process while training), rewritten whole
    with a checkpoint after every epoch (fewer when epochs are so short that saving would take
    over 1 % of the time), or every `checkpoint_every` seconds (see resume()).
    `stop`: an object with is_set() (a threading.Event) that, once set, stops training at the
    next progress chunk as Ctrl-C does, with a state that resumes exactly. `params` are
    MLPClassifier/MLPRegressor parameters (hidden_layer_sizes,
    max_iter, ...); random_state is `seed`. callback(estimator, event) is passed to fit.

    Raises DataError for anything in the files that cannot be used, and DivergenceError when
    the loss turns non-finite (its `run` holds the epochs before, saved to `out` when one
    finished). Ctrl-C (KeyboardInterrupt) during fit returns the Run so far with `interrupted`
    set; before the first epoch finishes it propagates.
    """
    options = dict(target=target, features=features, drop=drop, categorical=categorical,
                   task=task, val_fraction=val_fraction, val=val, test=test,
                   on_missing=on_missing, na_values=na_values, default_na=default_na,
                   max_categories=max_categories, scale_target=scale_target, csv=csv, seed=seed,
                   callback=callback, block_bytes=block_bytes, stop=stop,
                   checkpoint_every=checkpoint_every, **params)
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
    from .folder import lock, read_checkpoint
    folder = os.fspath(folder)
    summary, state, watch = read_checkpoint(folder)
    config = dict(summary["config"])
    names = option_names or {}
    if "data" in given:
        config["data"] = summary["data"]["file"]
    conflicts = [k for k, v in given.items() if k in config and _plain(v) != _plain(config[k])]
    if conflicts:
        shown = ", ".join(f"{names.get(k, k)} {_plain(given[k])!r} (the run has "
                          f"{_plain(config[k])!r})" for k in conflicts)
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
    with lock(folder):
        run = _train(path, csv=fmt, seed=seed, callback=callback, stop=stop,
                     checkpoint_every=checkpoint_every, block_bytes=block_bytes, out=folder,
                     force=True, resume_state=(state, watch), **config)
        return _finish(run, folder, True)


def _checkpoint_of(est, watch):
    """The estimator's checkpoint with the watch's best weights, or None for a fit that cannot
    be checkpointed (the CUDA engine keeps no row order on the host)."""
    try:
        return {**est.checkpoint(), **watch.state()}
    except ValueError:
        return None


def _plain(v):
    """An option as run.json holds it (tuples as lists), for comparing."""
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _train_frame_or_file(data, options):
    if not isinstance(data, pd.DataFrame):
        if data == "-" and options["val"] == "-":
            raise DataError("standard input can be read once: give the training data or the "
                            "validation file (--val) as -, not both")
        return _train(data, **options)
    # column names become text, as in a CSV header, and so do the options naming them
    for key in ("target", "features", "drop", "categorical"):
        value = options[key]
        if value is not None and not isinstance(value, str):
            options[key] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        elif isinstance(value, str) and key != "target":
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
           resume_state=None, source_name=None, **params):
    t_start = time.perf_counter()
    fmt = csv or CSVFormat()
    config = dict(target=target, features=features, drop=drop, categorical=list(categorical or ()),
                  task=task, val_fraction=val_fraction, val=val, test=test,
                  on_missing=on_missing, na_values=list(na_values), default_na=default_na,
                  max_categories=max_categories, scale_target=scale_target, sep=fmt.sep,
                  encoding=fmt.encoding, decimal=fmt.decimal, thousands=fmt.thousands,
                  seed=seed, **params)
    missing = parse.Missing(na_values, default_na)
    if on_missing not in ("impute", "error"):
        raise ValueError(f"on_missing must be 'impute' or 'error', not {on_missing!r}")
    with Source(data, rereadable=True, name=source_name) as src:
        schema, y_all, notes, info = learn_schema(
            src, fmt, target, features, drop, categorical, task, max_categories, missing,
            block_bytes, refuse_missing=on_missing == "error")
        for text in notes:
            note(text)
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
        dtype = np.dtype(params.get("dtype", "float32"))
        positions = np.empty(n, np.int64)
        positions[tr] = np.arange(len(tr))
        positions[va] = len(tr) + np.arange(len(va))
        X = allocate(n, schema.n_features, dtype, src.name)
        read_fmt = _with_sep(fmt, info["sep"])
        encode_file(src, read_fmt, schema, X, positions, dtype, provisional=True,
                    block_bytes=block_bytes)
        for name, (count, value) in finish_numeric(schema, X, len(tr), dtype).items():
            note(f"{src.name}: column {name!r}: {count} missing value(s) {value}")
        y = np.empty_like(y_all)
        y[positions] = y_all
        n_train = len(tr)
        if scale_target and schema.task == "regression":
            moments = Moments()  # a target of 1e300s must not overflow its own statistics
            moments.add(y[:n_train])
            center, sd = moments.result()
            schema.target_center, schema.target_scale = center, (sd if sd > 0 else 1.0)
            y = schema.scale_y(y)
        data_name, data_path = src.name, (None if data == "-" else os.path.abspath(data))
        sha = _sha256(src.file)
    X_train, y_train = X[:n_train], y[:n_train]
    X_val, y_val = (X[n_train:], y[n_train:]) if len(va) else (None, None)
    if val is not None:
        X_val, y_val = _encode_labelled(val, fmt, schema, dtype, on_missing)
        if schema.task == "regression":
            y_val = schema.scale_y(y_val)
    if test is not None:
        _encode_labelled(test, fmt, schema, dtype, on_missing, keep=False)
    if params.get("early_stopping") and X_val is None:
        raise DataError("early stopping needs validation rows: give a validation file or a "
                        "validation fraction above 0")
    est = _estimator(schema.task, seed, params)
    if callback is not None:
        callback(est, {"kind": "data", "schema": schema, "train_rows": n_train,
                       "val_rows": 0 if X_val is None else len(X_val)})
    run = Run(est, schema, meta={"data": data_path or data_name, "target": schema.target,
                                 "task": schema.task})
    n_val = 0 if X_val is None else len(X_val)

    def describe(status):
        run.history = [dict(r) for r in est.history_]
        run.summary = _summary(run, data_name, data_path, sha, n, n_train, n_val, config,
                               time.perf_counter() - t_start)
        run.summary["status"] = status

    saver = None
    if out is not None and hasattr(est, "checkpoint"):
        def saver(est):
            run.best_theta = watch.theta
            describe("running")
            run.checkpoint = _checkpoint_of(est, watch)
            # the folder is this run's own after its first save
            run.save(out, force or run.folder == out)
    saved_best = resume_state[1] if resume_state is not None else {}
    watch = _Watch(callback, stop, saver, checkpoint_every, saved_best.get("watch_theta"),
                   None if "watch_score" not in saved_best else float(saved_best["watch_score"]))
    eval_set = None if X_val is None else (X_val, y_val)
    try:
        if resume_state is None:
            est.fit(X_train, y_train, eval_set=eval_set, callback=watch)
        else:
            try:
                est.resume(resume_state[0], X_train, y_train, eval_set=eval_set, callback=watch)
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


def _encode_labelled(path, fmt, schema, dtype, on_missing, keep=True):
    """(X, y) of a validation or test file, checked before training: columns, values, labels."""
    with Source(path, rereadable=True) as src:
        rows = _count_rows(src, fmt)
        out = allocate(rows, schema.n_features, dtype, src.name) if keep else _Discard(rows)
        _, enc, y = encode_file(src, fmt, schema, out, dtype=dtype, targets=True,
                                refuse_missing=on_missing == "error")
        for text in enc.notes():
            note(text)
    return (out, y) if keep else (None, None)


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
        blocks = [X for X, _, _ in self._blocks(data, csv)]
        return np.concatenate(blocks) if blocks else np.empty((0, self.schema.n_features))

    def predict(self, data, csv=None):
        """Predicted labels (classification; as values) or targets in their own units."""
        out = [self._predict_block(X)[0] for X, _, _ in self._blocks(data, csv)]
        return np.concatenate(out) if out else np.empty(0)

    def predict_proba(self, data, csv=None):
        """Class probabilities (rows x classes, columns in the order of `classes`)."""
        self._need_classifier("predict_proba")
        out = [self.estimator.predict_proba(X) for X, _, _ in self._blocks(data, csv)]
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
        for X, _, _ in itertools.chain([first], blocks):
            labels, P = self._predict_block(X)
            if self.task == "classification":
                shown = np.array(self.schema.classes, dtype=object)[np.argmax(P, axis=1)]
                w.writerows([[lab] + ([f"{p:.6g}" for p in row] if proba else [])
                             for lab, row in zip(shown, P)])
            else:
                w.writerows([[f"{v:.8g}"] for v in labels])

    def evaluate(self, data, target=None, csv=None):
        """Metrics on a labelled CSV file or DataFrame, streamed with bounded memory:
        classification: loss, accuracy, per-class precision/recall/F1, confusion matrix;
        regression: loss, mse, mae, r2, in the target's units."""
        sc = self.schema
        acc = _Scores(self.task, len(sc.classes) if sc.classes else 0)
        for X, y, _ in self._blocks(data, csv, target=target or sc.target):
            if self.task == "classification":
                acc.add_classes(self.estimator.predict_proba(X), y)
            else:
                acc.add_values(self._predict_block(X)[0], y)
        if acc.rows == 0:
            raise DataError(f"{_name_of(data)}: has a header but no data rows to evaluate")
        return acc.result(sc.classes)

    def _need_classifier(self, what):
        if self.task != "classification":
            raise DataError(f"{what} needs a classification model; this one does regression")

    def _predict_block(self, X):
        if self.task == "classification":
            P = self.estimator.predict_proba(X)
            return self.classes[np.argmax(P, axis=1)], P
        pred = np.asarray(self.estimator.predict(X), np.float64).reshape(len(X))
        return pred * self.schema.target_scale + self.schema.target_center, None

    def _blocks(self, data, csv, target=None):
        """(X, y or None, first_row) blocks of a file or DataFrame, encoded by the schema."""
        sc = self.schema
        dtype = _model_dtype(self.estimator)
        if isinstance(data, pd.DataFrame):
            yield from _frame_blocks(data, sc, dtype, target)
            return
        fmt = csv or sc.csv
        from .reader import Table
        with Source(data) as src:
            with Table(src, fmt) as table:
                where = ((lambda r: f"line {table.line_of_row(r)}") if src.regular
                         else (lambda r: f"data row {r + 1}"))
                enc = Encoder(sc, fmt, src.name, where, dtype)
                enc.check_columns(table.columns, table.sep)
                if target is not None and target not in table.columns:
                    raise DataError(f"{src.name}: no target column {target!r}; columns are "
                                    f"{_short_list(table.columns)} (pass --target)")
                for first, cols in table:
                    n = len(cols[table.columns[0]])
                    X = np.empty((n, sc.n_features), dtype)
                    enc.encode(first, cols, X)
                    y = enc.target(first, cols[target], target) if target is not None else None
                    yield X, y, first
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


def _frame_blocks(frame, schema, dtype, target):
    enc = Encoder(schema, CSVFormat(), "DataFrame", lambda r: f"row {frame.index[r]!r}", dtype)
    enc.check_columns([str(c) for c in frame.columns])
    if target is not None and target not in frame.columns:
        raise DataError(f"DataFrame: no target column {target!r}")
    for first in range(0, max(len(frame), 1), PREDICT_BLOCK_ROWS):
        part = frame.iloc[first:first + PREDICT_BLOCK_ROWS]
        if len(part) == 0:
            break
        cols = {str(c): _as_text(part[c]) for c in frame.columns
                if str(c) in schema.names or str(c) == target}
        X = np.empty((len(part), schema.n_features), dtype)
        enc.encode(first, cols, X)
        y = enc.target(first, cols[target]) if target is not None else None
        yield X, y, first
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
    """Running sums for evaluate: the whole file is never held at once."""

    def __init__(self, task, n_classes):
        self.task, self.rows = task, 0
        self.cm = np.zeros((n_classes, n_classes), np.int64)
        self.log_loss = 0.0
        self.sse = self.sae = 0.0
        self.y_sum = self.y_sq = 0.0

    def add_classes(self, P, y):
        np.add.at(self.cm, (y, np.argmax(P, axis=1)), 1)
        self.log_loss += metrics.log_loss(P, y) * len(y)
        self.rows += len(y)

    def add_values(self, pred, y):
        d = pred - y
        self.sse += float(d @ d)
        self.sae += float(np.abs(d).sum())
        self.y_sum += float(y.sum())
        self.y_sq += float(y @ y)
        self.rows += len(y)

    def result(self, labels):
        n = max(self.rows, 1)
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
                                "support": int(rep["support"][k])}
                          for k, lab in enumerate(labels)},
            "macro": rep["macro"], "weighted": rep["weighted"],
            "confusion_matrix": self.cm.tolist(),
        }


def _summary(run, name, path, sha, rows, n_train, n_val, config, total):
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
                                    if sc.task == "regression" else None)},
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


def load(path):
    """A Run from a run folder (or its model.npz) written by `train` or `mlpfast train`.

    Raises ModelFileError for a missing, damaged or foreign file."""
    from ..model_io import load_model
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


__all__ = ["train", "load", "Run", "CSVFormat", "MLPFastError"]
