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
from mlpfast.kernels.softmax import OUT_EXP, OUT_IDENTITY, OUT_LOGISTIC, OUT_SOFTMAX
from mlpfast.registry import ACTIVATIONS

pytestmark = pytest.mark.skipif(not simulator_enabled(), reason="needs NUMBA_ENABLE_CUDASIM=1")

if simulator_enabled():
    from mlpfast.engine.cuda import CUDAEngine
    from mlpfast.kernels import cuda_kernels as ck

# 16 threads (4 x 4); tiles 4x4 with K steps of 3, and 8x8 with K steps of 4
SMALL = ((4, 4, 3), (8, 8, 4))
THREADS = (4, 4)
WIDTHS = (5, 7, 4, 3)
OUTPUTS = [OUT_IDENTITY, OUT_SOFTMAX, OUT_LOGISTIC, OUT_EXP]
OUTPUT_IDS = ["identity", "softmax", "logistic", "exp"]


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


def _targets(rng, output, n, C):
    """(y, Y, target) for an output kind: class indices for softmax, else Y (n, C): normal
    values, {0, 1} labels, or Poisson counts (zeros among them)."""
    if output == OUT_SOFTMAX:
        y = rng.integers(0, C, n).astype(np.int32)
        return y, np.zeros((n, 0), np.float32), y
    if output == OUT_LOGISTIC:
        Y = (rng.random((n, C)) < 0.4).astype(np.float32)
    elif output == OUT_EXP:
        Y = rng.poisson(1.5, (n, C)).astype(np.float32)
    else:
        Y = rng.standard_normal((n, C)).astype(np.float32)
    return np.zeros(0, np.int32), Y, Y.astype(np.float64)


def _problem(rng, output, n=9, widths=WIDTHS):
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.8, 0.8, size).astype(np.float32)
    X = rng.standard_normal((n, widths[0])).astype(np.float32)
    return (layout, theta, X) + _targets(rng, int(output), n, widths[-1])


def _weights(rng, n):
    """Sample weights in [0, 3) with a zero among them."""
    w = 3 * rng.random(n)
    w[1] = 0.0
    return w


def _ref_gradient(theta, layout, X, target, activation, output, alpha=0.0, sample_weight=None):
    """reference.gradient at float32 theta, as (loss, flat gradient)."""
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    loss, dW, db = ref.gradient(c64, b64, np.asarray(X, np.float64), target, activation, output,
                                alpha, sample_weight)
    flat = np.zeros(len(theta))
    params.assign(flat, layout, dW, db)
    return loss, flat


def _engine(output, activation="tanh", solver=network.SGD, batch=9, widths=WIDTHS,
            mode="persistent"):
    spec = NetSpec(tuple(widths), ACTIVATIONS[activation], output, np.float32, solver, batch)
    return CUDAEngine(spec, mode=mode, tiles=SMALL, threads=THREADS)


@pytest.mark.parametrize("output", OUTPUTS, ids=OUTPUT_IDS)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_matches_reference(rng, activation, output):
    """Every phase of a step: forward (gather, bias, activation), each output kind's loss and
    delta, weight gradient with its bias column, input gradient through f'; the update's SGD
    step at learning rate -1 leaves the gradient in the velocity."""
    layout, theta, X, y, Y, target = _problem(rng, output)
    loss, grad = _engine(output, activation, network.ADAM).gradient(theta, X, y, Y)
    want_loss, want = _ref_gradient(theta, layout, X, target, activation, output)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize("output", OUTPUTS, ids=OUTPUT_IDS)
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_weighted_gradient_matches_reference(rng, output, alpha):
    """scikit-learn's weighted objective: w_r / sum(w) per row's delta, L2 over sum(w), loss
    the weighted mean plus 0.5 * alpha * ||W||^2 / sum(w); a zero weight among the rows."""
    layout, theta, X, y, Y, target = _problem(rng, output)
    w = _weights(rng, len(X))
    loss, grad = _engine(output, "relu").gradient(theta, X, y, Y, alpha, sample_weight=w)
    want_loss, want = _ref_gradient(theta, layout, X, target, "relu", output, alpha, w)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want, rtol=2e-4, atol=2e-6)


