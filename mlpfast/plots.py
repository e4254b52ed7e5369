"""Figures: a run's learning curves (`mlpfast plot`, `mlpfast train --plot`), a sweep's metric
against each varied option (`mlpfast plot SWEEP`) and the engines' speeds of `mlpfast bench
--plot`.

Each function returns a matplotlib Figure drawn on the Agg backend (no display needed) and,
given `out`, writes it there atomically (a temporary file beside it, renamed into place; the
format from the suffix: .png, .svg or .pdf). matplotlib is the `plot` extra; without it the
functions raise MissingMatplotlib, whose message says what to install. Nothing here prints.

The artists carry gids that say what they show, so that a figure can be checked through
matplotlib's objects: the curves 'train_loss', 'val_loss', 'train_accuracy', 'val_accuracy',
'val_r2', 'learning_rate'; the vertical line 'best-epoch' on every panel; in the bench
figure the bars 'bar:<workload>:<engine>'; in the sweep figure the points
'points:<option>:<data file>'.
"""
import csv
import json
import math
import os

from .errors import DataError, MLPFastError

# the figure formats `out` may name (what Agg writes without more packages)
FORMATS = ("png", "svg", "pdf")
CURVES = "curves.png"


class MissingMatplotlib(MLPFastError, ImportError):
    """matplotlib, which drawing needs, is not installed (pip install 'mlpfast[plot]')."""


