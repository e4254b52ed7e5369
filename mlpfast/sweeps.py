"""Many training runs as one batch job: a grid or random draws of `train` options over one or
more CSV files, executed by dask.distributed (mlpfast.cluster), each trial an ordinary run
folder, the results in one table.

    import mlpfast
    if __name__ == "__main__":   # a script: the local cluster's workers import it again
        results = mlpfast.sweep("spec.toml")        # a pandas DataFrame, one row per trial
        results = mlpfast.sweep(spec_dict, client=client, out="sweeps/shops")

The spec (a TOML file, or the same as a dict):

    data = ["shops/*.csv"]        # files or globs, relative to the spec file's folder
    target = "y"
    [options]                     # fixed for every trial: `mlpfast train` options
    epochs = 10
    [grid]                        # every combination of these lists
    hidden = ["64", "128,64"]
    lr = [0.001, 0.003]
    seed = [0, 1]

and, for random search, `n_trials = 20` with a [random] table of ranges: a list (one of its
values), {uniform = [lo, hi]}, {log_uniform = [lo, hi]} or {int = [lo, hi]} (both ends
included); `random_seed` (default 0) fixes the draws, so that a sweep run again draws the same
trials. Grid and random combine: every grid combination with every draw.

Each trial is named by its data file and a hash of its options, `DIR/trials/<file stem>-<hash>`,
so that the same sweep run again finds its trials: finished ones are skipped (unless their data
file changed), stopped ones resume from their checkpoints, failed ones run again. A failing
trial (a refused option, bad data, a divergence) is a row with its one-line error; the others go
on. A worker that dies mid-trial has its trial retried by dask on another worker (from its
checkpoint), or recorded as failed.
"""
import contextlib
import fcntl
import glob as globmod
import hashlib
import itertools
import json
import math
import os
import time
import warnings

import numpy as np

from .errors import DataError, DataNote, DivergenceError, MLPFastError, one_line
from .tabular.options import DEFAULTS, FILE_OPTIONS, canonical, library_options

SPEC_KEYS = ("data", "target", "options", "grid", "random", "n_trials", "random_seed", "together")
RESULTS_CSV, RESULTS_JSON = "results.csv", "results.json"
# a results row's columns other than the varied options, which come between the two
LEADING_COLUMNS = ("trial", "data")
TRAILING_COLUMNS = ("status", "error", "epochs_run", "best_epoch", "train_loss", "val_loss",
                    "val_accuracy", "val_r2", "test_loss", "test_accuracy", "test_r2", "seconds",
                    "together", "folder")
FIXED_COLUMNS = LEADING_COLUMNS + TRAILING_COLUMNS
# the most trials that train together in one compiled call (mlpfast.engine.together)
TOGETHER_MAX = 8
# seconds running trials get to checkpoint and return once the sweep is asked to stop
STOP_GRACE = 120.0


