"""Optimizer updates and gradient pieces over the flat parameter buffer.

Legend: P number of parameters (weights and biases of every layer, one flat array); B rows,
O outputs of a layer. Optimizer state (SGD velocity, Adam's m and v) are flat arrays of length P,
so one loop updates the whole model whatever its depth.

The updates follow scikit-learn's optimizers (sklearn/neural_network/_stochastic_optimizers.py)
so that the two libraries take the same steps from the same weights.
"""
import math

import numba as nb

from . import CACHE


@nb.njit(error_model="numpy", cache=CACHE)
def bias_grad(db, dZ):
    """db (O,) = sum over rows of dZ (B, O)."""
    db[:] = 0
    for i in range(dZ.shape[0]):
        for j in range(dZ.shape[1]):
            db[j] += dZ[i, j]


@nb.njit(error_model="numpy", fastmath={"reassoc"}, cache=CACHE)
def add_l2_to(g, w, coef):
    """g += coef * w over one slice of weights; returns sum(w^2) in float64.

    On slices indexed from 0 and with the float64 sum free to reassociate, LLVM vectorises
    the loop (8x faster than offset indices and an ordered sum; the gradient is
    bit-identical, the sum of squares moves in its last digits)."""
    sq = 0.0
    c = w.dtype.type(coef)
    for p in range(w.shape[0]):
        x = w[p]
        sq += x * x
        g[p] += c * x
    return sq


@nb.njit(error_model="numpy", cache=CACHE)
def add_l2(grad, theta, layout, coef):
    """grad += coef * theta over the weights (not the biases) of every layer.

    layout (L, 4) rows are (weight offset, bias offset, n_in, n_out).
    Returns sum of squared weights (for the loss term 0.5 * alpha * ||W||^2 / B).
    """
    sq = 0.0
    for layer in range(layout.shape[0]):
        w0 = layout[layer, 0]
        w1 = w0 + layout[layer, 2] * layout[layer, 3]
        sq += add_l2_to(grad[w0:w1], theta[w0:w1], coef)
    return sq


@nb.njit(error_model="numpy", cache=CACHE)
def sgd_step(theta, grad, velocity, lr, momentum, nesterov):
    """velocity = momentum * velocity - lr * grad; theta += velocity (Nesterov: the look-ahead
    momentum * velocity - lr * grad)."""
    lr_ = theta.dtype.type(lr)
    mu = theta.dtype.type(momentum)
    for p in range(theta.shape[0]):
        v = mu * velocity[p] - lr_ * grad[p]
        velocity[p] = v
        if nesterov:
            theta[p] += mu * v - lr_ * grad[p]
        else:
            theta[p] += v


@nb.njit(error_model="numpy", cache=CACHE)
def adam_step(theta, grad, m, v, t, lr, beta_1, beta_2, epsilon):
    """One Adam step; t is the step number after increment (1 on the first step)."""
    # bias correction folded into the step size, in float64 (beta_2**t is close to 1)
    lr_t = lr * math.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t)
    dt = theta.dtype.type
    b1 = dt(beta_1)
    b2 = dt(beta_2)
    c1 = dt(1.0 - beta_1)
    c2 = dt(1.0 - beta_2)
    step = dt(lr_t)
    eps = dt(epsilon)
    for p in range(theta.shape[0]):
        g = grad[p]
        mp = b1 * m[p] + c1 * g
        vp = b2 * v[p] + c2 * g * g
        m[p] = mp
        v[p] = vp
        theta[p] -= step * mp / (math.sqrt(vp) + eps)