def require_matplotlib(what="plotting"):
    """Import matplotlib with the Agg backend, or raise MissingMatplotlib naming `what` (e.g.
    '--plot') and the extra to install. Cheap once loaded: callers check before long work."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401 (Figure objects draw without pyplot's backends)
    except ImportError:
        raise MissingMatplotlib(f"{what} needs matplotlib: pip install 'mlpfast[plot]'") from None
    return matplotlib


# ---- reading a run

def read_run(folder):
    """(history, info) of a run folder: history is metrics.csv as one dict per epoch (numbers
    as floats, empty cells as NaN, `epoch` as int); info holds `task`, `best_epoch`, `status`,
    `data` (the data file's name) and `folder`, from run.json where it has them (a run folder
    without a readable run.json still plots: the task is read off metrics.csv's columns and
    the best epoch worked out as training does). DataError names what is missing or damaged."""
    folder = os.fspath(folder)
    if not os.path.exists(folder):
        raise DataError(f"{folder}: no such run folder")
    if not os.path.isdir(folder):
        raise DataError(f"{folder} is a file; name the run folder that holds metrics.csv")
    path = os.path.join(folder, "metrics.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise DataError(f"{folder}: holds no metrics.csv; not a run folder, or its first epoch "
                        "never finished") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise DataError(f"{path}: cannot be read ({why})") from None
    history = _parse_metrics(path, rows)
    summary = {}
    try:
        with open(os.path.join(folder, "run.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        pass
    if not isinstance(summary, dict):
        summary = {}
    data = summary.get("data") if isinstance(summary.get("data"), dict) else {}
    best = summary.get("best_epoch")
    info = {"task": data.get("task") if data.get("task") in ("classification", "regression")
            else _task_of(history[0]),
            "best_epoch": best if isinstance(best, int) else None,
            "status": summary.get("status"), "data": data.get("file"), "folder": folder}
    return history, info


def _parse_metrics(path, rows):
    if not rows or not rows[0]:
        raise DataError(f"{path} is empty; no epoch finished in this run")
    header = [h.strip() for h in rows[0]]
    if "epoch" not in header or "train_loss" not in header:
        raise DataError(f"{path} has no 'epoch' and 'train_loss' columns; not an mlpfast "
                        "metrics file")
    history = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: line {line} has {len(row)} fields, the header "
                            f"{len(header)}; the file is damaged")
        record = {}
        for name, cell in zip(header, row):
            try:
                record[name] = float(cell) if cell.strip() else math.nan
            except ValueError:
                raise DataError(f"{path}: line {line}, column {name!r}: {cell!r} is not a "
                                "number; the file is damaged") from None
        if not math.isfinite(record["epoch"]):
            raise DataError(f"{path}: line {line} has no epoch number; the file is damaged")
        record["epoch"] = int(record["epoch"])
        history.append(record)
    if not history:
        raise DataError(f"{path} holds no epochs; no epoch finished in this run")
    return history


def _task_of(record):
    """Classification records (metrics.csv's and the estimator's) have a training accuracy;
    regression ones do not."""
    return "classification" if "train_accuracy" in record else "regression"


def _normalise(history, task):
    """History records (the estimator's history_, with val_score, or metrics.csv's rows) as
    metrics.csv names them, with non-finite numbers as NaN."""
    out = []
    for r in history:
        rec = dict(r)
        if "val_score" in rec:
            score = rec.pop("val_score")
            rec.setdefault("val_accuracy" if task == "classification" else "val_r2", score)
        for k, v in rec.items():
            if k != "epoch":
                try:
                    v = float(v) if v is not None else math.nan
                except (TypeError, ValueError):
                    v = math.nan
                rec[k] = v if math.isfinite(v) else math.nan
        out.append(rec)
    return out


def best_epoch(history, task=None):
    """The epoch training keeps as the best: the highest validation score (accuracy or R²; the
    first of equals) when there are validation figures, else the lowest training loss. None
    for an empty history or one without a finite figure."""
    if not history:
        return None
    task = task or _task_of(history[0])
    recs = _normalise(history, task)
    key = "val_accuracy" if "val_accuracy" in recs[0] else "val_r2" if "val_r2" in recs[0] else None
    if key is not None and any(math.isfinite(r[key]) for r in recs):
        return max((r for r in recs if math.isfinite(r[key])), key=lambda r: r[key])["epoch"]
    finite = [r for r in recs if math.isfinite(r["train_loss"])]
    return min(finite, key=lambda r: r["train_loss"])["epoch"] if finite else None


# ---- learning curves

def learning_curves(source, out=None, *, best=None, title=None):
    """The learning curves of a run, as a matplotlib Figure (written to `out` when given).

    source: a run folder (path), read_run's (history, info), a Run (mlpfast.tabular's: what
    train returns, or the `.run` of a DivergenceError), or a history list (an estimator's
    history_, or metrics.csv rows as dicts). Panels, over epochs: the training and
    validation loss; the training and validation accuracy (classification) or the validation
    R² (regression; none without validation rows); and the learning rate, only when it
    changed during the run. A dashed vertical line (gid 'best-epoch') marks the best epoch
    on every panel: `best`, else run.json's, else worked out as training does (best_epoch()).
    An interrupted or diverged run plots the epochs it has.

    Raises DataError for a folder that is not a run folder or a history without epochs, and
    MissingMatplotlib without matplotlib.
    """
    history, info = _source(source)
    if not history:
        raise DataError("the run has no finished epoch to plot")
    task = info.get("task") or _task_of(history[0])
    recs = _normalise(history, task)
    if best is None:
        best = info.get("best_epoch")
    epochs = [r["epoch"] for r in recs]
    if best not in epochs:
        best = best_epoch(recs, task)
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    score = ("val_accuracy" if task == "classification" else "val_r2")
    has_score = (task == "classification" and _any(recs, "train_accuracy")) or _any(recs, score)
    lrs = [r.get("learning_rate", math.nan) for r in recs]
    finite_lr = [v for v in lrs if math.isfinite(v)]
    lr_changed = len(set(finite_lr)) > 1
    panels = 1 + has_score + lr_changed
    fig = Figure(figsize=(7.0, 1.2 + 2.3 * panels), dpi=100)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    style = dict(lw=1.6, marker="o" if len(recs) <= 30 else None, ms=3)

    ax = axes[0]
    _curve(ax, epochs, recs, "train_loss", "training", "C0", style)
    _curve(ax, epochs, recs, "val_loss", "validation", "C1", style)
    ax.set_ylabel("loss")
    losses = [v for r in recs for v in (r["train_loss"], r.get("val_loss", math.nan))
              if math.isfinite(v) and v > 0]
    if losses and max(losses) / min(losses) > 30:
        ax.set_yscale("log")  # a first epoch far above the rest would flatten the curve
    panel = 1
    if has_score:
        ax = axes[panel]
        panel += 1
        if task == "classification":
            _curve(ax, epochs, recs, "train_accuracy", "training", "C0", style)
            _curve(ax, epochs, recs, "val_accuracy", "validation", "C1", style)
            ax.set_ylabel("accuracy")
        else:
            _curve(ax, epochs, recs, "val_r2", "validation", "C1", style)
            ax.set_ylabel("R²")
            low = min((r["val_r2"] for r in recs if math.isfinite(r["val_r2"])), default=0)
            if low < -1:  # early epochs far below 0 would flatten the rest
                top = max(r["val_r2"] for r in recs if math.isfinite(r["val_r2"]))
                ax.set_ylim(-1.05, max(top, 0) + 0.05)
                ax.text(0.01, 0.02, f"lowest R² {low:.3g}, below the axis", fontsize=8,
                        color="0.4", transform=ax.transAxes)
    if lr_changed:
        ax = axes[panel]
        # each epoch's rate as a level around its epoch (the rate it trained with)
        ax.plot(epochs, lrs, drawstyle="steps-mid", color="C2", gid="learning_rate",
                label="learning rate", **style)
        ax.set_ylabel("learning rate")
        if max(finite_lr) / max(min(finite_lr), 1e-300) > 10:
            ax.set_yscale("log")
    for ax in axes:
        if best is not None:
            ax.axvline(best, color="0.35", ls="--", lw=1.0, gid="best-epoch",
                       label=f"best epoch {best}")
        ax.grid(True, color="0.9", lw=0.8)
        ax.set_axisbelow(True)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # one legend, on the top panel: the colours and the dashed line mean the same below it
    axes[0].legend(fontsize=8, loc="best", frameon=False)
    axes[-1].set_xlabel("epoch")
    axes[0].set_title(title if title is not None else _title(info, recs, best, task),
                      fontsize=10, loc="left")
    fig.tight_layout()
    if out is not None:
        save(fig, out)
    return fig


def plot_run(folder, out=None, *, option=None):
    """Write the learning curves of the run folder `folder` to `out` (default:
    folder/curves.png, replaced when there) and return the path written. Everything is
    checked before drawing: the folder and its metrics.csv (read_run), matplotlib, and `out`
    (check_out: a .png/.svg/.pdf file in an existing folder; its messages name `option`, the
    command's option for `out`, when given)."""
    history, info = read_run(folder)
    out = os.path.join(os.fspath(folder), CURVES) if out is None else os.fspath(out)
    require_matplotlib()
    check_out(out, option)
    learning_curves((history, info), out)
    return out


def _source(source):
    """(history, info) of a run folder, a Run or a history list."""
    if isinstance(source, (str, os.PathLike)):
        return read_run(source)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], dict):
        return list(source[0]), source[1]  # what read_run returned
    if hasattr(source, "history") and hasattr(source, "summary"):  # a tabular Run
        summary = source.summary or {}
        data = summary.get("data") or {}
        return list(source.history), {
            "task": getattr(source, "task", None) or data.get("task"),
            "best_epoch": summary.get("best_epoch"), "status": summary.get("status"),
            "data": data.get("file"), "folder": getattr(source, "folder", None)}
    try:
        history = [dict(r) for r in source]
    except (TypeError, ValueError):
        raise TypeError("learning_curves takes a run folder, a Run or a list of per-epoch "
                        f"dicts, not {type(source).__name__}") from None
    return history, {}


