"""The CUDA engine on a real GPU, at realistic sizes: the checks of test_cuda_sim.py with the
production tiles and block size, the warp-shuffle softmax, the PTX free of float64, and the
whole engine against the CPU engine.

Skipped without a GPU. On a GPU machine (conftest.py turns the simulator on by default):

    NUMBA_ENABLE_CUDASIM=0 python -m pytest tests/test_cuda_gpu.py
"""
import numpy as np
import pytest

from mlpfast import MLPClassifier, params
from mlpfast import reference as ref
from mlpfast.engine import NetSpec, cuda_status
from mlpfast.kernels import network, random
from mlpfast.kernels.softmax import OUT_EXP, OUT_IDENTITY, OUT_LOGISTIC, OUT_SOFTMAX
from mlpfast.registry import ACTIVATIONS

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not cuda_status()[0], reason="needs a CUDA GPU")]

if cuda_status()[0]:
    from numba import cuda

    from mlpfast.engine.cuda import CUDAEngine
    from mlpfast.kernels import cuda_kernels as ck

MODES = ["persistent", "phased"]


def _dummies():
    return cuda.to_device(np.zeros((1, 1), np.float32)), cuda.to_device(np.zeros(1, np.int32))


@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (257, 33, 129), (1031, 517, 263), (2048, 1024, 1025)])
def test_gemm_matches_reference(rng, M, K, N):
    k = ck.make_kernels()
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    dC = cuda.device_array(M * N, np.float32)
    X, perm = _dummies()
    for grid in (1, 264):  # one block takes the largest tile, a full grid the best fit
        k.gemm_plain[grid, k.NT](cuda.to_device(A.ravel()), cuda.to_device(B.ravel()), dC,
                                 M, N, K, X, perm)
        np.testing.assert_allclose(dC.copy_to_host().reshape(M, N), ref.matmul(A, B),
                                   rtol=1e-4, atol=2e-4 * np.sqrt(K))


@pytest.mark.parametrize("rows,C", [(5000, 10), (4099, 1024), (300, 37)])
def test_xent_warp_rows_match_reference(rng, rows, C):
    k = ck.make_kernels()
    Z = (3 * rng.standard_normal((rows, C))).astype(np.float32)
    Z[0, :] = 1e4
    Z[1, 0] = -1e4
    y = rng.integers(0, C, rows)
    dz = cuda.device_array(rows * C, np.float32)
    acc = cuda.to_device(np.zeros(2, np.float32))
    k.xent[264, k.NT](cuda.to_device(Z.ravel()), cuda.to_device(y.astype(np.int32)),
                      cuda.to_device(np.arange(rows, dtype=np.int32)), dz, acc, rows, C)
    Z64 = Z.astype(np.float64)
    np.testing.assert_allclose(dz.copy_to_host().reshape(rows, C), ref.xent_grad(Z64, y),
                               rtol=1e-4, atol=1e-9)
    loss, hits = acc.copy_to_host()
    assert loss == pytest.approx(rows * ref.xent_loss(Z64, y), rel=1e-4)
    assert hits == np.sum(np.argmax(Z, axis=1) == y)


