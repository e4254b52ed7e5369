"""Plain NumPy float64 versions of every kernel and of a whole forward/backward pass.

Slow and obvious on purpose: tests compare the compiled kernels with these, and check these
against central finite differences. Shapes use the same legend as mlpfast.kernels. Weights here
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


def xent_loss(Z, y):
    """Mean categorical cross-entropy of logits Z (B, C) against class indices y (B,)."""
    return -log_softmax(Z)[np.arange(len(y)), y].mean()


def xent_grad(Z, y):
    """d xent_loss / dZ = (softmax(Z) - onehot(y)) / B."""
    G = softmax(Z)
    G[np.arange(len(y)), y] -= 1.0
    return G / len(y)


def squared_loss(Z, Y):
    """0.5 * ||Z - Y||^2 summed over outputs, averaged over rows."""
    D = np.asarray(Z, np.float64) - Y
    return 0.5 * (D * D).sum() / len(D)


def squared_grad(Z, Y):
    return (np.asarray(Z, np.float64) - Y) / len(Z)


def forward(coefs, intercepts, X, activation):
    """Every layer's output; the last is the raw output (logits or regression values)."""
    outs = [np.asarray(X, np.float64)]
    f = ACTIVATIONS[activation]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        z = outs[-1] @ np.asarray(W, np.float64) + np.asarray(b, np.float64)
        outs.append(z if i == len(coefs) - 1 else f(z))
    return outs


def loss(coefs, intercepts, X, target, activation, classify, alpha=0.0):
    """scikit-learn's objective: mean loss + 0.5 * alpha * ||W||^2 / B."""
    Z = forward(coefs, intercepts, X, activation)[-1]
    data = xent_loss(Z, target) if classify else squared_loss(Z, target)
    l2 = sum(float((np.asarray(W, np.float64) ** 2).sum()) for W in coefs)
    return data + 0.5 * alpha * l2 / len(X)


def gradient(coefs, intercepts, X, target, activation, classify, alpha=0.0):
    """(loss, dcoefs, dintercepts) by backpropagation."""
    outs = forward(coefs, intercepts, X, activation)
    B = len(X)
    Z = outs[-1]
    delta = xent_grad(Z, target) if classify else squared_grad(Z, target)
    dcoefs = [None] * len(coefs)
    dints = [None] * len(coefs)
    deriv = DERIVATIVES[activation]
    for i in range(len(coefs) - 1, -1, -1):
        dcoefs[i] = outs[i].T @ delta + alpha * np.asarray(coefs[i], np.float64) / B
        dints[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ np.asarray(coefs[i], np.float64).T) * deriv(outs[i])
    return loss(coefs, intercepts, X, target, activation, classify, alpha), dcoefs, dints


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
