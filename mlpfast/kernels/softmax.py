"""Output layers: stable softmax, and the losses fused with their gradient.

Legend: B rows (batch), C classes, outputs or regression targets.

Every fused kernel takes the row weights w (B,) float64, or an empty array for none (one
compiled version for both), and a scale: row i's gradient is multiplied by w[i] * scale
(scale = 1 / the minibatch's sum of weights) or by scale alone (1 / B), and its loss by w[i].
Without weights the arithmetic is the one the kernels had before weights existed, bit for bit.

The kernels added with the output kinds (logistic_xent_grad, poisson_grad, output_activation)
are inlined into their callers by Numba (inline="always"): compiled as functions of their own
they added 0.5 s to the first fit's compilation and 0.25 s to the first predict's (2 cores).

Softmax + categorical cross-entropy. With S = softmax(z), dS_j/dz_k = S_j (delta_jk - S_k) and
L = -log S_y; chained, dL/dz_k = sum_j (-delta_jy / S_j) S_j (delta_jk - S_k) = S_k - delta_ky.
So the gradient of the mean loss over a batch is (y_hat - y) / B, and the C x C Jacobian is never
built. The row max is subtracted before exp so that exp never overflows (logits of 1e4 are
fine), and the loss is taken as log-sum-exp minus the true logit, never as log(S_y), which is
-inf once S_y rounds to 0.
"""
import math

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

from . import CACHE


def exp_of_shifted(x):
    """exp(x) for x = z - max(z) <= 0 (or NaN), as math.exp gives it: 0 below the bound
    where the dtype's exp underflows to 0 without calling it. glibc's expf and exp return
    +0 there through their underflow path, which sets errno: xflowf had 2 % of a W1 step's perf
    samples once the model's logits were well apart."""
    return math.exp(x)


# below these every x gives exp(x) = +0 in the dtype (glibc: expf under -103.972,
# exp under -745.133); NaN compares false and still goes to exp
_UNDERFLOW = {32: -104.0, 64: -746.0}


@overload(exp_of_shifted, jit_options={"error_model": "numpy"})
def _exp_of_shifted(x):
    if not isinstance(x, types.Float) or x.bitwidth not in _UNDERFLOW:
        return None
    below = _UNDERFLOW[x.bitwidth]
    zero = np.float32(0.0) if x.bitwidth == 32 else 0.0

    def impl(x):
        if x < below:
            return zero
        return math.exp(x)
    return impl

# Output layers: the output activation and the loss fused with it (NetSpec.output). Each pair
# is the canonical link of its loss, so the gradient of the loss with respect to the output
# layer's pre-activation z is always y_hat - y. IDENTITY and SOFTMAX are 0 and 1 so that the
# old boolean `classify` (False/True) still selects them.
OUT_IDENTITY = 0   # identity, half squared error; targets Y (N, C) float
OUT_SOFTMAX = 1    # softmax, categorical cross-entropy; targets y (N,) class indices
OUT_LOGISTIC = 2   # sigmoid per output, binary cross-entropy; targets Y (N, C) in {0, 1}
OUT_EXP = 3        # exp, half Poisson deviance (log link); targets Y (N, C) >= 0


@nb.njit(error_model="numpy", cache=CACHE)
def softmax(P, Z):
    """P (B, C) = softmax(Z (B, C)) row by row; P may be Z."""
    B, C = Z.shape
    for i in range(B):
        m = Z[i, 0]
        for k in range(1, C):
            if Z[i, k] > m:
                m = Z[i, k]
        s = 0.0
        for k in range(C):
            e = exp_of_shifted(Z[i, k] - m)
            P[i, k] = e
            s += e
        inv = 1.0 / s
        for k in range(C):
            P[i, k] *= inv




@nb.njit(error_model="numpy", cache=CACHE)
def softmax_xent_grad(dZ, Z, y, w, scale):
    """One pass per row: dZ (B, C) = (softmax(Z) - onehot(y)) * scale_i.

    Z (B, C) logits, y (B,) class indices. w (B,) float64 row weights, or empty for none:
    row i's scale_i is w[i] * scale (scale = 1 / sum of the weights), else scale (usually
    1/B). Returns (sum of the B row losses -log softmax(Z)[y], each times w[i] when weighted;
    number of rows whose argmax is y). dZ may be Z.
    """
    B, C = Z.shape
    weighted = w.shape[0] > 0
    loss = 0.0
    correct = 0
    for i in range(B):
        t = y[i]
        m = Z[i, 0]
        best = 0
        for k in range(1, C):
            if Z[i, k] > m:
                m = Z[i, k]
                best = k
        zt = Z[i, t]
        # sums in float64: C terms of up to 1 each, rounding would bias the loss otherwise
        s = 0.0
        for k in range(C):
            e = exp_of_shifted(Z[i, k] - m)
            dZ[i, k] = e
            s += e
        row = math.log(s) + m - zt
        rs = scale
        if weighted:
            rs = w[i] * scale
            row = w[i] * row
        loss += row
        if best == t:
            correct += 1
        inv = rs / s
        for k in range(C):
            dZ[i, k] *= inv
        dZ[i, t] -= rs
    return loss, correct