def _output_layer(bias, n=3):
    """One weight layer (2 -> C) with zero weights: every row's output pre-activation is bias."""
    C = len(bias)
    layout, size = params.make_layout((2, C))
    theta = np.zeros(size, np.float32)
    theta[layout[0, 1]:] = bias
    return layout, theta, np.ones((n, 2), np.float32)


def test_binary_cross_entropy_is_stable():
    """Logits of +-1e4 (sigmoid exactly 0 or 1 in float32): the loss is finite, ~0 for the
    right label and ~|z| for the wrong one; the hits count rows whose every label is right."""
    layout, theta, X = _output_layer([1e4, -1e4, 0.5])
    Y = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]], np.float32)
    engine = _engine(OUT_LOGISTIC, widths=(2, 3), batch=3)
    loss, grad = engine.gradient(theta, X, np.zeros(0, np.int32), Y)
    want_loss, want = _ref_gradient(theta, layout, X, Y.astype(np.float64), "relu",
                                    OUT_LOGISTIC)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)
    # row 0 is the one right everywhere
    assert engine.d_stats.copy_to_host()[0, ck.ST_CORRECT] == 1


def test_poisson_loss_with_zero_counts():
    """y log y taken as 0 at y = 0: a row of zeros costs exactly mu = exp(z)."""
    layout, theta, X = _output_layer([2.0, -3.0, 0.0], n=2)
    Y = np.array([[0, 0, 0], [5, 0, 1]], np.float32)
    engine = _engine(OUT_EXP, widths=(2, 3), batch=2)
    loss, grad = engine.gradient(theta, X, np.zeros(0, np.int32), Y, sample_weight=[1.0, 0.0])
    assert loss == pytest.approx(np.exp([2.0, -3.0, 0.0]).sum(), rel=1e-6)
    want_loss, want = _ref_gradient(theta, layout, X, Y.astype(np.float64), "relu", OUT_EXP,
                                    sample_weight=[1.0, 0.0])
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)
    assert engine.d_stats.copy_to_host()[0, ck.ST_CORRECT] == 0


@pytest.mark.parametrize("output", OUTPUTS, ids=OUTPUT_IDS)
def test_predict_applies_the_output_activation(rng, output):
    layout, theta, X, *_ = _problem(rng, output, n=11)
    got = _engine(output).predict(theta, X)
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    Z = ref.forward(c64, b64, X.astype(np.float64), "tanh")[-1]
    np.testing.assert_allclose(got, ref.OUTPUTS[output][2](Z), rtol=1e-5, atol=1e-6)


def _hyper(lr, alpha=0.0, momentum=0.0):
    h = np.zeros(7, np.float64)
    h[network.H_LR] = lr
    h[network.H_ALPHA] = alpha
    h[network.H_MOMENTUM] = momentum
    h[network.H_BETA1], h[network.H_BETA2], h[network.H_EPSILON] = 0.9, 0.999, 1e-8
    return h


def _hits(theta, layout, X, target, output):
    """Rows predicted right: softmax argmax == y, logistic every (z > 0) == (y > 0.5)."""
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    Z = ref.forward(c64, b64, np.asarray(X, np.float64), "tanh")[-1]
    if output == OUT_SOFTMAX:
        return int((Z.argmax(axis=1) == target).sum())
    if output == OUT_LOGISTIC:
        return int(((Z > 0) == (target > 0.5)).all(axis=1).sum())
    return 0


