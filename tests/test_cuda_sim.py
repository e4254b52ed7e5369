"""The CUDA kernels and engine under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, set by
conftest.py), with tiles and blocks patched small so that every tile has ragged edges.

The simulator runs each CUDA thread as a Python thread, so shapes stay tiny. It has no warp
shuffles: the softmax + cross-entropy phase runs its thread-per-row form here, and the
warp-per-row form is checked on a real GPU by test_cuda_gpu.py.
"""
import numpy as np
import pytest

from mlpfast import MLPClassifier, MLPRegressor, params
from mlpfast import reference as ref
from mlpfast.engine import NetSpec, resolve_device, simulator_enabled
from mlpfast.errors import DeviceError
from mlpfast.kernels import network
from mlpfast.registry import ACTIVATIONS

pytestmark = pytest.mark.skipif(not simulator_enabled(), reason="needs NUMBA_ENABLE_CUDASIM=1")

if simulator_enabled():
    from mlpfast.engine.cuda import CUDAEngine
    from mlpfast.kernels import cuda_kernels as ck

# 16 threads (4 x 4); tiles 4x4 with K steps of 3, and 8x8 with K steps of 4
SMALL = ((4, 4, 3), (8, 8, 4))
THREADS = (4, 4)
WIDTHS = (5, 7, 4, 3)


@pytest.fixture
def small_tiles(monkeypatch):
    """Engines built by the estimators use the small tiles too."""
    monkeypatch.setattr(ck, "TILES", SMALL)
    monkeypatch.setattr(ck, "TX", THREADS[0])
    monkeypatch.setattr(ck, "TY", THREADS[1])


def _kernels():
    return ck.make_kernels(SMALL, *THREADS)


@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 9, 13), (9, 17, 5)])
@pytest.mark.parametrize("grid", [1, 3])
def test_gemm_matches_reference(rng, M, K, N, grid):
    # grid 1 makes the tile choice take the largest config, grid 3 the smallest
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    C = np.full((M, N), np.nan, np.float32)
    _kernels().gemm_plain[grid, 16](A.ravel(), B.ravel(), C.ravel(), M, N, K,
                                    np.zeros((1, 1), np.float32), np.zeros(1, np.int32))
    np.testing.assert_allclose(C, ref.matmul(A, B), rtol=2e-5, atol=2e-5)


def _xent(Z, y):
    rows, C = Z.shape
    dZ = np.full(rows * C, np.nan, np.float32)
    acc = np.zeros(2, np.float32)
    _kernels().xent[2, 16](Z.ravel().astype(np.float32), y.astype(np.int32),
                           np.arange(rows, dtype=np.int32), dZ, acc, rows, C)
    return dZ.reshape(rows, C), acc


@pytest.mark.parametrize("rows,C", [(1, 2), (7, 3), (33, 10)])
def test_xent_matches_reference(rng, rows, C):
    Z = (3 * rng.standard_normal((rows, C))).astype(np.float32)
    y = rng.integers(0, C, rows)
    dZ, acc = _xent(Z, y)
    np.testing.assert_allclose(dZ, ref.xent_grad(Z.astype(np.float64), y), rtol=1e-5, atol=1e-7)
    assert acc[0] == pytest.approx(rows * ref.xent_loss(Z.astype(np.float64), y), rel=1e-5)
    assert acc[1] == np.sum(np.argmax(Z, axis=1) == y)


def test_xent_is_stable():
    Z = np.array([[1e4, -1e4, 0.0], [5.0, 5.0, 5.0], [-1e4, 1e4, 1e4 - 1]], np.float32)
    y = np.array([1, 0, 2])
    dZ, acc = _xent(Z, y)
    assert np.isfinite(dZ).all() and np.isfinite(acc).all()
    np.testing.assert_allclose(dZ, ref.xent_grad(Z.astype(np.float64), y), atol=1e-7)
    assert acc[0] == pytest.approx(3 * ref.xent_loss(Z.astype(np.float64), y), rel=1e-6)


def _problem(rng, classify, n=9):
    layout, size = params.make_layout(WIDTHS)
    theta = rng.uniform(-0.8, 0.8, size).astype(np.float32)
    X = rng.standard_normal((n, WIDTHS[0])).astype(np.float32)
    if classify:
        y = rng.integers(0, WIDTHS[-1], n).astype(np.int32)
        return layout, theta, X, y, np.zeros((n, 0), np.float32), y
    Y = rng.standard_normal((n, WIDTHS[-1])).astype(np.float32)
    return layout, theta, X, np.zeros(0, np.int32), Y, Y


@pytest.mark.parametrize("classify", [True, False])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_matches_reference(rng, activation, classify):
    """Every phase but the update: forward (gather, bias, activation), loss, weight gradient
    with its bias column, input gradient through f'."""
    layout, theta, X, y, Y, target = _problem(rng, classify)
    spec = NetSpec(WIDTHS, ACTIVATIONS[activation], classify, np.float32, network.ADAM, len(X))
    engine = CUDAEngine(spec, mode="persistent", tiles=SMALL, threads=THREADS)
    loss, grad = engine.gradient(theta, X, y, Y)
    coefs64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    ints64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    want_loss, dW, db = ref.gradient(coefs64, ints64, X.astype(np.float64), target, activation,
                                     classify)
    want = np.zeros(len(theta))
    params.assign(want, layout, dW, db)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want, rtol=2e-4, atol=2e-6)