@nb.njit(error_model="numpy", cache=CACHE)
def squared_error_grad(dZ, Z, Y, w, scale):
    """dZ (B, C) = (Z - Y) * scale_i (w and scale_i as in softmax_xent_grad); returns the sum
    over rows of 0.5 * ||Z_i - Y_i||^2, each times w[i] when weighted."""
    B, C = Z.shape
    loss = 0.0
    if w.shape[0] == 0:
        # the unweighted sum element by element, as it always was (bit for bit)
        for i in range(B):
            for k in range(C):
                d = Z[i, k] - Y[i, k]
                loss += 0.5 * d * d
                dZ[i, k] = d * scale
        return loss
    for i in range(B):
        rs = w[i] * scale
        row = 0.0
        for k in range(C):
            d = Z[i, k] - Y[i, k]
            row += 0.5 * d * d
            dZ[i, k] = d * rs
        loss += w[i] * row
    return loss


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def logistic_xent_grad(dZ, Z, Y, w, scale):
    """One pass per row: dZ (B, C) = (sigmoid(Z) - Y) * scale_i (w and scale_i as in
    softmax_xent_grad), each output its own binary problem (binary classification with one
    output, multilabel with several).

    With p = sigmoid(z), L = -(y log p + (1 - y) log(1 - p)): dL/dp = (p - y) / (p (1 - p))
    and dp/dz = p (1 - p), so dL/dz = p - y and p (1 - p), which underflows to 0 for large
    |z|, is never divided by. The loss is taken as softplus(z) - y z (log p = -softplus(-z),
    log(1 - p) = -softplus(z), softplus(-z) = softplus(z) - z) with softplus(z) =
    max(z, 0) + log1p(exp(-|z|)): finite for any z, where log(p) is -inf once p rounds to 0.
    p comes from the same exp(-|z|) (1 / (1 + e) for z >= 0, e / (1 + e) below), which never
    overflows. In float64 whatever the dtype.

    Returns (sum over rows of the loss summed over outputs, each times w[i] when weighted;
    rows whose every output is right: (z > 0) == (y > 0.5), subset accuracy). dZ may be Z.
    """
    B, C = Z.shape
    weighted = w.shape[0] > 0
    loss = 0.0
    correct = 0
    for i in range(B):
        rs = scale
        if weighted:
            rs = w[i] * scale
        row = 0.0
        right = True
        for k in range(C):
            z = np.float64(Z[i, k])
            t = np.float64(Y[i, k])
            e = math.exp(-abs(z))
            row += max(z, 0.0) + math.log1p(e) - t * z
            p = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
            dZ[i, k] = (p - t) * rs
            if (z > 0) != (t > 0.5):
                right = False
        if weighted:
            row = w[i] * row
        loss += row
        if right:
            correct += 1
    return loss, correct


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def poisson_grad(dZ, Z, Y, w, scale):
    """dZ (B, C) = (exp(Z) - Y) * scale_i (w and scale_i as in softmax_xent_grad): the half
    Poisson deviance with the log link, mu = exp(z).

    L = y log(y / mu) - y + mu = y log y - y z - y + exp(z), so dL/dz = exp(z) - y = mu - y:
    exp is the canonical (inverse) link of the Poisson loss, as softmax is cross-entropy's.
    The constant y log y - y is kept, as scikit-learn's poisson_loss keeps it, with
    y log y = 0 at y = 0; the loss never takes a log of mu, so mu rounding to 0 is harmless.
    In float64 whatever the dtype. Returns the sum over rows of the loss summed over outputs,
    each times w[i] when weighted. dZ may be Z.
    """
    B, C = Z.shape
    weighted = w.shape[0] > 0
    loss = 0.0
    for i in range(B):
        rs = scale
        if weighted:
            rs = w[i] * scale
        row = 0.0
        for k in range(C):
            z = np.float64(Z[i, k])
            t = np.float64(Y[i, k])
            mu = math.exp(z)
            tlogt = t * math.log(t) if t > 0 else 0.0
            row += tlogt - t * z - t + mu
            dZ[i, k] = (mu - t) * rs
        if weighted:
            row = w[i] * row
        loss += row
    return loss


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def output_activation(P, Z, output):
    """P (B, C) = the output activation of code `output` (OUT_*) applied to Z (B, C), row by
    row; P may be Z. Sigmoid from exp(-|z|), which never overflows."""
    if output == OUT_SOFTMAX:
        softmax(P, Z)
        return
    B, C = Z.shape
    for i in range(B):
        for k in range(C):
            z = np.float64(Z[i, k])
            if output == OUT_LOGISTIC:
                e = math.exp(-abs(z))
                P[i, k] = 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)
            elif output == OUT_EXP:
                P[i, k] = math.exp(z)
            else:
                P[i, k] = z