def test_ptx_has_no_float64():
    """Every kernel the engine launches, compiled for this GPU: no .f64 instruction."""
    k = ck.make_kernels()
    f32 = np.zeros(4, np.float32)
    i32 = np.zeros(4, np.int32)
    X2, _ = _dummies()
    ip = np.zeros(ck.IP_SIZE, np.int32)
    layout = np.zeros((1, 4), np.int32)
    # X, y, Y, sw, perm, theta, grad, opt1, opt2, layout, widths, acts, deltas, stats, lrs,
    # wsums, hyper, ip, b_first, b_last, ph_first, ph_last, seed (every output kind's code is
    # in the one kernel, chosen at run time)
    train = (X2, i32, X2, f32, i32, f32, f32, f32, f32, layout, i32, f32, f32,
             np.zeros((2, 2), np.float32), f32, f32, np.zeros(9, np.float32), ip,
             0, 1, 0, 4, 0)
    predict = (X2, i32, 1, f32, layout, i32, f32, np.zeros((1, 2), np.float32), ip, 0, 2)
    cases = [(k.steps_persistent, train), (k.steps_phased, train),
             (k.predict_persistent, predict),
             (k.gemm_plain, (f32, f32, f32, 1, 1, 1, X2, i32)),
             (k.xent, (f32, i32, i32, f32, f32, 1, 1))]
    for kern, args in cases:
        sig = tuple(kern.typeof_pyval(a) for a in args)
        kern.compile(sig)
        ptx = kern.inspect_asm(sig)
        bad = [line for line in ptx.splitlines() if ".f64" in line]
        assert not bad, f"{kern.py_func.__name__}: {bad[:3]}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradient_matches_reference(rng, mode, activation):
    widths = (32, 128, 67, 10)
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.2, 0.2, size).astype(np.float32)
    X = rng.standard_normal((256, 32)).astype(np.float32)
    y = rng.integers(0, 10, 256).astype(np.int32)
    spec = NetSpec(widths, ACTIVATIONS[activation], True, np.float32, network.ADAM, 256)
    loss, grad = CUDAEngine(spec, mode=mode).gradient(theta, X, y, np.zeros((256, 0), np.float32))
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    want_loss, dW, db = ref.gradient(c64, b64, X.astype(np.float64), y, activation, True)
    want = np.zeros(size)
    params.assign(want, layout, dW, db)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())


