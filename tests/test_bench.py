"""`mlpfast bench` on a tiny workload: the JSON and CSV have the documented shape (the numbers
themselves are not asserted: tests never judge speed)."""
import csv
import json

from click.testing import CliRunner

from mlpfast.cli.main import cli


def test_bench_writes_json_and_csv(tmp_path):
    js, cs = tmp_path / "b.json", tmp_path / "b.csv"
    r = CliRunner().invoke(cli, ["bench", "--workload", "W4", "--rows", "500", "--epochs", "2",
                                 "--device", "cpu,cuda", "--against", "numpy",
                                 "--json", str(js), "--csv", str(cs)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(js.read_text())
    assert set(doc["machine"]) >= {"cpu", "cores", "gpu", "versions"}
    engines = {res["engine"] for res in doc["results"]}
    assert {"mlpfast-cpu", "numpy"} <= engines
    for res in doc["results"]:
        assert set(res) == {"workload", "engine", "rows", "compile_seconds", "epoch_seconds",
                            "epoch_seconds_median", "samples_per_second", "gflops",
                            "ceiling_fraction", "transfer_seconds"}
        assert res["workload"] == "W4" and res["rows"] == 500 and len(res["epoch_seconds"]) == 2
        assert res["samples_per_second"] > 0
        assert res["transfer_seconds"] is None  # CPU engines copy nothing to a device
    with open(cs) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["results"]) and rows[0]["engine"] == doc["results"][0]["engine"]
    assert "speed-up of row engine over column engine" in r.stdout
    if doc["machine"]["gpu"] is None:
        assert "mlpfast-cuda skipped" in r.stderr


def test_bench_on_a_csv_and_bad_arguments(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 3},{'xyz'[i % 3]}\n" for i in range(90)))
    r = CliRunner().invoke(cli, ["bench", str(path), "--hidden", "8", "--batch-size", "16",
                                 "--epochs", "1", "--device", "cpu", "--against", "numpy"])
    assert r.exit_code == 0, r.output
    assert str(path) in r.stdout
    r = CliRunner().invoke(cli, ["bench", "--workload", "W9"])
    assert r.exit_code == 2 and "unknown workload 'W9'" in r.output
    r = CliRunner().invoke(cli, ["bench", "--against", "tensorflow"])
    assert r.exit_code == 2 and "unknown peer 'tensorflow'" in r.output


def test_bench_plot(tmp_path, monkeypatch):
    png = tmp_path / "b.png"
    args = ["bench", "--workload", "W4", "--rows", "300", "--epochs", "1", "--device", "cpu",
            "--against", "numpy", "--plot", str(png)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    # without matplotlib: one clear line before any work, no file
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    png.unlink()
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "--plot needs matplotlib: pip install 'mlpfast[bench]'" in r.output
    assert not png.exists()


def test_jax_peer_trains_the_workload_model(tmp_path):
    """The JAX peer (a jit-compiled lax.scan epoch with Adam) trains: its loss over the rows
    falls from the untrained model's, and bench reports it as jax-cpu."""
    import pytest
    pytest.importorskip("jax")
    from mlpfast import bench
    wl = bench.WORKLOADS["W4"]
    X, y = bench.synthetic(wl, rows=640)
    epoch = bench.ENGINES["jax-cpu"](X, y, wl, 1)
    before = epoch.loss()
    for _ in range(3):
        epoch()
    assert epoch.loss() < 0.9 * before
    js = tmp_path / "b.json"
    r = CliRunner().invoke(cli, ["bench", "--workload", "W4", "--rows", "300", "--epochs", "1",
                                 "--device", "cpu", "--against", "jax", "--json", str(js)])
    assert r.exit_code == 0, r.output
    assert {res["engine"] for res in json.loads(js.read_text())["results"]} == {
        "mlpfast-cpu", "jax-cpu"}


def test_engines_are_timed_in_a_process_of_their_own():
    """time_isolated runs an engine in a spawned process and returns time_engine's triple; an
    engine failing there is a RuntimeError naming it, in one line (the CLI notes it)."""
    import pytest

    from mlpfast import bench
    wl = bench.WORKLOADS["W4"]
    X, y = bench.synthetic(wl, rows=200)
    first, times, transfer = bench.time_isolated("numpy", X, y, wl, 2, 1)
    assert first > 0 and len(times) == 2 and transfer is None
    with pytest.raises(RuntimeError, match=r"^no-such-engine: KeyError: 'no-such-engine'$"):
        bench.time_isolated("no-such-engine", X, y, wl, 1, 1)
