"""Figures: `mlpfast plot`, `train --plot` and `bench --plot`, and mlpfast.plots behind them.

The files are checked as PNGs by their first bytes, and what they show through matplotlib's
objects (axes labels, curves by their gids, the best-epoch line's position against run.json and
metrics.csv). Runs are 3-4 epochs on 600 rows of the bundled letter data.
"""
import csv
import json
import math
import sys

import pytest
from click.testing import CliRunner
from conftest import DATASETS

from mlpfast import plots, tabular
from mlpfast.cli.main import cli

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning",
                                        "ignore::mlpfast.errors.DataNote")

PNG = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def lines(ax):
    """The gids of an axes' lines (curves and the best-epoch line), in drawing order."""
    return [ln.get_gid() for ln in ax.get_lines()]


def line(ax, gid):
    (found,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return found


def metrics(folder):
    with open(folder / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def letters(tmp_path_factory):
    """600 rows of letter-recognition (26 classes, every one in both splits)."""
    path = tmp_path_factory.mktemp("data") / "letters600.csv"
    with open(DATASETS / "letter-recognition.csv") as f:
        path.write_text("".join(next(f) for _ in range(601)))
    return path


@pytest.fixture(scope="module")
def run(letters, tmp_path_factory):
    """A classification run made by `mlpfast train --plot` (4 epochs; Adam: constant rate)."""
    out = tmp_path_factory.mktemp("runs") / "letters"
    r = invoke("train", letters, "--target", "Letter", "--epochs", 4, "--hidden", 16,
               "--out", out, "--plot")
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"wrote {out}/model.npz, metrics.csv, run.json, curves.png")
    return out


# ---- train --plot and mlpfast plot

def test_train_plot_writes_a_png_into_the_run_folder(run):
    png = run / "curves.png"
    assert png.read_bytes()[:8] == PNG and 5_000 < png.stat().st_size < 150_000


def test_classification_curves_show_loss_accuracy_and_the_best_epoch(run):
    fig = plots.learning_curves(run)
    rows = metrics(run)
    best = json.loads((run / "run.json").read_text())["best_epoch"]
    # the best epoch of run.json is the one with the highest validation accuracy in metrics.csv
    assert str(best) == max(rows, key=lambda r: float(r["val_accuracy"]))["epoch"]
    loss, acc = fig.axes  # no learning-rate panel: Adam's rate stayed as set
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    assert acc.get_xlabel() == "epoch"
    assert lines(loss) == ["train_loss", "val_loss", "best-epoch"]
    assert lines(acc) == ["train_accuracy", "val_accuracy", "best-epoch"]
    for ax in fig.axes:
        assert list(line(ax, "best-epoch").get_xdata()) == [best, best]
    epochs = [int(r["epoch"]) for r in rows]
    assert list(line(loss, "train_loss").get_xdata()) == epochs == [1, 2, 3, 4]
    for ax, key in ((loss, "train_loss"), (loss, "val_loss"), (acc, "train_accuracy"),
                    (acc, "val_accuracy")):
        assert list(line(ax, key).get_ydata()) == pytest.approx([float(r[key]) for r in rows])
    assert f"best epoch {best}" in loss.get_title(loc="left")
    assert [t.get_text() for t in loss.get_legend().get_texts()] == [
        "training", "validation", f"best epoch {best}"]


def test_plot_command_writes_curves_png_by_default_and_replaces_it(run, tmp_path):
    png = run / "curves.png"
    png.unlink()
    r = invoke("plot", run)
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and r.stderr.strip() == f"wrote {run}/curves.png"
    first = png.read_bytes()
    assert first[:8] == PNG
    # an existing figure is replaced, as predict's --out is (no --force in this CLI for files)
    png.write_bytes(b"old")
    assert invoke("plot", run).exit_code == 0
    assert png.read_bytes() == first  # and the same run draws the same bytes
    other = tmp_path / "elsewhere.svg"
    r = invoke("plot", run, "--out", other)
    assert r.exit_code == 0, r.output
    assert other.read_text().lstrip().startswith("<?xml") and "<svg" in other.read_text()
    assert not list(tmp_path.glob(".tmp-*")) and not list(run.glob(".tmp-*"))


def test_regression_curves_show_validation_r2(letters, tmp_path):
    out = tmp_path / "reg"
    tabular.train(str(letters), target="16", task="regression", out=out, max_iter=3,
                  hidden_layer_sizes=(16,))
    fig = plots.learning_curves(out)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "R²"]
    loss, r2 = fig.axes
    assert lines(loss) == ["train_loss", "val_loss", "best-epoch"]
    assert lines(r2) == ["val_r2", "best-epoch"]  # regression has no training score
    rows = metrics(out)
    best = json.loads((out / "run.json").read_text())["best_epoch"]
    assert str(best) == max(rows, key=lambda r: float(r["val_r2"]))["epoch"]
    assert list(line(r2, "best-epoch").get_xdata()) == [best, best]
    assert list(line(r2, "val_r2").get_ydata()) == pytest.approx([float(r["val_r2"]) for r in rows])