class Trial:
    """One run of a sweep: its data file, its options (command-line names, fixed and varied),
    the varied ones alone, its name (the folder under DIR/trials)."""

    def __init__(self, data, options, varied):
        self.data, self.options, self.varied = data, options, varied
        try:
            # the options as training takes them: '8', 8 and [8] are one width, 1 and 1.0 one
            # seed; values that are refused keep their own spelling (their trial fails)
            same = {k: repr(v) for k, v in sorted(library_options(options).items())}
        except DataError:
            same = options
        key = json.dumps({"data": data, "options": same}, sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        stem = os.path.splitext(os.path.basename(data))[0]
        for ext in (".csv", ".tsv", ".txt"):  # shops/a.csv.gz -> a
            stem = stem[: -len(ext)] if stem.endswith(ext) else stem
        self.name = f"{stem}-{digest}"

    def __repr__(self):
        return f"Trial({self.name}, {self.varied})"


def load_spec(spec):
    """(spec dict, the folder relative paths are taken from, a name for the sweep) of a TOML
    file's path or a dict (relative to the current folder). DataError for an unreadable file
    or a key that is not a spec key."""
    if isinstance(spec, dict):
        conf, base, name = dict(spec), os.getcwd(), "sweep"
    else:
        path = os.fspath(spec)
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            with open(path, "rb") as f:
                text = f.read()
            if text.startswith(b"\xef\xbb\xbf"):  # a byte-order mark some editors write
                text = text[3:]
            conf = tomllib.loads(text.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"the sweep spec {path} is not UTF-8 text ({exc.reason} at byte "
                            f"{exc.start})") from None
        except OSError as exc:
            raise DataError(f"cannot read the sweep spec {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{path} is not valid TOML: {exc}") from None
        base = os.path.dirname(os.path.abspath(path))
        name = os.path.splitext(os.path.basename(path))[0]
    where = "the sweep spec" if isinstance(spec, dict) else os.fspath(spec)
    unknown = [k for k in conf if k not in SPEC_KEYS]
    if unknown:
        hint = ""
        if any(canonical(k) in DEFAULTS for k in unknown):
            hint = "; train options go in [options] (fixed) or [grid] (varied)"
        raise DataError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}: a spec has "
                        f"{', '.join(SPEC_KEYS)}{hint}")
    if "data" not in conf:
        raise DataError(f"{where}: no data: name the CSV files, e.g. data = [\"shops/*.csv\"]")
    conf["_where"] = where
    return conf, base, name


def trials_of(conf, base):
    """The trials of a spec (see the module's docstring), in a fixed order: data file, then
    grid combination, then random draw. DataError for a spec that names no files, an option
    that is not a train option, or a range that cannot be drawn from."""
    where = conf["_where"]
    files = _data_files(conf["data"], base, where)
    fixed = _table(conf, "options", where)
    grid = _table(conf, "grid", where)
    rand = _table(conf, "random", where)
    if "target" in conf:
        if not isinstance(conf["target"], str):
            raise DataError(f"{where}: target = {conf['target']!r} is not a column name")
        given = {canonical(k): v for k, v in fixed.items()}.get("target")
        if given is not None and given != conf["target"]:
            raise DataError(f"{where}: target = {conf['target']!r} and [options] target = "
                            f"{given!r} disagree; give the target once")
        if any(canonical(k) == "target" for k in {**grid, **rand}):
            raise DataError(f"{where}: target is given, and [grid] or [random] varies it; "
                            "give one or the other")
        fixed = {k: v for k, v in fixed.items() if canonical(k) != "target"}
        fixed["target"] = conf["target"]
    for table, section in ((fixed, "options"), (grid, "grid"), (rand, "random")):
        for key in table:
            name = canonical(key)
            if name not in DEFAULTS:
                raise DataError(f"{where}: [{section}] {key!r} is not a train option; the "
                                f"options are {', '.join(sorted(DEFAULTS))}")
            if name in FILE_OPTIONS and isinstance(table[key], str):
                table[key] = _from(base, table[key])
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DataError(f"{where}: [grid] {key} = {values!r} is not a list of values to try")
    if grid.get("val") or grid.get("test"):
        grid = {k: ([_from(base, v) if isinstance(v, str) else v for v in vs]
                    if canonical(k) in FILE_OPTIONS else vs) for k, vs in grid.items()}
    draws = _draws(conf, rand, where)
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    out, seen = [], set()
    for path in files:
        for combo in combos:
            for draw in draws:
                varied = {canonical(k): v for k, v in {**combo, **draw}.items()}
                options = {canonical(k): v for k, v in fixed.items()}
                options.update(varied)
                trial = Trial(path, options, varied)
                if trial.name not in seen:  # a value listed twice is one trial
                    seen.add(trial.name)
                    out.append(trial)
    return out


def _from(base, path):
    return path if os.path.isabs(path) or path == "-" else os.path.normpath(os.path.join(base, path))


def _table(conf, key, where):
    value = conf.get(key, {})
    if not isinstance(value, dict):
        raise DataError(f"{where}: {key} must be a table ([{key}]), not {value!r}")
    return dict(value)


