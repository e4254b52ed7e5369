"""Every CPU kernel against the float64 reference (mlpfast.reference), on shapes that do not
divide the tiles, in float32 and float64."""
import itertools

import numpy as np
import pytest
from conftest import ODD, tol

from mlpfast import reference as ref
from mlpfast.kernels import activations as act
from mlpfast.kernels import matmul, optim, random, softmax
from mlpfast.registry import ACTIVATIONS

DTYPES = (np.float32, np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N", list(itertools.product(ODD, (1, 7, 33), ODD))[::3] + [(257, 257, 257)])
def test_gemm_nt_matches_reference(rng, dtype, M, K, N):
    A = rng.standard_normal((M, K)).astype(dtype)
    Bt = rng.standard_normal((N, K)).astype(dtype)
    C = np.full((M, N), np.nan, dtype)
    matmul.gemm_nt(C, A, Bt, np.empty(0, dtype), act.IDENTITY)
    np.testing.assert_allclose(C, ref.matmul(A, Bt.T), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gemm_epilogue_bias_and_activation(rng, dtype, name):
    M, K, N = 33, 7, 257
    A = rng.standard_normal((M, K)).astype(dtype)
    Bt = rng.standard_normal((N, K)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    C = np.empty((M, N), dtype)
    matmul.gemm_nt(C, A, Bt, b, ACTIVATIONS[name])
    expect = ref.ACTIVATIONS[name](ref.matmul(A, Bt.T) + b)
    np.testing.assert_allclose(C, expect, **tol(dtype))


def test_gemm_parallel_and_serial_paths_agree_bitwise(rng, monkeypatch):
    # a row's result must not depend on which block or thread computed it
    A = rng.standard_normal((257, 129)).astype(np.float32)
    Bt = rng.standard_normal((65, 129)).astype(np.float32)
    big = np.empty((257, 65), np.float32)
    matmul._gemm_parallel(big, A, Bt, np.empty(0, np.float32), 0)
    serial = np.empty_like(big)
    matmul._gemm_serial(serial, A, Bt, np.empty(0, np.float32), 0)
    assert np.array_equal(big, serial)
    for lo, hi in [(0, 1), (5, 12), (250, 257)]:
        part = np.empty((hi - lo, 65), np.float32)
        matmul.gemm_nt(part, np.ascontiguousarray(A[lo:hi]), Bt, np.empty(0, np.float32), 0)
        assert np.array_equal(part, big[lo:hi])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N", [(1, 1, 1), (7, 2, 33), (33, 10, 257), (257, 24, 7), (257, 1, 65)])
def test_gemm_nn_small_k_matches_reference(rng, dtype, M, K, N):
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    C = np.full((M, N), np.nan, dtype)
    matmul.gemm_nn_small_k(C, A, B, np.empty(0, dtype), act.IDENTITY)
    np.testing.assert_allclose(C, ref.matmul(A, B), **tol(dtype))
    b = rng.standard_normal(N).astype(dtype)
    matmul.gemm_nn_small_k(C, A, B, b, act.TANH)
    np.testing.assert_allclose(C, np.tanh(ref.matmul(A, B) + b), **tol(dtype))


def test_gemm_nn_small_k_rows_do_not_depend_on_the_split(rng):
    A = rng.standard_normal((257, 20)).astype(np.float32)
    B = rng.standard_normal((20, 129)).astype(np.float32)
    e = np.empty(0, np.float32)
    par = np.empty((257, 129), np.float32)
    matmul._nn_parallel(par, A, B, e, 0)
    whole = np.empty_like(par)
    matmul.nn_rows(whole, A, B, e, 0, 0, 257)
    assert np.array_equal(par, whole)
    part = np.empty((5, 129), np.float32)
    matmul.gemm_nn_small_k(part, np.ascontiguousarray(A[100:105]), B, e, 0)
    assert np.array_equal(part, whole[100:105])


@pytest.mark.parametrize("M,N", [(1, 1), (7, 33), (257, 33), (40, 70), (16, 8), (9, 17)])
def test_transpose(rng, M, N):
    A = rng.standard_normal((M, N))
    out = np.empty((N, M))
    matmul.transpose(out, A)
    assert np.array_equal(out, A.T)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_from_output(rng, dtype, name):
    Z = (3 * rng.standard_normal((7, 33))).astype(dtype)
    H = Z.copy()
    act.apply_activation(H, ACTIVATIONS[name])
    np.testing.assert_allclose(H, ref.ACTIVATIONS[name](Z.astype(np.float64)), **tol(dtype))
    G = rng.standard_normal((7, 33)).astype(dtype)
    dH = G.copy()
    act.activation_backward(dH, H, ACTIVATIONS[name])
    np.testing.assert_allclose(dH, G * ref.DERIVATIVES[name](H.astype(np.float64)), **tol(dtype))


def test_activation_derivatives_match_finite_differences(rng):
    z = rng.uniform(-3, 3, 200)
    z = z[np.abs(z) > 1e-3]  # relu and leaky_relu have a kink at 0
    h = 1e-6
    for name, f in ref.ACTIVATIONS.items():
        fd = (f(z + h) - f(z - h)) / (2 * h)
        np.testing.assert_allclose(ref.DERIVATIVES[name](f(z)), fd, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,C", [(1, 2), (7, 3), (33, 26), (257, 10)])
def test_softmax_xent_grad_matches_reference(rng, dtype, B, C):
    Z = (4 * rng.standard_normal((B, C))).astype(dtype)
    y = rng.integers(0, C, B).astype(np.int32)
    dZ = np.empty_like(Z)
    loss, correct = softmax.softmax_xent_grad(dZ, Z, y, 1.0 / B)
    np.testing.assert_allclose(dZ, ref.xent_grad(Z, y), **tol(dtype))
    assert loss / B == pytest.approx(ref.xent_loss(Z, y), rel=1e-5 if dtype == np.float32 else 1e-12)
    assert correct == int((Z.argmax(axis=1) == y).sum())
    P = np.empty_like(Z)
    softmax.softmax(P, Z)
    np.testing.assert_allclose(P, ref.softmax(Z), **tol(dtype))


def test_softmax_jacobian_and_fused_gradient_match_finite_differences(rng):
    z = rng.standard_normal(7)
    h = 1e-6
    J = np.empty((7, 7))
    for k in range(7):
        e = np.zeros(7)
        e[k] = h
        J[:, k] = (ref.softmax((z + e)[None])[0] - ref.softmax((z - e)[None])[0]) / (2 * h)
    np.testing.assert_allclose(ref.softmax_jacobian(z), J, atol=1e-9)
    # the fused kernel's gradient against finite differences of the loss itself
    Z = rng.standard_normal((5, 7))
    y = rng.integers(0, 7, 5).astype(np.int32)
    dZ = np.empty_like(Z)
    softmax.softmax_xent_grad(dZ, Z, y, 1.0 / 5)
    fd = np.empty_like(Z)
    for i, k in itertools.product(range(5), range(7)):
        E = np.zeros_like(Z)
        E[i, k] = h
        fd[i, k] = (ref.xent_loss(Z + E, y) - ref.xent_loss(Z - E, y)) / (2 * h)
    np.testing.assert_allclose(dZ, fd, atol=1e-8)
    # and the chain rule through the Jacobian gives the same: dL/dz = J^T (-1/S_y e_y) / B
    for i in range(5):
        s = ref.softmax(Z[i][None])[0]
        dS = np.zeros(7)
        dS[y[i]] = -1.0 / s[y[i]]
        np.testing.assert_allclose(ref.softmax_jacobian(Z[i]).T @ dS / 5, dZ[i], atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_stability(dtype):
    cases = {
        "huge positive": np.array([[1e4, 0.0, -1e4]]),
        "huge negative": np.array([[-1e4, -1e4 + 1, -1e4 + 2]]),
        "all equal": np.full((1, 5), 3.0),
        "dominant": np.array([[50.0, 0.0, 0.0, 0.0]]),
    }
    for name, Z in cases.items():
        Z = Z.astype(dtype)
        for t in range(Z.shape[1]):
            y = np.array([t], np.int32)
            dZ = np.empty_like(Z)
            loss, _ = softmax.softmax_xent_grad(dZ, Z, y, 1.0)
            assert np.isfinite(loss) and np.isfinite(dZ).all(), name
            assert loss == pytest.approx(ref.xent_loss(Z, y), rel=1e-5, abs=1e-6), name
            np.testing.assert_allclose(dZ, ref.xent_grad(Z, y), atol=1e-6, err_msg=name)
    dZ = np.empty((1, 5), dtype)
    loss, _ = softmax.softmax_xent_grad(dZ, np.full((1, 5), 3.0, dtype), np.array([2], np.int32), 1.0)
    assert loss == pytest.approx(np.log(5), rel=1e-6)
    loss, _ = softmax.softmax_xent_grad(dZ[:, :3], np.array([[1e4, 0, -1e4]], dtype), np.array([2], np.int32), 1.0)
    assert loss == pytest.approx(2e4, rel=1e-6)  # log-sum-exp, not log(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_grad(rng, dtype):
    Z = rng.standard_normal((33, 3)).astype(dtype)
    Y = rng.standard_normal((33, 3)).astype(dtype)
    dZ = np.empty_like(Z)
    loss = softmax.squared_error_grad(dZ, Z, Y, 1.0 / 33)
    assert loss / 33 == pytest.approx(ref.squared_loss(Z, Y), rel=1e-5)
    np.testing.assert_allclose(dZ, ref.squared_grad(Z, Y), **tol(dtype))


def test_bias_grad_and_l2(rng):
    dZ = rng.standard_normal((257, 7))
    db = np.empty(7)
    optim.bias_grad(db, dZ)
    np.testing.assert_allclose(db, dZ.sum(axis=0))
    layout = np.array([[0, 6, 2, 3], [9, 12, 3, 1]], np.int64)
    theta = rng.standard_normal(13)
    grad = np.zeros(13)
    sq = optim.add_l2(grad, theta, layout, 0.5)
    weights = np.r_[0:6, 9:12]
    assert sq == pytest.approx((theta[weights] ** 2).sum())
    expect = np.zeros(13)
    expect[weights] = 0.5 * theta[weights]
    np.testing.assert_allclose(grad, expect)  # biases carry no L2


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_step_matches_reference(rng, nesterov):
    theta, g = rng.standard_normal(33), rng.standard_normal(33)
    vel = rng.standard_normal(33)
    ref_vel = vel.copy()
    expect = ref.sgd_step([theta.copy()], [g], [ref_vel], 0.1, 0.9, nesterov)[0]
    optim.sgd_step(theta, g, vel, 0.1, 0.9, nesterov)
    np.testing.assert_allclose(theta, expect, rtol=1e-12)
    np.testing.assert_allclose(vel, ref_vel, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_steps_match_reference(rng, dtype):
    theta = rng.standard_normal(257).astype(dtype)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    rp, rm, rv = theta.astype(np.float64), np.zeros(257), np.zeros(257)
    for t in range(1, 4):
        g = rng.standard_normal(257).astype(dtype)
        optim.adam_step(theta, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8)
        rp = ref.adam_step([rp], [g.astype(np.float64)], [rm], [rv], t, 1e-3)[0]
    np.testing.assert_allclose(theta, rp, **tol(dtype))


def test_generator_shuffle_and_dropout_are_seeded(rng):
    a, b = np.arange(100), np.arange(100)
    s1, s2 = np.array([7], np.uint64), np.array([7], np.uint64)
    random.shuffle(a, s1)
    random.shuffle(b, s2)
    assert np.array_equal(a, b) and not np.array_equal(a, np.arange(100))
    assert sorted(a) == list(range(100))
    H = np.ones((200, 50))
    mask = np.empty_like(H)
    random.dropout_mask(mask, H, 0.25, np.array([3], np.uint64))
    kept = mask != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(mask[kept], 1 / 0.75)
    np.testing.assert_allclose(H, mask)


def test_dropout_backward(rng):
    Z = rng.standard_normal((7, 33))
    for name, code in ACTIVATIONS.items():
        H = ref.ACTIVATIONS[name](Z)
        mask = np.where(rng.random(Z.shape) < 0.3, 0.0, 1 / 0.7)
        G = rng.standard_normal(Z.shape)
        dH = G.copy()
        act.dropout_backward(dH, H * mask, mask, code)
        np.testing.assert_allclose(dH, G * mask * ref.DERIVATIVES[name](H), atol=1e-12, err_msg=name)