def test_a_changing_learning_rate_gets_its_own_panel(letters, tmp_path):
    out = tmp_path / "sgd"
    tabular.train(str(letters), target="Letter", out=out, solver="sgd",
                  learning_rate="invscaling", max_iter=3, hidden_layer_sizes=(16,))
    rows = metrics(out)
    rates = [float(r["learning_rate"]) for r in rows]
    assert len(set(rates)) == 3
    r = invoke("plot", out)
    assert r.exit_code == 0, r.output
    fig = plots.learning_curves(out)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy", "learning rate"]
    lr = fig.axes[2]
    assert lines(lr) == ["learning_rate", "best-epoch"]
    assert list(line(lr, "learning_rate").get_ydata()) == pytest.approx(rates)
    assert lr.get_yscale() == "log"  # 1e-3 down to 2e-5
    assert fig.axes[-1].get_xlabel() == "epoch"


def history(n=6, lr=None, best=4):
    """An estimator's history_: validation accuracy peaking at epoch `best`."""
    return [{"epoch": e, "train_loss": 2.0 / e, "train_accuracy": 0.5 + e / 20,
             "val_loss": 2.1 / e, "val_score": 0.9 - abs(e - best) / 50,
             "learning_rate": (lr or (lambda e: 1e-3))(e), "epoch_seconds": 0.1,
             "samples_per_second": 1e5} for e in range(1, n + 1)]


def test_a_history_list_plots_as_a_run_does(tmp_path):
    fig = plots.learning_curves(history())
    assert len(fig.axes) == 2
    assert [line(ax, "best-epoch").get_xdata()[0] for ax in fig.axes] == [4, 4]
    assert plots.best_epoch(history()) == 4
    fig = plots.learning_curves(history(lr=lambda e: 1e-3 if e < 4 else 2e-4), best=2)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy", "learning rate"]
    assert [line(ax, "best-epoch").get_xdata()[0] for ax in fig.axes] == [2, 2, 2]
    assert fig.axes[2].get_yscale() == "linear"
    # no validation rows: the best epoch is the lowest training loss
    plain = [{k: v for k, v in r.items() if not k.startswith("val")} for r in history()]
    fig = plots.learning_curves(plain, tmp_path / "plain.png")
    assert lines(fig.axes[0]) == ["train_loss", "best-epoch"]
    assert lines(fig.axes[1]) == ["train_accuracy", "best-epoch"]
    assert line(fig.axes[0], "best-epoch").get_xdata()[0] == 6
    assert (tmp_path / "plain.png").read_bytes()[:8] == PNG