def _data_files(data, base, where):
    patterns = [data] if isinstance(data, (str, os.PathLike)) else data
    if not isinstance(patterns, list) or not all(isinstance(p, (str, os.PathLike))
                                                 for p in patterns):
        raise DataError(f"{where}: data = {data!r} is not a file, a glob or a list of them")
    if not patterns:
        raise DataError(f"{where}: data = [] names no file; list the CSV files or globs")
    patterns = [os.fspath(p) for p in patterns]
    files = []
    for pattern in patterns:
        full = _from(base, os.path.expanduser(pattern))
        found = sorted(globmod.glob(full)) if globmod.has_magic(full) else (
            [full] if os.path.exists(full) else [])
        found = [f for f in found if os.path.isfile(f)]
        if not found:
            raise DataError(f"{where}: data {pattern!r} matches no file (looked for {full})")
        files += [os.path.abspath(f) for f in found if os.path.abspath(f) not in files]
    return files


def _draws(conf, rand, where):
    n = conf.get("n_trials")
    if not rand:
        if n is not None:
            raise DataError(f"{where}: n_trials = {n} draws from a [random] table, and the "
                            "spec has none; add one (e.g. lr = {log_uniform = [1e-4, 1e-2]})")
        return [{}]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"{where}: a [random] table needs n_trials, a whole number >= 1 "
                        f"(it has {n!r})")
    seed = conf.get("random_seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"{where}: random_seed = {seed!r} is not a whole number >= 0")
    rng = np.random.default_rng(seed)
    samplers = {k: _sampler(k, v, where) for k, v in rand.items()}
    return [{k: s(rng) for k, s in samplers.items()} for _ in range(n)]


def _sampler(key, value, where):
    """A function of a numpy Generator drawing one value of option `key`."""
    if isinstance(value, list) and value:
        return lambda rng: value[int(rng.integers(len(value)))]
    if isinstance(value, dict) and len(value) == 1:
        kind, bounds = next(iter(value.items()))
        ok = (isinstance(bounds, list) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b)
            for b in bounds) and bounds[0] <= bounds[1])
        if ok and kind == "uniform":
            return lambda rng: float(rng.uniform(bounds[0], bounds[1]))
        if ok and kind == "log_uniform" and bounds[0] > 0:
            lo, hi = math.log(bounds[0]), math.log(bounds[1])
            return lambda rng: float(math.exp(rng.uniform(lo, hi)))
        if ok and kind == "int" and all(float(b).is_integer() for b in bounds):
            return lambda rng: int(rng.integers(int(bounds[0]), int(bounds[1]) + 1))
    raise DataError(f"{where}: [random] {key} = {value!r} is not a range: give a list of values, "
                    "{uniform = [lo, hi]}, {log_uniform = [lo, hi]} (lo > 0) or {int = [lo, hi]}")


# ---- running

