"""Plain NumPy float64 versions of every kernel and of a whole forward/backward pass.

Slow and obvious on purpose: tests compare the compiled kernels with these, and check these
against central finite differences. The estimators take their per-epoch validation losses from
the output losses here too (float64, weighted), so validation and training share one
definition of each loss. Shapes use the same legend as mlpfast.kernels. Weights here
are in scikit-learn's orientation, W (I, O).
"""
import numpy as np

LEAKY_SLOPE = 0.01


def _logistic(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": _logistic,
    "leaky_relu": lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
}

# derivative as a function of the output h = f(z)
DERIVATIVES = {
    "identity": lambda h: np.ones_like(h),
    "relu": lambda h: (h > 0).astype(np.float64),
    "tanh": lambda h: 1.0 - h * h,
    "logistic": lambda h: h * (1.0 - h),
    "leaky_relu": lambda h: np.where(h > 0, 1.0, LEAKY_SLOPE),
}


def matmul(A, B):
    """(M, K) @ (K, N) accumulated in float64."""
    return np.asarray(A, np.float64) @ np.asarray(B, np.float64)


def softmax(Z):
    Z = np.asarray(Z, np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def log_softmax(Z):
    Z = np.asarray(Z, np.float64)
    m = Z.max(axis=1, keepdims=True)
    return Z - m - np.log(np.exp(Z - m).sum(axis=1, keepdims=True))


def softmax_jacobian(z):
    """dS_j/dz_k = S_j (delta_jk - S_k) for one row z (C,)."""
    s = softmax(z[None, :])[0]
    return np.diag(s) - np.outer(s, s)


def _weights(n, sample_weight):
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)


def xent_loss(Z, y, sample_weight=None):
    """Weighted mean categorical cross-entropy of logits Z (B, C) against class indices y (B,)."""
    w = _weights(len(y), sample_weight)
    return -(w * log_softmax(Z)[np.arange(len(y)), y]).sum() / w.sum()


def xent_grad(Z, y, sample_weight=None):
    """d xent_loss / dZ = w_i (softmax(Z) - onehot(y)) / sum(w)."""
    w = _weights(len(y), sample_weight)
    G = softmax(Z)
    G[np.arange(len(y)), y] -= 1.0
    return G * (w / w.sum())[:, None]


def squared_loss(Z, Y, sample_weight=None):
    """0.5 * ||Z - Y||^2 summed over outputs, weighted mean over rows."""
    w = _weights(len(Z), sample_weight)
    D = np.asarray(Z, np.float64) - Y
    return 0.5 * (w * (D * D).sum(axis=1)).sum() / w.sum()


def squared_grad(Z, Y, sample_weight=None):
    w = _weights(len(Z), sample_weight)
    return (np.asarray(Z, np.float64) - Y) * (w / w.sum())[:, None]


def logistic(Z):
    return _logistic(np.asarray(Z, np.float64))


def binary_xent_loss(Z, Y, sample_weight=None):
    """Binary cross-entropy of sigmoid(Z) (B, C) against Y in {0, 1}, summed over outputs,
    weighted mean over rows; written as softplus(z) - y z, which equals
    -(y log p + (1 - y) log(1 - p)) and stays finite for any z."""
    w = _weights(len(Z), sample_weight)
    Z = np.asarray(Z, np.float64)
    per = np.logaddexp(0.0, Z) - Y * Z
    return (w * per.sum(axis=1)).sum() / w.sum()


def binary_xent_grad(Z, Y, sample_weight=None):
    w = _weights(len(Z), sample_weight)
    return (logistic(Z) - Y) * (w / w.sum())[:, None]


def _xlogy(x, y):
    return np.where(x == 0, 0.0, x * np.log(np.where(x == 0, 1.0, y)))


def poisson_loss(Z, Y, sample_weight=None):
    """Half Poisson deviance of exp(Z) (B, C) against counts Y >= 0, summed over outputs,
    weighted mean over rows: y log(y / mu) - y + mu with mu = exp(z) (scikit-learn's
    poisson_loss, the constant y log y - y included)."""
    w = _weights(len(Z), sample_weight)
    Z = np.asarray(Z, np.float64)
    per = _xlogy(Y, Y) - Y * Z - Y + np.exp(Z)
    return (w * per.sum(axis=1)).sum() / w.sum()


def poisson_grad(Z, Y, sample_weight=None):
    w = _weights(len(Z), sample_weight)
    return (np.exp(np.asarray(Z, np.float64)) - Y) * (w / w.sum())[:, None]


# output code (mlpfast.kernels.softmax.OUT_*) -> (loss, its gradient with respect to the
# output layer's pre-activation, output activation)
OUTPUTS = {
    0: (squared_loss, squared_grad, lambda Z: np.asarray(Z, np.float64)),
    1: (xent_loss, xent_grad, softmax),
    2: (binary_xent_loss, binary_xent_grad, logistic),
    3: (poisson_loss, poisson_grad, lambda Z: np.exp(np.asarray(Z, np.float64))),
}


def forward(coefs, intercepts, X, activation):
    """Every layer's output; the last is the raw output (logits or regression values)."""
    outs = [np.asarray(X, np.float64)]
    f = ACTIVATIONS[activation]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = outs[-1] @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
        outs.append(z if i == len(coefs) - 1 else f(z))
    return outs


def loss(coefs, intercepts, X, target, activation, output, alpha=0.0, sample_weight=None):
    """scikit-learn's objective: weighted mean loss + 0.5 * alpha * ||W||^2 / sum(w)
    (sum(w) = B without weights). output: an OUT_* code (True/False: softmax/identity)."""
    Z = forward(coefs, intercepts, X, activation)[-1]
    data = OUTPUTS[int(output)][0](Z, target, sample_weight)
    l2 = sum(float((np.asarray(W, np.float64) ** 2).sum()) for W in coefs)
    return data + 0.5 * alpha * l2 / _weights(len(X), sample_weight).sum()


def gradient(coefs, intercepts, X, target, activation, output, alpha=0.0, sample_weight=None):
    """(loss, dcoefs, dintercepts) by backpropagation."""
    outs = forward(coefs, intercepts, X, activation)
    wsum = _weights(len(X), sample_weight).sum()
    Z = outs[-1]
    delta = OUTPUTS[int(output)][1](Z, target, sample_weight)
    dcoefs = [None] * len(coefs)
    dints = [None] * len(coefs)
    deriv = DERIVATIVES[activation]
    for i in range(len(coefs) - 1, -1, -1):
        dcoefs[i] = outs[i].T @ delta + alpha * np.asarray(coefs[i], np.float64) / wsum
        dints[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ np.asarray(coefs[i], np.float64).T) * deriv(outs[i])
    return (loss(coefs, intercepts, X, target, activation, output, alpha, sample_weight),
            dcoefs, dints)


def sgd_step(params, grads, velocities, lr, momentum, nesterov):
    out = []
    for p, g, v in zip(params, grads, velocities):
        v[...] = momentum * v - lr * g
        out.append(p + (momentum * v - lr * g if nesterov else v))
    return out


def adam_step(params, grads, ms, vs, t, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    lr_t = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    out = []
    for p, g, m, v in zip(params, grads, ms, vs):
        m[...] = beta_1 * m + (1 - beta_1) * g
        v[...] = beta_2 * v + (1 - beta_2) * g * g
        out.append(p - lr_t * m / (np.sqrt(v) + epsilon))
    return out