def test_train_plot_after_an_interruption_draws_the_epochs_there_are(letters, tmp_path,
                                                                       monkeypatch):
    real = tabular.train

    def stopped_after_two(*args, callback, **kw):
        def cb(est, event):
            callback(est, event)
            if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
                raise KeyboardInterrupt  # as Ctrl-C at the end of epoch 2
            return False
        return real(*args, callback=cb, **kw)

    monkeypatch.setattr(tabular, "train", stopped_after_two)
    out = tmp_path / "stopped"
    r = invoke("train", letters, "--target", "Letter", "--epochs", 50, "--hidden", 16,
               "--out", out, "--plot")
    assert r.exit_code == 130, r.output
    assert "saved the metrics so far, curves.png, the best model so far" in r.stderr
    fig = plots.learning_curves(out)
    assert list(line(fig.axes[0], "train_loss").get_xdata()) == [1, 2]
    assert "(interrupted)" in fig.axes[0].get_title(loc="left")
    assert (out / "curves.png").read_bytes()[:8] == PNG


def test_train_plot_after_a_divergence_draws_the_epochs_before_it(letters, tmp_path,
                                                                   monkeypatch):
    real = tabular.train

    def blows_up_in_epoch_three(*args, callback, **kw):
        def cb(est, event):
            if event["kind"] == "epoch" and event["record"]["epoch"] == 2:
                est._lr = 1e12  # the next epoch's steps overflow
            return callback(est, event)
        return real(*args, callback=cb, **kw)

    monkeypatch.setattr(tabular, "train", blows_up_in_epoch_three)
    out = tmp_path / "diverged"
    r = invoke("train", letters, "--target", "Letter", "--epochs", 50, "--hidden", 16,
               "--optimizer", "sgd", "--out", out, "--plot")
    assert r.exit_code == 1, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: training diverged at epoch 3")
    assert "saved the metrics, curves.png and the best model so far" in last
    fig = plots.learning_curves(out)
    assert list(line(fig.axes[0], "train_loss").get_xdata()) == [1, 2]
    assert (out / "curves.png").read_bytes()[:8] == PNG


# ---- one-line errors

def one_error(r, text):
    assert r.exit_code == 1, r.output
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]  # one line
    assert r.stderr.startswith("Error: ") and text in r.stderr, r.stderr


def test_plot_refusals_are_one_line(run, tmp_path):
    one_error(invoke("plot", tmp_path / "nowhere"), "nowhere: no such run folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error(invoke("plot", empty), "holds no metrics.csv; not a run folder")
    one_error(invoke("plot", run / "run.json"), "is a file; name the run folder")
    one_error(invoke("plot", run, "--out", tmp_path / "missing" / "c.png"),
              f"--out {tmp_path}/missing/c.png: the folder {tmp_path}/missing does not exist")
    one_error(invoke("plot", run, "--out", tmp_path), "name a .png, .svg or .pdf file")
    (tmp_path / "a.png").mkdir()
    one_error(invoke("plot", run, "--out", tmp_path / "a.png"), "is a folder; name a file")
    one_error(invoke("plot", run, "--out", run / "metrics.csv"), "name a .png, .svg or .pdf")
    assert metrics(run)  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "empty"]  # nothing written


def test_damaged_metrics_are_one_line(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "metrics.csv").write_text("")
    one_error(invoke("plot", folder), "metrics.csv is empty")
    (folder / "metrics.csv").write_text("epoch,train_loss,val_loss,val_r2,learning_rate\n")
    one_error(invoke("plot", folder), "metrics.csv holds no epochs")
    (folder / "metrics.csv").write_text("a,b\n1,2\n")
    one_error(invoke("plot", folder), "not an mlpfast metrics file")
    (folder / "metrics.csv").write_text("epoch,train_loss\n1,x\n")
    one_error(invoke("plot", folder), "line 2, column 'train_loss': 'x' is not a number")
    (folder / "metrics.csv").write_text("epoch,train_loss\n1\n")
    one_error(invoke("plot", folder), "line 2 has 1 fields, the header 2")
    # without run.json (or with a damaged one) the curves still draw, from metrics.csv alone
    (folder / "metrics.csv").write_text("epoch,train_loss,val_loss,val_r2,learning_rate\n"
                                        "1,1.0,1.1,0.2,0.001\n2,0.8,,,0.001\n")
    (folder / "run.json").write_text("{not json")
    assert invoke("plot", folder).exit_code == 0
    fig = plots.learning_curves(folder)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "R²"]
    assert line(fig.axes[0], "best-epoch").get_xdata()[0] == 1  # the only finite R²
    assert math.isnan(line(fig.axes[1], "val_r2").get_ydata()[1])