def sweep(spec, client=None, *, out=None, scheduler=None, workers=None, threads=None,
          together=None, callback=None, stop=None):
    """Run the trials of `spec` (a TOML file's path or a dict; see the module docstring) and
    return their results as a pandas DataFrame, one row per trial in spec order: trial, data,
    one column per varied option, status ('finished', 'skipped' (finished before), 'failed',
    'diverged', 'interrupted' (stopped with a checkpoint), 'not started'), error (one line),
    epochs_run, best_epoch, train_loss, val_loss, val_accuracy or val_r2 (the best epoch's),
    test_loss, test_accuracy or test_r2 (with a `test` file), seconds, together (how many
    trials trained together with it, itself included; 1: alone), folder.

    out: the sweep folder (default sweeps/<spec file's name>, or sweeps/sweep for a dict),
    holding trials/<trial>/ (run folders as `mlpfast train` writes them), results.csv and
    results.json (the spec, the rows, and the best trial of each data file: the highest
    validation accuracy or R2, else test score, else the lowest training loss). Both are
    rewritten as trials finish, so a sweep stopped any way leaves the results so far.

    client: a dask.distributed Client to run on (left open); else `scheduler` (an address)
    or a LocalCluster of `workers` processes with `threads` Numba threads each
    (mlpfast.cluster.plan: by default a worker per core, up to the trials). together (default:
    the spec's `together`, else True): trials that share their data and network shape train
    together, up to TOGETHER_MAX in one compiled call, each bit-identical to its trial alone.

    callback(event) is called in this process: {'kind': 'start', 'total': trials} once, then
    as trials end {'kind': 'trial', 'row': the row, 'done': trials ended, 'total': trials}. stop: an object with is_set() (a
    threading.Event): once set, running trials stop at their next progress chunk with a
    checkpoint (status 'interrupted'), trials not started are left ('not started'), the
    results are written, and the DataFrame is returned with attribute `interrupted` True.

    In a script, call it under `if __name__ == "__main__":` (the local cluster's worker
    processes import the script again, as multiprocessing's spawn does). Data notes from the
    trials (what was dropped or imputed) are issued here once each as DataNote warnings. Raises DataError for a spec that cannot be run (no such file, an
    unknown option, a sweep folder another process is running) and ClusterError when dask is
    missing or the scheduler cannot be reached; a trial's own failure is its row.
    """
    import pandas as pd

    from .cluster import executor, require_dask
    require_dask()
    conf, base, name = load_spec(spec)
    trials = trials_of(conf, base)
    out = os.path.abspath(out or os.path.join("sweeps", name))
    if together is None:
        together = conf.get("together", True)
        if not isinstance(together, bool):
            raise DataError(f"{conf['_where']}: together = {together!r} is not true or false")
    varied = list(dict.fromkeys(k for t in trials for k in t.varied))
    for name_ in (RESULTS_CSV, RESULTS_JSON):
        path = os.path.join(out, name_)
        if os.path.lexists(path) and not os.path.isfile(path):
            raise DataError(f"{path} is not a file; move it away, or name another --out")
    created = not os.path.exists(out)
    book = _Book(out, conf, trials, varied)
    with _sweep_lock(out), _remove_if_unused(out, created):
        os.makedirs(os.path.join(out, "trials"), exist_ok=True)
        book.earlier()
        book.write()  # every trial listed ('not started') from the start: a sweep killed
        # before its first trial ends leaves the table of what it was to do
        if callback is not None:
            callback({"kind": "start", "total": book.total})
        todo = []
        for t in trials:
            if _folder_state(os.path.join(out, "trials", t.name), t.data) == "finished":
                book.end(t, _row(t, out, status="skipped",
                                 summary=_summary(os.path.join(out, "trials", t.name))))
                continue
            try:
                library_options(t.options, where=f"trial {t.name}")
            except DataError as exc:  # a refused option fails its trial, not the sweep
                book.end(t, _failed(t, out, str(exc), 0.0))
                continue
            todo.append(t)
        groups = _groups(todo, together)
        interrupted = False
        if groups:
            try:
                with executor(client, scheduler, workers, threads, tasks=len(groups),
                              stop=stop) as (cl, per):
                    interrupted = _execute(cl, per, groups, out, book, callback, stop)
            except KeyboardInterrupt:  # stopped while connecting to the scheduler
                interrupted = True
        trials_dir = os.path.join(out, "trials")
        if interrupted and created and not os.listdir(trials_dir):
            import shutil
            shutil.rmtree(out, ignore_errors=True)  # nothing started: nothing to keep
            frame = pd.DataFrame(book.rows())
            frame.attrs.update(best={}, out=None, interrupted=True)
            return frame
        book.write()
    for text in book.notes:
        warnings.warn(text, DataNote, stacklevel=2)
    frame = pd.DataFrame(book.rows())
    frame.attrs["best"] = book.best()
    frame.attrs["out"] = out
    frame.attrs["interrupted"] = interrupted
    return frame


def _groups(trials, together):
    """Lists of trials that run as one task: those that can train together (same data file,
    data options and network shape; see mlpfast.engine.together) in groups of up to
    TOGETHER_MAX, each other trial alone."""
    if not together:
        return [[t] for t in trials]
    by_key = {}
    for t in trials:
        by_key.setdefault(_together_key(t), []).append(t)
    out = []
    for key, members in by_key.items():
        if key is None:
            out += [[t] for t in members]
            continue
        out += [members[i: i + TOGETHER_MAX] for i in range(0, len(members), TOGETHER_MAX)]
    return out