def _reference_epoch(theta, layout, X, target, w, perm, batch, output, alpha, lr, adam_t=None):
    """One epoch in float64 by reference.gradient: plain SGD (each weight moves by -lr times
    its gradient) or, with adam_t (the step count so far), Adam. Skips minibatches whose
    weights sum to 0. Returns (theta, summed loss (rows * minibatch loss), hits, adam_t)."""
    theta = theta.astype(np.float64)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    total, hits = 0.0, 0
    for start in range(0, len(X), batch):
        rows = perm[start:start + batch]
        wb = None if w is None else w[rows]
        if wb is not None and wb.sum() == 0:
            continue
        loss, g = _ref_gradient(theta, layout, X[rows], target[rows], "tanh", output, alpha, wb)
        total += len(rows) * loss
        hits += _hits(theta, layout, X[rows], target[rows], output)
        if adam_t is None:
            theta = theta - lr * g
        else:
            adam_t += 1
            theta = ref.adam_step([theta], [g], [m], [v], adam_t, lr)[0]
    return theta, total, hits, adam_t


@pytest.mark.parametrize("output", OUTPUTS, ids=OUTPUT_IDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_epoch_matches_reference_sgd(rng, output, weighted):
    """One shuffled epoch of 3 minibatches (the last short) with L2: each step moves the
    weights by -lr * the reference gradient of its rows (weights summed per minibatch in the
    epoch's order), and the totals are scikit-learn's (rows * minibatch loss, hits, rows)."""
    layout, theta, X, y, Y, target = _problem(rng, output, n=11)
    w = 0.5 + 2 * rng.random(len(X)) if weighted else None
    if weighted:
        w[[0, 5]] = 0.0
    engine = _engine(output, batch=4, mode="phased" if weighted else "persistent")
    th = theta.copy()
    engine.start(th, np.zeros_like(th), np.zeros(0, np.float32), X, y, Y, sample_weight=w)
    state = np.array([7], np.uint64)
    totals = engine.train_epoch(state, True, _hyper(0.2, alpha=0.05), np.zeros(2, np.int64))
    engine.sync()
    want, loss, hits, _ = _reference_epoch(theta, layout, X, target, w, engine.perm.copy(), 4,
                                           output, 0.05, 0.2)
    assert not np.array_equal(engine.perm, np.arange(len(X)))
    np.testing.assert_allclose(th, want, rtol=0, atol=2e-5 * np.abs(want).max())
    assert totals[0] == pytest.approx(loss, rel=2e-5)
    assert totals[1] == hits and totals[2] == len(X)


@pytest.mark.parametrize("mode", ["persistent", "phased"])
def test_zero_weight_minibatch_is_skipped(rng, mode):
    """Adam over minibatches whose middle one weighs 0: no update there, no Adam step (the
    count moves by 2, the next step uses t = 2), nothing added to loss or hits."""
    layout, theta, X, y, Y, target = _problem(rng, OUT_SOFTMAX, n=11)
    w = rng.random(len(X)) + 0.1
    w[4:8] = 0.0
    engine = _engine(OUT_SOFTMAX, solver=network.ADAM, batch=4, mode=mode)
    th = theta.copy()
    m, v = np.zeros_like(th), np.zeros_like(th)
    counters = np.zeros(2, np.int64)
    engine.start(th, m, v, X, y, Y, sample_weight=w)
    totals = engine.train_epoch(np.array([1], np.uint64), False, _hyper(0.01), counters)
    engine.sync()
    assert counters[network.C_ADAM_T] == 2
    want, loss, hits, t = _reference_epoch(theta, layout, X, target, w, np.arange(len(X)), 4,
                                           OUT_SOFTMAX, 0.0, 0.01, adam_t=0)
    assert t == 2
    np.testing.assert_allclose(th, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert totals[0] == pytest.approx(loss, rel=2e-5)
    assert totals[1] == hits and totals[2] == len(X)
    assert (engine.d_stats.copy_to_host()[1] == 0).all()


def _cpu_takes_weights():
    import inspect

    from mlpfast.engine import CPUEngine
    return "sample_weight" in inspect.signature(CPUEngine.start).parameters


@pytest.mark.skipif(not _cpu_takes_weights(),
                    reason="the CPU engine does not take sample_weight in this tree yet")
@pytest.mark.parametrize("output", OUTPUTS, ids=OUTPUT_IDS)
def test_weighted_epoch_matches_cpu_engine(rng, output):
    """The two engines on the same weighted, shuffled epoch with Adam and L2, a minibatch of
    zero weights among them: same weights, totals and Adam step count."""
    from mlpfast.engine import CPUEngine
    layout, theta, X, y, Y, target = _problem(rng, output, n=15)
    w = 0.5 + 2 * rng.random(len(X))
    w[:4] = 0.0  # with shuffle=False below, the first minibatch
    got = []
    for make in (CPUEngine, CUDAEngine):
        spec = NetSpec(WIDTHS, ACTIVATIONS["tanh"], output, np.float32, network.ADAM, 4)
        engine = make(spec) if make is CPUEngine else make(spec, tiles=SMALL, threads=THREADS)
        th, counters = theta.copy(), np.zeros(2, np.int64)
        engine.start(th, np.zeros_like(th), np.zeros_like(th), X, y, Y, sample_weight=w)
        totals = engine.train_epoch(np.array([5], np.uint64), False,
                                    _hyper(0.01, alpha=0.05), counters)
        engine.sync()
        got.append((th, totals, counters[network.C_ADAM_T]))
    (cpu, cpu_totals, cpu_t), (gpu, gpu_totals, gpu_t) = got
    assert cpu_t == gpu_t == 3
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-4 * np.abs(cpu).max())
    assert gpu_totals[0] == pytest.approx(cpu_totals[0], rel=1e-5)
    np.testing.assert_array_equal(gpu_totals[1:], cpu_totals[1:])


def test_unit_weights_are_the_unweighted_path(rng):
    """Weights of 1 are the unweighted computation exactly (w_r / sum(w) = 1 / B, alpha / B)."""
    layout, theta, X, y, Y, _ = _problem(rng, OUT_SOFTMAX, n=11)
    out = []
    for w in (None, np.ones(len(X))):
        engine = _engine(OUT_SOFTMAX, solver=network.ADAM, batch=4)
        th = theta.copy()
        engine.start(th, np.zeros_like(th), np.zeros_like(th), X, y, Y, sample_weight=w)
        totals = engine.train_epoch(np.array([3], np.uint64), True, _hyper(0.01, alpha=0.1),
                                    np.zeros(2, np.int64))
        engine.sync()
        out.append((th, totals))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-6)