def test_without_matplotlib_one_line_names_the_extra(run, letters, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    one_error(invoke("plot", run, "--out", tmp_path / "c.png"),
              "mlpfast plot needs matplotlib: pip install 'mlpfast[plot]'")
    out = tmp_path / "never"
    one_error(invoke("train", letters, "--target", "Letter", "--epochs", 2, "--out", out,
                     "--plot"), "--plot needs matplotlib: pip install 'mlpfast[plot]'")
    assert not out.exists() and not (tmp_path / "c.png").exists()  # refused before any work
    with pytest.raises(plots.MissingMatplotlib, match=r"needs matplotlib: pip install "
                                                      r"'mlpfast\[plot\]'") as caught:
        plots.learning_curves(history())
    assert isinstance(caught.value, ImportError)


# ---- the bench figure

BENCH = [
    {"workload": "W1", "engine": "mlpfast-cpu", "rows": 20000, "samples_per_second": 900_000.0},
    {"workload": "W1", "engine": "numpy", "rows": 20000, "samples_per_second": 30_000.0},
    {"workload": "W1", "engine": "sklearn", "rows": 20000, "samples_per_second": 60_000.0},
    {"workload": "W4", "engine": "mlpfast-cpu", "rows": 20000, "samples_per_second": 690_000.0},
    {"workload": "W4", "engine": "numpy", "rows": 20000, "samples_per_second": 23_000.0},
]


def test_bench_figure_is_linear_with_the_speed_ups_on_the_bars(tmp_path):
    fig = plots.bench_figure(BENCH, tmp_path / "b.png", title="a machine")
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG
    w1, w4 = fig.axes
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "W1: 32 features, 128-128 hidden, 10 classes, batch 256; 20,000 rows",
        "W4: 20 features, 64 hidden, 2 classes, batch 32; 20,000 rows"]
    for ax in fig.axes:
        assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    bars = {p.get_gid(): p.get_width() for p in w1.patches}
    assert bars == {"bar:W1:mlpfast-cpu": 900_000.0, "bar:W1:numpy": 30_000.0,
                    "bar:W1:sklearn": 60_000.0}
    assert [t.get_text() for t in w1.texts] == ["900k/s   30.0×", "30k/s   1.0×", "60k/s   2.0×"]
    assert [t.get_text() for t in w4.texts] == ["690k/s   30.0×", "23k/s   1.0×"]
    assert [t.get_text() for t in w1.get_yticklabels()] == ["mlpfast-cpu", "numpy", "sklearn"]
    assert fig.get_suptitle() == "a machine"
    # a CSV's bench (mlpfast bench data.csv) is named by its file
    fig = plots.bench_figure([{"workload": "d.csv", "engine": "numpy", "rows": 90,
                               "samples_per_second": 5.0}])
    assert fig.axes[0].get_title(loc="left") == "d.csv; 90 rows"
    assert [t.get_text() for t in fig.axes[0].texts] == ["5/s   1.0×"]


def test_bench_plot_checks_its_file_before_the_benchmark_runs(tmp_path):
    r = invoke("bench", "--workload", "W4", "--rows", 300, "--epochs", 1, "--device", "cpu",
               "--against", "numpy", "--plot", tmp_path / "no" / "b.png")
    one_error(r, f"--plot {tmp_path}/no/b.png: the folder {tmp_path}/no does not exist")
    png = tmp_path / "b.png"
    r = invoke("bench", "--workload", "W4", "--rows", 300, "--epochs", 1, "--device", "cpu",
               "--against", "numpy", "--plot", png)
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == PNG


def test_a_link_named_like_a_figure_onto_another_file_is_refused(tmp_path):
    from mlpfast.errors import DataError
    from mlpfast.plots import check_out
    target = tmp_path / "model.npz"
    target.write_bytes(b"keep me")
    link = tmp_path / "evil.png"
    link.symlink_to(target)
    with pytest.raises(DataError, match="is a link to"):
        check_out(link)
    assert target.read_bytes() == b"keep me"