# options that may differ between trials that train together: the optimizer's numbers and the
# regularisation (the data, the split and the network's shape must be the same)
_STEP_OPTIONS = ("lr", "alpha", "momentum", "dropout")


def _together_key(t):
    opts = dict(DEFAULTS, **t.options)
    if opts["device"] != "cpu":
        return None
    return json.dumps({"data": t.data, **{k: v for k, v in opts.items()
                                           if k not in _STEP_OPTIONS}}, sort_keys=True, default=str)


def _kernels_of(groups):
    """(entry points, dtypes, dtypes on device 'auto') of mlpfast.compiling that the CPU
    trials of `groups` run, for cluster.warm_up: the fit and prediction, and run_together's
    pooled call for a group of several (train's optimizers are sgd and adam: no L-BFGS).
    Device 'auto' is resolved on the workers (the CPU where they have no GPU)."""
    kernels, dtypes = ["train", "predict"], {"cpu": set(), "auto": set()}
    for group in groups:
        for t in group:
            opts = dict(DEFAULTS, **t.options)
            if opts["device"] not in dtypes:
                continue
            dtypes[opts["device"]].add(str(opts["dtype"]))
        if len(group) > 1 and "together" not in kernels:
            kernels.append("together")
    return tuple(kernels), tuple(sorted(dtypes["cpu"])), tuple(sorted(dtypes["auto"]))


def _execute(client, threads, groups, out, book, callback, stop):
    """Submit the groups, record rows as they end; returns whether the sweep was stopped."""
    import distributed

    from .cluster import task_started, warm_up
    stop_name = f"mlpfast-sweep-stop-{os.getpid()}-{time.time_ns()}"
    event = distributed.Event(stop_name, client=client)
    if not warm_up(client, stop, *_kernels_of(groups)):
        for group in groups:
            for t in group:
                book.end(t, _row(t, out, status="not started"))
        return True
    futures = {}
    for group in groups:
        fut = client.submit(run_group, group, out, stop_name, threads, pure=False,
                            key=f"mlpfast-trials-{group[0].name}-{len(group)}-{time.time_ns()}")
        futures[fut] = group
    pending = distributed.as_completed(list(futures), with_results=False)
    stopping_since = None
    done = set()
    while len(done) < len(futures):
        if client.status not in ("running", "connecting"):
            _lost(futures, done, out, book, client)
        if stop is not None and stop.is_set() and stopping_since is None:
            stopping_since = time.perf_counter()
            event.set()
            for fut, group in futures.items():
                if fut not in done and fut.status == "pending" and not task_started(client, fut):
                    fut.cancel()
        batch = pending.next_batch(block=False) if not pending.is_empty() else []
        if not batch:
            if stopping_since is not None and time.perf_counter() - stopping_since > STOP_GRACE:
                break
            time.sleep(0.1)
            continue
        for fut in batch:
            done.add(fut)
            group = futures[fut]
            for trial, row in zip(group, _group_result(fut, group, out)):
                book.end(trial, row)
                if callback is not None:
                    callback({"kind": "trial", "row": row, "done": book.ended, "total": book.total})
    for fut, group in futures.items():
        if fut not in done:
            fut.cancel()
            for t in group:  # no answer within STOP_GRACE: what its folder holds
                book.end(t, _as_left(t, out))
    if stopping_since is None and client.status != "running":
        _lost(futures, done, out, book, client)  # its futures ended as cancelled
    return stopping_since is not None


def _as_left(trial, out):
    """The row of a trial whose task gave no answer, from what its folder holds: interrupted
    (a checkpoint to resume from) or not started."""
    folder = os.path.join(out, "trials", trial.name)
    state = _folder_state(folder, trial.data)
    if state == "finished":
        return _row(trial, out, status="finished", summary=_summary(folder))
    if state == "resumable":
        return _row(trial, out, status="interrupted", summary=_summary(folder))
    return _row(trial, out, status="not started")