def _any(recs, key):
    return any(math.isfinite(r.get(key, math.nan)) for r in recs)


def _curve(ax, epochs, recs, key, label, color, style):
    if not _any(recs, key):
        return
    ax.plot(epochs, [r.get(key, math.nan) for r in recs], color=color, label=label, gid=key,
            **style)


def _title(info, recs, best, task):
    parts = []
    if info.get("folder"):
        parts.append(os.path.basename(os.path.normpath(os.fspath(info["folder"]))))
    if info.get("data"):
        parts.append(os.path.basename(str(info["data"])))
    head = ": ".join(parts) if parts else "learning curves"
    n = len(recs)
    status = info.get("status")
    head += f", {n} epoch{'s' if n != 1 else ''}" + (
        f" ({status})" if status in ("interrupted", "diverged", "running") else "")
    if best is not None:
        r = next(r for r in recs if r["epoch"] == best)
        key, name = (("val_accuracy", "validation accuracy") if task == "classification" else
                     ("val_r2", "validation R²"))
        if math.isfinite(r.get(key, math.nan)):
            head += f"; best epoch {best}: {name} {r[key]:.4f}"
        else:
            head += f"; best epoch {best}: training loss {r['train_loss']:.4f}"
    return head


# ---- the bench figure

def bench_figure(results, out=None, *, title=None):
    """`mlpfast bench` results (its JSON's 'results' list) as horizontal bars of samples per
    second on a linear axis, one panel per workload (each its own scale: workloads differ by
    orders of magnitude, engines within one are what is compared). Each bar is labelled with
    its samples/s and its speed-up over the slowest engine of its workload ('1.0×' on that
    one). mlpfast's engines are drawn in blue, the peers in grey. `title`: a line above the
    panels (the CLI names the machine). Returns the Figure; written to `out` when given."""
    results = list(results)
    if not results:
        raise DataError("no bench results to plot")
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    workloads = list(dict.fromkeys(r["workload"] for r in results))
    engines = list(dict.fromkeys(r["engine"] for r in results))
    height = sum(0.55 + 0.36 * len([r for r in results if r["workload"] == w]) for w in workloads)
    fig = Figure(figsize=(7.0, 0.5 + height), dpi=100)
    ratios = [len([r for r in results if r["workload"] == w]) + 0.6 for w in workloads]
    axes = fig.subplots(len(workloads), 1, squeeze=False,
                        gridspec_kw={"height_ratios": ratios})[:, 0]
    for ax, wl in zip(axes, workloads):
        rs = [r for r in results if r["workload"] == wl]
        rs.sort(key=lambda r: engines.index(r["engine"]))
        speeds = [r["samples_per_second"] for r in rs]
        slowest = min(speeds)
        ys = list(range(len(rs)))[::-1]  # the first engine on top
        colors = ["#1f5fa6" if r["engine"].startswith("mlpfast") else "#9a9a9a" for r in rs]
        for y, r, s, c in zip(ys, rs, speeds, colors):
            ax.barh(y, s, height=0.7, color=c, gid=f"bar:{wl}:{r['engine']}")
        ax.set_yticks(ys, [r["engine"] for r in rs])
        ax.set_xlim(0, max(speeds) * 1.32)  # room for the labels right of the longest bar
        for y, s in zip(ys, speeds):
            ax.text(s + max(speeds) * 0.01, y, f"{_si(s)}/s   {s / slowest:.1f}×",
                    va="center", ha="left", fontsize=9, gid="speed-up")
        ax.set_title(_workload_title(wl, rs[0].get("rows")), fontsize=10, loc="left")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, axis="x", color="0.9", lw=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
    axes[-1].set_xlabel("samples per second (steady-state epochs);  ×: speed-up over the slowest")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if out is not None:
        save(fig, out)
    return fig


