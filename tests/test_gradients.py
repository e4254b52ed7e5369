"""Whole-network gradients: the compiled engine against the float64 reference, and the
reference against central finite differences, for every activation, every output kind
(identity, softmax, logistic, exp), with and without sample weights, dense and sparse X, with L2.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from mlpfast import config, params
from mlpfast import reference as ref
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.kernels import network
from mlpfast.kernels.softmax import OUT_EXP, OUT_IDENTITY, OUT_LOGISTIC, OUT_SOFTMAX
from mlpfast.registry import ACTIVATIONS

WIDTHS = (5, 7, 4, 3)
OUTPUTS = {OUT_IDENTITY: "identity", OUT_SOFTMAX: "softmax", OUT_LOGISTIC: "logistic",
           OUT_EXP: "exp"}


def _targets(rng, output, n, dtype, n_out=WIDTHS[-1]):
    """(y, Y, target for the reference) of an output code."""
    if output == OUT_SOFTMAX:
        y = rng.integers(0, n_out, n).astype(np.int32)
        return y, np.zeros((n, 0), dtype), y
    if output == OUT_LOGISTIC:
        Y = (rng.random((n, n_out)) < 0.4).astype(dtype)
    elif output == OUT_EXP:
        Y = rng.poisson(1.5, (n, n_out)).astype(dtype)
    else:
        Y = rng.standard_normal((n, n_out)).astype(dtype)
    return np.zeros(0, np.int32), Y, Y


def _problem(rng, output, dtype=np.float64, n=9, sparse=False):
    layout, size = params.make_layout(WIDTHS)
    theta = rng.uniform(-0.8, 0.8, size).astype(dtype)
    X = rng.standard_normal((n, WIDTHS[0])).astype(dtype)
    if sparse:
        X[rng.random(X.shape) < 0.6] = 0  # and a few rows all zero
        X[::7] = 0
    y, Y, target = _targets(rng, output, n, dtype)
    return layout, theta, X, y, Y, target


def _weights(rng, n):
    # zeros among them (scikit-learn allows them), never all zero
    w = rng.uniform(0, 3, n) * (rng.random(n) > 0.25)
    w[0] = 0.5
    return w


def _engine(name, output, dtype=np.float64, batch=9):
    return CPUEngine(NetSpec(WIDTHS, ACTIVATIONS[name], output, dtype, network.ADAM, batch))


def _flat_reference_grad(theta, layout, X, target, name, output, alpha, sample_weight=None):
    loss, dW, db = ref.gradient(params.coefs(theta, layout), params.intercepts(theta, layout),
                                X, target, name, output, alpha, sample_weight)
    flat = np.zeros(len(theta))
    params.assign(flat, layout, dW, db)
    return loss, flat


@pytest.mark.parametrize("n", [9, 3 * config.CHUNK_ROWS + 5], ids=["one-chunk", "three-chunks"])
@pytest.mark.parametrize("classify", [True, False], ids=["xent", "squared"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_engine_gradient_matches_reference(rng, name, classify, n):
    # a minibatch of CHUNK_ROWS rows or more is split into chunks whose gradients are summed;
    # classify True/False: the older callers' spelling of softmax/identity
    layout, theta, X, y, Y, target = _problem(rng, int(classify), n=n)
    loss, grad = _engine(name, classify).gradient(theta, X, y, Y, alpha=0.3)
    ref_loss, ref_grad = _flat_reference_grad(theta, layout, X, target, name, classify, 0.3)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n", [9, 3 * config.CHUNK_ROWS + 5], ids=["one-chunk", "three-chunks"])
@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_engine_gradient_of_every_output_matches_reference(rng, name, output, n, weighted,
                                                           sparse):
    layout, theta, X, y, Y, target = _problem(rng, output, n=n, sparse=sparse)
    w = _weights(rng, n) if weighted else None
    Xin = sp.csr_matrix(X) if sparse else X
    loss, grad = _engine(name, output).gradient(theta, Xin, y, Y, 0.3, sample_weight=w)
    ref_loss, ref_grad = _flat_reference_grad(theta, layout, X, target, name, output, 0.3, w)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_reference_gradient_matches_finite_differences(rng, name, output, weighted):
    layout, theta, X, y, Y, target = _problem(rng, output)
    w = _weights(rng, len(X)) if weighted else None
    _, grad = _flat_reference_grad(theta, layout, X, target, name, output, 0.3, w)

    def objective(t):
        return ref.loss(params.coefs(t, layout), params.intercepts(t, layout), X, target,
                        name, output, 0.3, w)

    h = 1e-6
    fd = np.empty_like(theta)
    for p in range(len(theta)):
        e = np.zeros_like(theta)
        e[p] = h
        fd[p] = (objective(theta + e) - objective(theta - e)) / (2 * h)
    # relu's kink: a pre-activation within h of 0 would make the difference one-sided
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_float32_engine_gradient_close_to_reference(rng):
    layout, theta, X, y, Y, target = _problem(rng, OUT_SOFTMAX, np.float32, n=257)
    _, grad = _engine("tanh", OUT_SOFTMAX, np.float32).gradient(theta, X, y, Y, alpha=1e-3)
    _, ref_grad = _flat_reference_grad(theta.astype(np.float64), layout, X.astype(np.float64),
                                       target, "tanh", True, 1e-3)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


# ---- loss_gradient: the full-batch objective for L-BFGS, in blocks of the batch size

def _bound(rng, name, output, n, batch, dtype=np.float64, weighted=False, sparse=False):
    layout, theta, X, y, Y, target = _problem(rng, output, dtype, n=n, sparse=sparse)
    w = _weights(rng, n) if weighted else None
    engine = _engine(name, output, dtype, batch)
    engine.start(theta.copy(), np.zeros_like(theta), np.zeros_like(theta),
                 sp.csr_matrix(X) if sparse else X, y, Y, w)
    return engine, layout, theta, X, target, w


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
@pytest.mark.parametrize("n,batch", [(9, 4), (1000, 2 * config.CHUNK_ROWS + 3)],
                         ids=["blocks-of-one-chunk", "blocks-of-two-chunks"])
def test_loss_gradient_matches_reference(rng, output, weighted, sparse, n, batch):
    # n spans several blocks of `batch` rows, the last one partial
    engine, layout, theta, X, target, w = _bound(rng, "tanh", output, n, batch,
                                                 weighted=weighted, sparse=sparse)
    grad = np.full_like(theta, np.nan)
    f = engine.loss_gradient(theta, grad, 0.3)
    ref_loss, ref_grad = _flat_reference_grad(theta, layout, X, target, "tanh", output, 0.3, w)
    assert isinstance(f, float)
    assert f == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


def test_loss_gradient_float32_and_a_float64_grad(rng):
    # scipy's L-BFGS hands float64 arrays to a float32 model: converted in, copied out
    engine, layout, theta, X, target, w = _bound(rng, "relu", OUT_SOFTMAX, 600, 300, np.float32,
                                                 weighted=True)
    grad64 = np.zeros(len(theta))
    f = engine.loss_gradient(theta.astype(np.float64), grad64, 1e-2)
    grad32 = np.zeros_like(theta)
    assert engine.loss_gradient(theta, grad32, 1e-2) == f
    assert np.array_equal(grad64, grad32.astype(np.float64))
    ref_loss, ref_grad = _flat_reference_grad(theta.astype(np.float64), layout,
                                              X.astype(np.float64), target, "relu", True, 1e-2, w)
    assert f == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(grad32, ref_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("output", sorted(OUTPUTS), ids=OUTPUTS.get)
def test_weight_two_is_the_row_twice(rng, output):
    # scikit-learn's semantics: an integer weight is that many copies of the row
    n = 300
    layout, theta, X, y, Y, target = _problem(rng, output, n=n)
    w = np.ones(n)
    w[[3, 50, 299]] = 2.0
    twice = np.r_[np.arange(n), [3, 50, 299]]
    y2 = y[twice] if len(y) else y
    for batch in (n, 128):  # one block, and blocks of the batch size
        weighted = _engine("relu", output, batch=batch)
        weighted.start(theta.copy(), theta * 0, theta * 0, X, y, Y, w)
        g_w = np.zeros_like(theta)
        f_w = weighted.loss_gradient(theta, g_w, 0.5)
        copies = _engine("relu", output, batch=batch)
        copies.start(theta.copy(), theta * 0, theta * 0, X[twice], y2, Y[twice])
        g_c = np.zeros_like(theta)
        f_c = copies.loss_gradient(theta, g_c, 0.5)
        assert f_w == pytest.approx(f_c, rel=1e-13)
        np.testing.assert_allclose(g_w, g_c, rtol=1e-12, atol=1e-15)
    loss_w, grad_w = _engine("relu", output).gradient(theta, X, y, Y, 0.5, w)
    loss_c, grad_c = _engine("relu", output).gradient(theta, X[twice], y2, Y[twice], 0.5)
    assert loss_w == pytest.approx(loss_c, rel=1e-13)
    np.testing.assert_allclose(grad_w, grad_c, rtol=1e-12, atol=1e-15)


def test_zero_weights_give_a_zero_objective(rng):
    engine, layout, theta, X, target, w = _bound(rng, "relu", OUT_LOGISTIC, 50, 16)
    engine.start(theta.copy(), theta * 0, theta * 0, X, np.zeros(0, np.int32),
                 np.ones((50, 3)), np.zeros(50))
    grad = np.full_like(theta, np.nan)
    assert engine.loss_gradient(theta, grad, 0.1) == 0.0
    assert not grad.any()
    loss, grad = engine.gradient(theta, X, np.zeros(0, np.int32), np.ones((50, 3)), 0.1,
                                 np.zeros(50))
    assert loss == 0.0 and not grad.any()