def _settle(out, trials, most=10.0):
    """Wait (up to `most` seconds) until the run folders of `trials` stop changing: workers
    that lost the scheduler notice within about two seconds and write their checkpoints."""
    def stamp():
        out_ = []
        for t in trials:
            try:
                out_.append(os.stat(os.path.join(out, "trials", t.name, "run.json")).st_mtime_ns)
            except OSError:
                out_.append(None)
        return out_
    deadline, last, quiet = time.monotonic() + most, stamp(), 0
    while trials and time.monotonic() < deadline and quiet < 4:
        time.sleep(0.5)
        now = stamp()
        quiet = quiet + 1 if now == last else 0
        last = now


def _lost(futures, done, out, book, client):
    """The scheduler is gone: record what the folders hold and stop with ClusterError (the
    workers, which ask the scheduler whether to stop, stop at their next checkpoint)."""
    from .cluster import ClusterError
    left = [t for fut, group in futures.items() if fut not in done for t in group]
    _settle(out, left)
    for t in left:
        book.end(t, _as_left(t, out))
    book.write()
    address = getattr(getattr(client, "scheduler", None), "address", None) or "of the sweep"
    raise ClusterError(f"lost the dask scheduler {address} mid-sweep; the results so far are in {os.path.join(out, RESULTS_CSV)}; "
                       "run the sweep again once it is back (finished trials are skipped, "
                       "stopped ones resume)")


def _group_result(fut, group, out):
    """The rows of a finished future: its result, or each trial failed with the reason (a
    worker that died and stayed dead under dask's retries, a cancelled task)."""
    import distributed
    if fut.status == "finished":
        return fut.result()
    if fut.status == "cancelled":
        return [_as_left(t, out) for t in group]
    try:
        exc = fut.exception()
    except Exception as e:  # noqa: BLE001
        exc = e
    if isinstance(exc, distributed.KilledWorker):
        why = ("its worker died (killed, or out of memory) on every try; run the sweep again "
               "to continue it from its checkpoint")
    else:
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return [_row(t, out, status="failed", error=why) for t in group]


# ---- on the workers

class _RemoteStop:
    """`stop` for training on a worker: the sweep's dask Event, asked at most every half
    second (each ask is a round trip to the scheduler), from any thread (the Event is made
    in the task's own thread, where the worker's client is found). A scheduler that no
    longer answers counts as a stop: nobody is left to collect the trial, and a checkpoint
    lets the next sweep resume it."""

    def __init__(self, name):
        import distributed
        # the worker's client, found here (the task's thread) and given to the Event, which
        # otherwise looks for one in the thread that asks (a trial's own thread has none)
        self.event = distributed.Event(name, client=distributed.get_client())
        self.last, self.value, self.failures = 0.0, False, 0

    def is_set(self):
        now = time.monotonic()
        if not self.value and now - self.last >= 0.5:
            self.last = now
            try:
                self.value = bool(self.event.is_set())
                self.failures = 0
            except Exception:  # noqa: BLE001 (the scheduler is gone, or going)
                self.failures += 1
                self.value = self.failures >= 3
        return self.value


def run_group(group, out, stop_name, threads):
    """Run a group of trials on this worker (together when there are several: see
    mlpfast.engine.together) and return their rows. Never raises for a trial's own failure."""
    import numba

    from .tabular import flow
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    flow.cache_data(True)  # a data file read once per worker, not once per trial
    stop = _RemoteStop(stop_name) if stop_name else None
    if len(group) == 1:
        return [dict(run_trial(group[0], out, stop), together=1)]
    # warnings are caught here, once for the group: catch_warnings is process-wide, and the
    # trials' threads entering and leaving it would let warnings through (and lose notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from .engine.together import run_together
            results = run_together([lambda t=t: run_trial(t, out, stop, capture=False)
                                    for t in group])
        except Exception:  # noqa: BLE001 (trials that cannot train together train one by one)
            results = [run_trial(t, out, stop, capture=False) for t in group]
    notes = _notes(caught)
    return [dict(r if not isinstance(r, BaseException) else
                 _failed(t, out, f"{type(r).__name__}: {one_line(r)}", 0.0),
                 together=len(group), notes=notes) for t, r in zip(group, results)]