# ---- a sweep's results (mlpfast sweep writes results.json; made here by hand, as it writes it)

def _sweep_folder(tmp_path, rows):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"spec": {}, "trials": rows, "best": {}}))
    return folder


def _trial(k, data, status="finished", **varied):
    return {"trial": f"t{k}", "data": data, **varied, "status": status, "error": "",
            "epochs_run": 3, "best_epoch": 3, "train_loss": 1.0 / (k + 1), "val_loss": 0.5,
            "val_accuracy": 0.5 + k / 100, "val_r2": None, "test_loss": None,
            "test_accuracy": None, "test_r2": None, "seconds": 1.0, "folder": f"f{k}"}


def test_sweep_figure_draws_the_metric_against_each_varied_option(tmp_path):
    rows = [_trial(k, f"/d/{'ab'[k % 2]}.csv", hidden=["64", "128,64"][k // 2 % 2],
                   lr=[0.001, 0.003][k // 4 % 2]) for k in range(8)]
    rows.append(_trial(8, "/d/a.csv", status="failed", hidden="64", lr=0.001))
    folder = _sweep_folder(tmp_path, rows)
    fig = plots.sweep_figure(folder)
    axes = fig.get_axes()
    assert [ax.get_xlabel() for ax in axes] == ["hidden", "lr"]
    assert axes[0].get_ylabel() == "validation accuracy"
    for ax, option in zip(axes, ["hidden", "lr"]):
        pts = {c.get_gid(): c.get_offsets() for c in ax.collections}
        assert set(pts) == {f"points:{option}:/d/a.csv", f"points:{option}:/d/b.csv"}
        # every finished trial once, at its metric; the failed one left out
        ys = sorted(float(y) for p in pts.values() for y in p[:, 1])
        assert ys == sorted(r["val_accuracy"] for r in rows[:8])
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["64", "128,64"]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["0.001", "0.003"]
    assert "8 trials (1 not finished, not shown)" in fig._suptitle.get_text()


def test_sweep_figure_puts_many_random_draws_on_a_log_axis_and_falls_back_to_training_loss(tmp_path):
    rows = [dict(_trial(k, "/d/a.csv", lr=1e-4 * 1.8 ** k), val_accuracy=None)
            for k in range(12)]
    fig = plots.sweep_figure(_sweep_folder(tmp_path, rows))
    (ax,) = fig.get_axes()
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "training loss (best epoch)"
    (pts,) = [c.get_offsets() for c in ax.collections]
    assert sorted(pts[:, 0]) == pytest.approx(sorted(r["lr"] for r in rows))


def test_plot_command_on_a_sweep_folder(tmp_path):
    rows = [_trial(k, "/d/a.csv", seed=k) for k in range(3)]
    folder = _sweep_folder(tmp_path, rows)
    r = invoke("plot", folder)
    assert r.exit_code == 0, r.output
    assert (folder / "sweep.png").read_bytes()[:8] == PNG
    r = invoke("plot", folder, "--out", tmp_path / "s.svg")
    assert r.exit_code == 0 and (tmp_path / "s.svg").exists()


@pytest.mark.parametrize("rows, message", [
    ([_trial(0, "/d/a.csv", status="interrupted", seed=0)],
     "no finished trial to plot (1 interrupted); run the sweep again"),
    ([_trial(0, "/d/a.csv")], "varies no option"),
])
def test_plot_of_a_sweep_without_anything_to_draw_says_why(tmp_path, rows, message):
    folder = _sweep_folder(tmp_path, rows)
    r = invoke("plot", folder)
    assert r.exit_code == 1 and r.output.startswith(f"Error: {folder}: ") and message in r.output
    assert not (folder / "sweep.png").exists()


def test_plot_of_a_damaged_sweep_results_file(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "results.json").write_text("{not json")
    r = invoke("plot", folder)
    assert r.exit_code == 1 and "is damaged; run the sweep again" in r.output