def _targets(rng, output, n, C):
    if output == OUT_SOFTMAX:
        y = rng.integers(0, C, n).astype(np.int32)
        return y, np.zeros((n, 0), np.float32), y
    if output == OUT_LOGISTIC:
        Y = (rng.random((n, C)) < 0.3).astype(np.float32)
    elif output == OUT_EXP:
        Y = rng.poisson(1.0, (n, C)).astype(np.float32)
    else:
        Y = rng.standard_normal((n, C)).astype(np.float32)
    return np.zeros(0, np.int32), Y, Y.astype(np.float64)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("output,C", [(OUT_IDENTITY, 3), (OUT_SOFTMAX, 10), (OUT_LOGISTIC, 1),
                                      (OUT_LOGISTIC, 37), (OUT_EXP, 5)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_output_kinds_and_weights_match_reference(rng, mode, output, C, weighted):
    """Each output kind's loss and gradient with scikit-learn's weights and L2, at sizes that
    give every phase many blocks (binary logistic has one output; multilabel 37)."""
    widths = (32, 96, 45, C)
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.2, 0.2, size).astype(np.float32)
    X = rng.standard_normal((512, 32)).astype(np.float32)
    y, Y, target = _targets(rng, output, 512, C)
    w = 3 * rng.random(512) if weighted else None
    if weighted:
        w[:50] = 0.0
    spec = NetSpec(widths, ACTIVATIONS["relu"], output, np.float32, network.ADAM, 512)
    loss, grad = CUDAEngine(spec, mode=mode).gradient(theta, X, y, Y, 0.1, sample_weight=w)
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    want_loss, dW, db = ref.gradient(c64, b64, X.astype(np.float64), target, "relu", output,
                                     0.1, w)
    want = np.zeros(size)
    params.assign(want, layout, dW, db)
    # float32 atomics over 512 rows; Poisson's terms cancel near the optimum
    assert loss == pytest.approx(want_loss, rel=2e-5)
    np.testing.assert_allclose(grad, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("output", [OUT_IDENTITY, OUT_LOGISTIC, OUT_EXP])
def test_predict_output_activation(rng, output):
    widths = (16, 40, 7)
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.5, 0.5, size).astype(np.float32)
    X = rng.standard_normal((3001, 16)).astype(np.float32)
    spec = NetSpec(widths, ACTIVATIONS["tanh"], output, np.float32, network.ADAM, 1)
    got = CUDAEngine(spec).predict(theta, X)
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    Z = ref.forward(c64, b64, X.astype(np.float64), "tanh")[-1]
    np.testing.assert_allclose(got, ref.OUTPUTS[output][2](Z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_weighted_epoch_matches_reference_sgd(rng, mode):
    """A shuffled epoch of 8 minibatches (one of zero weights, the last short) with plain SGD
    and L2 against float64 reference steps: each moves the weights by -lr * gradient."""
    widths = (20, 64, 4)
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.2, 0.2, size).astype(np.float32)
    X = rng.standard_normal((1000, 20)).astype(np.float32)
    y = rng.integers(0, 4, 1000).astype(np.int32)
    w = 0.5 + rng.random(1000)
    # the epoch's order, drawn ahead from a copy of the state: its second minibatch weighs 0
    state = np.array([11], np.uint64)
    perm = np.arange(1000, dtype=np.int64)
    random.shuffle(perm, state.copy())
    w[perm[128:256]] = 0.0
    spec = NetSpec(widths, ACTIVATIONS["relu"], OUT_SOFTMAX, np.float32, network.SGD, 128)
    engine = CUDAEngine(spec, mode=mode)
    th = theta.copy()
    hyper = np.array([0.1, 0.01, 0.0, 0.9, 0.999, 1e-8, 0.0])  # lr, alpha, momentum 0, ...
    engine.start(th, np.zeros_like(th), np.zeros(0, np.float32), X, y,
                 np.zeros((1000, 0), np.float32), sample_weight=w)
    totals = engine.train_epoch(state, True, hyper, np.zeros(2, np.int64))
    engine.sync()
    np.testing.assert_array_equal(engine.perm, perm)
    want = theta.astype(np.float64)
    loss = 0.0
    for start in range(0, 1000, 128):
        rows = perm[start:start + 128]
        if w[rows].sum() == 0:
            continue
        c64 = [c.copy() for c in params.coefs(want, layout)]
        b64 = [b.copy() for b in params.intercepts(want, layout)]
        bl, dW, db = ref.gradient(c64, b64, X[rows].astype(np.float64), y[rows], "relu",
                                  OUT_SOFTMAX, 0.01, w[rows])
        g = np.zeros(size)
        params.assign(g, layout, dW, db)
        want = want - 0.1 * g
        loss += len(rows) * bl
    np.testing.assert_allclose(th, want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert totals[0] == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_training_matches_cpu_engine(rng, monkeypatch, mode):
    """Relative 1e-4 after one epoch of 40 steps, with L2 and a short last batch."""
    monkeypatch.setenv("MLPFAST_CUDA_MODE", mode)
    X = rng.standard_normal((5000, 20)).astype(np.float32)
    y = rng.integers(0, 4, 5000)

    def fit(device):
        with pytest.warns(Warning):
            return MLPClassifier(hidden_layer_sizes=(64, 32), batch_size=128, max_iter=1,
                                 random_state=0, alpha=1e-3, device=device).fit(X, y)
    cpu, gpu = fit("cpu"), fit("cuda")
    scale = np.abs(cpu._theta).max()
    assert np.abs(gpu._theta - cpu._theta).max() <= 1e-4 * scale
    assert gpu.loss_ == pytest.approx(cpu.loss_, rel=1e-5)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-5)


def test_predict_in_chunks(rng, monkeypatch):
    widths = (16, 40, 7)
    layout, size = params.make_layout(widths)
    theta = rng.uniform(-0.5, 0.5, size).astype(np.float32)
    X = rng.standard_normal((70001, 16)).astype(np.float32)
    spec = NetSpec(widths, ACTIVATIONS["relu"], True, np.float32, network.ADAM, 1)
    engine = CUDAEngine(spec)
    monkeypatch.setattr(engine, "predict_chunk_rows", 30000)
    got = engine.predict(theta, X)
    c64 = [c.astype(np.float64) for c in params.coefs(theta, layout)]
    b64 = [b.astype(np.float64) for b in params.intercepts(theta, layout)]
    want = ref.softmax(ref.forward(c64, b64, X.astype(np.float64), "relu")[-1])
    np.testing.assert_allclose(got, want, atol=2e-6)