SWEEP = "sweep.png"
# the metric a sweep's trials are compared by, in order of preference (mlpfast.sweeps ranks
# the best trial by the same)
_SWEEP_METRICS = (("val_accuracy", "validation accuracy"), ("val_r2", "validation R2"),
                  ("test_accuracy", "test accuracy"), ("test_r2", "test R2"),
                  ("train_loss", "training loss (best epoch)"))


def read_sweep(folder):
    """(rows, varied options) of a sweep folder's results.json (mlpfast.sweeps): the rows as
    dicts, the varied options in spec order. DataError for a folder that holds no readable
    sweep results."""
    path = os.path.join(os.fspath(folder), "results.json")
    try:
        with open(path) as f:
            data = json.load(f)
        rows = list(data["trials"])
    except OSError:
        raise DataError(f"{folder}: no results.json; not a sweep folder (mlpfast sweep writes "
                        "one)") from None
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path} is damaged; run the sweep again to rewrite it") from None
    from .sweeps import FIXED_COLUMNS
    varied = list(dict.fromkeys(k for r in rows for k in r if k not in FIXED_COLUMNS))
    return rows, varied


def sweep_figure(source, out=None, *, title=None):
    """A sweep's results (a sweep folder, or the DataFrame mlpfast.sweep returns): the metric
    against each varied option, a panel per option, a point per finished trial, a colour per
    data file. The metric is the first the trials have of validation accuracy, validation R2,
    test accuracy, test R2 and best training loss; numeric options on a linear axis (a log
    axis when they span over a factor of 20, all positive), others as categories in the order
    of the spec. Trials that did not finish are left out and counted in the title. Returns
    the Figure; written to `out` when given. DataError when no trial finished or nothing
    varied."""
    if isinstance(source, (str, os.PathLike)):
        rows, varied = read_sweep(source)
    else:
        from .sweeps import FIXED_COLUMNS
        rows = source.to_dict("records")
        varied = [c for c in source.columns if c not in FIXED_COLUMNS]
    done = [r for r in rows if r.get("status") in ("finished", "skipped")]
    if not done:
        counts = {}
        for r in rows:
            counts[r.get("status")] = counts.get(r.get("status"), 0) + 1
        shown = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no trials"
        raise DataError(f"no finished trial to plot ({shown}); run the sweep again to finish "
                        "its trials")
    if not varied:
        raise DataError("the sweep varies no option: nothing to plot against")
    key, label = next(((k, lab) for k, lab in _SWEEP_METRICS
                       if any(_finite(r.get(k)) for r in done)), (None, None))
    if key is None:
        raise DataError("the finished trials have no metric to plot")
    require_matplotlib()
    from matplotlib.figure import Figure
    files = list(dict.fromkeys(r["data"] for r in done))
    colors = ["#1f5fa6", "#d9730d", "#2a9d4b", "#b3261e", "#7b4fa8", "#6d6d6d"]
    n = len(varied)
    fig = Figure(figsize=(3.2 * n + 0.6, 3.4), dpi=100)
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, option in zip(axes, varied):
        values = [r.get(option) for r in done]
        # a few values (a grid's) as categories, evenly spaced; many (random draws) on an axis
        numeric = all(_finite(v) for v in values) and len(set(values)) > 8
        if numeric:
            xs = [float(v) for v in values]
            if min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
        else:
            order = list(dict.fromkeys(values))
            if all(_finite(v) for v in order):
                order.sort()
            xs = [order.index(v) + 0.12 * (files.index(r["data"]) - (len(files) - 1) / 2)
                  for v, r in zip(values, done)]  # each file's points beside the others'
            order = [_shown(v) for v in order]
            ax.set_xticks(range(len(order)), order)
            ax.set_xlim(-0.5, len(order) - 0.5)
        for k, data in enumerate(files):
            pts = [(x, r[key]) for x, r in zip(xs, done) if r["data"] == data and _finite(r[key])]
            if pts:
                ax.scatter(*zip(*pts), s=22, alpha=0.8, color=colors[k % len(colors)],
                           label=os.path.basename(data), gid=f"points:{option}:{data}")
        ax.set_xlabel(option)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, color="0.92", lw=0.8)
        ax.set_axisbelow(True)
    axes[0].set_ylabel(label)
    if len(files) > 1:
        axes[-1].legend(fontsize=8, frameon=False)
    left = len(rows) - len(done)
    fig.suptitle((title + ": " if title else "") + f"{len(done)} trials" +
                 (f" ({left} not finished, not shown)" if left else ""), fontsize=10)
    fig.tight_layout()
    if out is not None:
        save(fig, out)
    return fig