def run_trial(trial, out, stop=None, capture=True):
    """Train (or resume, or skip) one trial into out/trials/<name>; its results row. capture:
    catch the trial's warnings (its data notes go in the row); False where the caller
    catches them for several trials at once."""
    from .tabular import resume, train
    folder = os.path.join(out, "trials", trial.name)
    t0 = time.perf_counter()
    state = _folder_state(folder, trial.data)
    if state == "finished":
        return _row(trial, out, status="skipped", summary=_summary(folder))
    if stop is not None and stop.is_set():  # queued on this worker when the sweep was stopped
        return _row(trial, out, status="not started" if state is None else "interrupted",
                    summary=_summary(folder) if state else None)
    kwargs = library_options(trial.options, where=f"trial {trial.name}")
    with (warnings.catch_warnings(record=True) if capture else contextlib.nullcontext([])) as caught:
        if capture:
            warnings.simplefilter("always")
        try:
            if state == "resumable":
                run = resume(folder, stop=stop)
            else:
                run = train(trial.data, out=folder, force=True, stop=stop, **kwargs)
        except DivergenceError as exc:
            summary = exc.run.summary if getattr(exc, "run", None) is not None else None
            return _row(trial, out, status="diverged", error=one_line(exc), summary=summary,
                        seconds=time.perf_counter() - t0, notes=_notes(caught))
        except KeyboardInterrupt:  # asked to stop before the first progress chunk
            return _row(trial, out, status="not started", seconds=time.perf_counter() - t0)
        except (MLPFastError, ValueError, OSError, MemoryError) as exc:
            return _failed(trial, out, one_line(exc), time.perf_counter() - t0, _notes(caught))
        except Exception as exc:  # noqa: BLE001 (a bug is a failed trial, never a lost one)
            return _failed(trial, out, f"{type(exc).__name__}: {one_line(exc)}",
                           time.perf_counter() - t0, _notes(caught))
    status = "interrupted" if run.interrupted is not None else "finished"
    return _row(trial, out, status=status, summary=run.summary,
                seconds=time.perf_counter() - t0, notes=_notes(caught))


def _notes(caught):
    return [str(w.message) for w in caught if issubclass(w.category, DataNote)]


def _folder_state(folder, data):
    """'finished' (its data file unchanged), 'resumable' (a checkpoint of these data), or
    None (nothing to keep: train anew)."""
    summary = _summary(folder)
    if not summary:
        return None
    from .tabular.flow import _sha256
    sha = summary.get("data", {}).get("sha256")
    try:
        same = sha is not None and _sha256(data) == sha
    except OSError:
        same = False
    if not same:
        return None
    if summary.get("status") == "finished":
        return "finished"
    if summary.get("status") in ("interrupted", "running") and os.path.exists(
            os.path.join(folder, "checkpoint.npz")):
        return "resumable"
    return None


def _summary(folder):
    try:
        with open(os.path.join(folder, "run.json")) as f:
            summary = json.load(f)
        return summary if isinstance(summary, dict) else None
    except (OSError, ValueError):
        return None


def _failed(trial, out, error, seconds, notes=()):
    return _row(trial, out, status="failed", error=error, seconds=seconds, notes=notes)


def _row(trial, out, status, error="", summary=None, seconds=None, notes=()):
    """A trial's results row (see sweep())."""
    row = {"trial": trial.name, "data": trial.data, **trial.varied, "status": status,
           "error": error, "epochs_run": None, "best_epoch": None, "train_loss": None, "val_loss": None,
           "val_accuracy": None, "val_r2": None, "test_loss": None, "test_accuracy": None,
           "test_r2": None, "seconds": None if seconds is None else round(seconds, 3),
           "together": None,
           "folder": os.path.join(out, "trials", trial.name), "notes": list(notes)}
    if summary:
        best = summary.get("best") or {}
        row.update(epochs_run=summary.get("epochs_run"), best_epoch=summary.get("best_epoch"),
                   train_loss=best.get("train_loss"), val_loss=best.get("val_loss"), val_accuracy=best.get("val_accuracy"),
                   val_r2=best.get("val_r2"))
        test = summary.get("test") or {}
        row.update(test_loss=test.get("loss"), test_accuracy=test.get("accuracy"),
                   test_r2=test.get("r2"))
        if (status == "skipped" or seconds is None) and summary.get("total_seconds") is not None:
            row["seconds"] = round(summary["total_seconds"], 3)
    return row