def test_phased_mode_gives_the_persistent_gradient(rng):
    layout, theta, X, y, Y, _ = _problem(rng, True)
    spec = NetSpec(WIDTHS, ACTIVATIONS["tanh"], True, np.float32, network.ADAM, len(X))
    a = CUDAEngine(spec, mode="persistent", tiles=SMALL, threads=THREADS).gradient(theta, X, y, Y)
    b = CUDAEngine(spec, mode="phased", tiles=SMALL, threads=THREADS).gradient(theta, X, y, Y)
    # one block against three: other tile shapes and another order of the atomic loss sums
    assert a[0] == pytest.approx(b[0], rel=1e-6)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-7)


def _fit_both(make, X, y):
    cpu = make("cpu").fit(X, y)
    gpu = make("cuda").fit(X, y)
    assert gpu.device_ == "cuda"
    return cpu, gpu


@pytest.mark.parametrize("solver,activation,extra", [
    ("adam", "relu", {}),
    ("sgd", "tanh", {"momentum": 0.9, "nesterovs_momentum": True}),
    ("sgd", "logistic", {"momentum": 0.5, "nesterovs_momentum": False}),
])
def test_training_matches_cpu_engine(rng, small_tiles, solver, activation, extra):
    """Same initial weights, same batch order: one epoch of 3 steps (the last one short),
    with L2, agrees with the CPU engine to float32 rounding; so do the probabilities."""
    X = rng.standard_normal((19, 7)).astype(np.float32)
    y = rng.integers(0, 3, 19)

    def make(device):
        return MLPClassifier(hidden_layer_sizes=(9, 5), batch_size=8, max_iter=1,
                             random_state=0, solver=solver, activation=activation, alpha=1e-2,
                             learning_rate_init=0.05, device=device, **extra)
    with pytest.warns(Warning):
        cpu, gpu = _fit_both(make, X, y)
    scale = np.abs(cpu._theta).max()
    np.testing.assert_allclose(gpu._theta, cpu._theta, rtol=0, atol=1e-4 * scale)
    assert gpu.loss_ == pytest.approx(cpu.loss_, rel=1e-5)
    assert gpu.history_[0]["train_accuracy"] == cpu.history_[0]["train_accuracy"]
    spec = NetSpec(tuple(cpu._widths), ACTIVATIONS[activation], True, np.float32, 0, 1)
    proba = CUDAEngine(spec, tiles=SMALL, threads=THREADS).predict(cpu._theta, X)
    np.testing.assert_allclose(proba, cpu.predict_proba(X), atol=1e-6)


def test_regressor_matches_cpu_engine(rng, small_tiles):
    X = rng.standard_normal((13, 4)).astype(np.float32)
    Y = rng.standard_normal((13, 2))

    def make(device):
        return MLPRegressor(hidden_layer_sizes=(6,), batch_size=5, max_iter=1, random_state=0,
                            device=device, alpha=1e-3)
    with pytest.warns(Warning):
        cpu, gpu = _fit_both(make, X, Y)
    np.testing.assert_allclose(gpu._theta, cpu._theta, atol=1e-4 * np.abs(cpu._theta).max())
    assert gpu.loss_ == pytest.approx(cpu.loss_, rel=1e-5)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), atol=1e-5)


def test_progress_chunks_and_dropout(rng, small_tiles):
    """With a callback the epoch runs in chunks that report rows as they go; dropout draws a
    counter-based mask on the device, reproducibly for one random_state."""
    X = rng.standard_normal((12, 3)).astype(np.float32)
    y = rng.integers(0, 2, 12)
    events = []

    def fit():
        return MLPClassifier(hidden_layer_sizes=(4,), batch_size=4, max_iter=1, random_state=3,
                             dropout=0.5, device="cuda").fit(
            X, y, callback=lambda est, ev: events.append(ev))
    with pytest.warns(Warning):
        a = fit()
        done = [ev["rows_done"] for ev in events if ev["kind"] == "chunk"]
        b = fit()
    np.testing.assert_array_equal(a._theta, b._theta)
    assert done[-1] == 12 and done == sorted(done)
    assert np.isfinite(a.loss_)


def test_dropout_draws_are_uniform():
    u = np.array([ck.uniform(12345, 1, r, c) for r in range(64) for c in range(16)])
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.03 and abs((u < 0.3).mean() - 0.3) < 0.04


def test_float64_and_auto():
    spec = NetSpec(WIDTHS, 1, True, np.float64, network.ADAM, 4)
    with pytest.raises(DeviceError, match="the CUDA engine trains in float32"):
        CUDAEngine(spec)
    # the simulator serves an explicit 'cuda' (tests) but never 'auto'
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("auto") == "cpu"


def test_command_line_trains_on_cuda(tmp_path, small_tiles, rng):
    """`mlpfast train --device cuda` end to end (on the simulator): the run folder says cuda,
    and its model predicts on any machine."""
    import json

    import pandas as pd
    from click.testing import CliRunner

    from mlpfast.cli.main import cli
    n = 40
    csv = tmp_path / "d.csv"
    pd.DataFrame({"a": rng.standard_normal(n), "b": rng.choice(["x", "y"], n),
                  "t": rng.choice(["p", "q", "r"], n)}).to_csv(csv, index=False)
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", str(csv), "--device", "cuda", "--hidden", "3",
                                 "--epochs", "1", "--batch-size", "16", "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "run.json").read_text())
    assert summary["device"] == "cuda"
    r = CliRunner().invoke(cli, ["predict", str(out), str(csv), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "p.csv").read_text().splitlines()) == n + 1
    # float64 is refused by the CUDA engine: one line, no run folder left behind
    out64 = tmp_path / "run64"
    r = CliRunner().invoke(cli, ["train", str(csv), "--device", "cuda", "--dtype", "float64",
                                 "--epochs", "1", "--out", str(out64)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "Error: the CUDA engine trains in float32; use dtype='float32' or device='cpu' for float64")
    assert not out64.exists()