def test_sparse_input_is_refused(rng):
    sparse = pytest.importorskip("scipy.sparse")
    layout, theta, X, y, Y, _ = _problem(rng, OUT_SOFTMAX)
    Xs = sparse.csr_matrix(X)
    engine = _engine(OUT_SOFTMAX)
    message = "the CUDA engine needs dense X; convert with X.toarray()"
    with pytest.raises(TypeError, match=message):
        engine.start(theta, np.zeros_like(theta), np.zeros_like(theta), Xs, y, Y)
    with pytest.raises(TypeError, match=message):
        engine.predict(theta, Xs)
    with pytest.raises(TypeError, match=message):
        engine.gradient(theta, Xs, y, Y)


@pytest.mark.parametrize("w,match", [
    ([1.0, -1.0, 1.0], "finite and >= 0"),
    ([1.0, np.nan, 1.0], "finite and >= 0"),
    ([1.0, 1e-60, 1.0], "float32"),
    ([1.0, 1.0], "shape"),
])
def test_bad_sample_weights(rng, w, match):
    layout, theta, X, y, Y, _ = _problem(rng, OUT_SOFTMAX, n=3)
    with pytest.raises(ValueError, match=match):
        _engine(OUT_SOFTMAX).start(theta, np.zeros_like(theta), np.zeros_like(theta), X, y, Y,
                                   sample_weight=np.array(w))


def test_phased_mode_gives_the_persistent_gradient(rng):
    layout, theta, X, y, Y, _ = _problem(rng, OUT_SOFTMAX)
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