def _shown(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plot_sweep(folder, out=None, *, option=None):
    """Write the figure of the sweep folder `folder` (sweep_figure) to `out` (default:
    folder/sweep.png) and return the path written; checked before drawing as plot_run is."""
    rows, varied = read_sweep(folder)
    out = os.path.join(os.fspath(folder), SWEEP) if out is None else os.fspath(out)
    require_matplotlib()
    check_out(out, option)
    try:
        sweep_figure(folder, out, title=os.path.basename(os.path.abspath(os.fspath(folder))))
    except DataError as exc:
        raise DataError(f"{os.fspath(folder)}: {exc}") from None
    return out


def _workload_title(name, rows):
    """'W1: 32 features, 128-128 hidden, 10 classes, batch 256; 20,000 rows' for the named
    workloads of mlpfast.bench, the name (a data file) and rows for others."""
    from .bench import WORKLOADS
    wl = WORKLOADS.get(name)
    shape = (f": {wl.features} features, {'-'.join(map(str, wl.hidden))} hidden, "
             f"{wl.classes} classes, batch {wl.batch}" if wl is not None else "")
    return f"{name}{shape}" + (f"; {rows:,} rows" if rows else "")


def _si(v):
    """12,345,678 -> '12.3M'; 950 -> '950'."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            x = v / div
            return f"{x:.3g}{unit}" if x < 100 else f"{x:.0f}{unit}"
    return f"{v:.3g}" if v else "0"


# ---- writing

def check_out(out, option=None):
    """Refuse, before any drawing, an `out` that cannot take a figure: a suffix other than
    .png/.svg/.pdf (which also keeps a run folder's own files safe), a folder, or a parent
    folder that is missing or not writable; the message starts with `option` (the command's
    option naming the file, or None). Returns the format ('png', ...)."""
    out = os.fspath(out)
    named = f"{option} {out}" if option else out
    fmt = os.path.splitext(out)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise DataError(f"{named}: name a .png, .svg or .pdf file")
    # a link is written through: where it leads must be a figure's name too (a link named
    # x.png onto a model or a data file would be overwritten)
    real = os.path.realpath(out)
    if os.path.splitext(real)[1].lower().lstrip(".") not in FORMATS:
        raise DataError(f"{named} is a link to {real}, which is no .png, .svg or .pdf file; "
                        "name another file")
    if os.path.isdir(out):
        raise DataError(f"{named} is a folder; name a file")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise DataError(f"{named}: the folder {os.path.dirname(out) or parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DataError(f"{named}: cannot write in {parent} (permission denied)")
    return fmt


def save(fig, out):
    """Write `fig` to `out` atomically (the format from its suffix; see check_out); an
    existing file is replaced once the new one is complete."""
    from .model_io import atomic_write
    fmt = check_out(out)
    target = os.path.realpath(os.fspath(out))
    try:
        atomic_write(target, lambda f: fig.savefig(f, format=fmt, dpi=fig.dpi,
                                                   metadata=_metadata(fmt)))
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _metadata(fmt):
    # no creation date or version in the file: the same figure gives the same bytes
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"Creator": None, "Producer": None, "CreationDate": None}
    return {"Creator": None, "Date": None}


__all__ = ["learning_curves", "plot_run", "sweep_figure", "plot_sweep", "read_sweep", "bench_figure", "read_run", "best_epoch", "save",
           "check_out", "require_matplotlib", "MissingMatplotlib"]