# ---- the results

class _Book:
    """The rows so far, written to results.csv and results.json as trials end."""

    def __init__(self, out, conf, trials, varied):
        self.out, self.trials, self.varied = out, trials, varied
        self.spec = {k: v for k, v in conf.items() if not k.startswith("_")}
        self.by_name = {t.name: _row(t, out, status="not started") for t in trials}
        self.total, self.ended = len(trials), 0
        self.notes = []
        self.last_write = 0.0

    def end(self, trial, row):
        self.by_name[trial.name] = row
        self.ended += 1
        for text in row.get("notes", ()):
            if text not in self.notes:
                self.notes.append(text)
        now = time.monotonic()
        if now - self.last_write >= 1.0 or self.ended == self.total:
            self.write()
            self.last_write = now

    def rows(self):
        return [{k: v for k, v in self.by_name[t.name].items() if k != "notes"}
                for t in self.trials]

    def best(self):
        """{data file: the best finished trial's name} (see sweep()): each file's trials
        ranked by the first measure they have (validation score, test score, training
        loss), and only the trials that have that measure."""
        out = {}
        for data in dict.fromkeys(t.data for t in self.trials):
            rows = [self.by_name[t.name] for t in self.trials if t.data == data and
                    self.by_name[t.name]["status"] in ("finished", "skipped")]
            for key in ("val_accuracy", "val_r2", "test_accuracy", "test_r2", "train_loss"):
                ranked = [r for r in rows if _finite(r.get(key))]
                if ranked:
                    sign = -1 if key == "train_loss" else 1
                    out[data] = max(ranked, key=lambda r: sign * float(r[key]))["trial"]
                    break
        return out

    def earlier(self):
        """Say (as a note) when the folder held the results of other trials: results.csv
        now lists this spec's; the others' folders stay under trials/."""
        try:
            with open(os.path.join(self.out, RESULTS_JSON)) as f:
                old = {r.get("trial") for r in json.load(f).get("trials", [])}
        except (OSError, ValueError, AttributeError, TypeError):
            return
        gone = old - set(self.by_name)
        if gone:
            self.notes.append(f"{self.out} held the results of {len(gone)} trial(s) this spec "
                              "does not have (another spec, or this one changed): results.csv "
                              "now lists this spec's trials; the others' run folders stay in "
                              "trials/")

    def write(self):
        from .tabular.folder import write_json, write_text
        import pandas as pd
        rows = self.rows()
        columns = [*LEADING_COLUMNS, *self.varied, *TRAILING_COLUMNS]
        frame = pd.DataFrame(rows, columns=columns)
        for key in ("epochs_run", "best_epoch", "together"):
            frame[key] = frame[key].astype("Int64")  # 12, not 12.0, beside empty cells
        write_text(os.path.join(self.out, RESULTS_CSV), frame.to_csv(index=False))
        write_json(os.path.join(self.out, RESULTS_JSON),
                   {"spec": self.spec, "trials": rows, "best": self.best(),
                    "notes": self.notes})


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@contextlib.contextmanager
def _remove_if_unused(out, created):
    """A sweep folder this sweep made and left with no trial folder (it failed before any
    trial started: no scheduler, no dask) is removed again on the way out."""
    try:
        yield
    except BaseException:
        trials = os.path.join(out, "trials")
        if created and (not os.path.isdir(trials) or not os.listdir(trials)):
            import shutil
            shutil.rmtree(out, ignore_errors=True)
        raise


@contextlib.contextmanager
def _sweep_lock(out):
    """One sweep at a time in a sweep folder: a second one fails at once."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, ".lock"), "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(f"another mlpfast sweep is running in {out}; wait for it, or name "
                            "another --out") from None
        yield
