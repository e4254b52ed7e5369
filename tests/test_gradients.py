"""Whole-network gradients: the compiled engine against the float64 reference, and the
reference against central finite differences, for every activation, both losses, with L2."""
import numpy as np
import pytest

from mlpfast import config, params
from mlpfast import reference as ref
from mlpfast.engine import CPUEngine, NetSpec
from mlpfast.kernels import network
from mlpfast.registry import ACTIVATIONS

WIDTHS = (5, 7, 4, 3)


def _problem(rng, classify, dtype=np.float64, n=9):
    layout, size = params.make_layout(WIDTHS)
    theta = rng.uniform(-0.8, 0.8, size).astype(dtype)
    X = rng.standard_normal((n, WIDTHS[0])).astype(dtype)
    if classify:
        y = rng.integers(0, WIDTHS[-1], n).astype(np.int32)
        Y = np.zeros((n, 0), dtype)
        target = y
    else:
        y = np.zeros(0, np.int32)
        Y = rng.standard_normal((n, WIDTHS[-1])).astype(dtype)
        target = Y
    return layout, theta, X, y, Y, target


def _engine(name, classify, dtype=np.float64):
    return CPUEngine(NetSpec(WIDTHS, ACTIVATIONS[name], classify, dtype, network.ADAM, 9))


def _flat_reference_grad(theta, layout, X, target, name, classify, alpha):
    loss, dW, db = ref.gradient(params.coefs(theta, layout), params.intercepts(theta, layout),
                                X, target, name, classify, alpha)
    flat = np.zeros(len(theta))
    params.assign(flat, layout, dW, db)
    return loss, flat


@pytest.mark.parametrize("n", [9, 3 * config.CHUNK_ROWS + 5], ids=["one-chunk", "three-chunks"])
@pytest.mark.parametrize("classify", [True, False], ids=["xent", "squared"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_engine_gradient_matches_reference(rng, name, classify, n):
    # a minibatch of CHUNK_ROWS rows or more is split into chunks whose gradients are summed
    layout, theta, X, y, Y, target = _problem(rng, classify, n=n)
    loss, grad = _engine(name, classify).gradient(theta, X, y, Y, alpha=0.3)
    ref_loss, ref_grad = _flat_reference_grad(theta, layout, X, target, name, classify, 0.3)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("classify", [True, False], ids=["xent", "squared"])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_reference_gradient_matches_finite_differences(rng, name, classify):
    layout, theta, X, y, Y, target = _problem(rng, classify)
    _, grad = _flat_reference_grad(theta, layout, X, target, name, classify, 0.3)

    def objective(t):
        return ref.loss(params.coefs(t, layout), params.intercepts(t, layout), X, target,
                        name, classify, 0.3)

    h = 1e-6
    fd = np.empty_like(theta)
    for p in range(len(theta)):
        e = np.zeros_like(theta)
        e[p] = h
        fd[p] = (objective(theta + e) - objective(theta - e)) / (2 * h)
    # relu's kink: a pre-activation within h of 0 would make the difference one-sided
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7)


def test_float32_engine_gradient_close_to_reference(rng):
    layout, theta, X, y, Y, target = _problem(rng, True, np.float32, n=257)
    _, grad = _engine("tanh", True, np.float32).gradient(theta, X, y, Y, alpha=1e-3)
    _, ref_grad = _flat_reference_grad(theta.astype(np.float64), layout, X.astype(np.float64),
                                       target, "tanh", True, 1e-3)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)
