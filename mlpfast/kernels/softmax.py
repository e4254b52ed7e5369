"""Output layers: stable softmax, and the losses fused with their gradient.

Legend: B rows (batch), C classes or regression targets.

Softmax + categorical cross-entropy. With S = softmax(z), dS_j/dz_k = S_j (delta_jk - S_k) and
L = -log S_y; chained, dL/dz_k = sum_j (-delta_jy / S_j) S_j (delta_jk - S_k) = S_k - delta_ky.
So the gradient of the mean loss over a batch is (y_hat - y) / B, and the C x C Jacobian is never
built. The row max is subtracted before exp so that exp never overflows (logits of 1e4 are
fine), and the loss is taken as log-sum-exp minus the true logit, never as log(S_y), which is
-inf once S_y rounds to 0.
"""
import math

import numba as nb

from . import CACHE

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
            e = math.exp(Z[i, k] - m)
            P[i, k] = e
            s += e
        inv = 1.0 / s
        for k in range(C):
            P[i, k] *= inv


@nb.njit(error_model="numpy", cache=CACHE)
def softmax_xent_grad(dZ, Z, y, scale):
    """One pass per row: dZ (B, C) = (softmax(Z) - onehot(y)) * scale.

    Z (B, C) logits, y (B,) class indices, scale usually 1/B. Returns (sum of the B row losses
    -log softmax(Z)[y], number of rows whose argmax is y). dZ may be Z.
    """
    B, C = Z.shape
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
            e = math.exp(Z[i, k] - m)
            dZ[i, k] = e
            s += e
        loss += math.log(s) + m - zt
        if best == t:
            correct += 1
        inv = scale / s
        for k in range(C):
            dZ[i, k] *= inv
        dZ[i, t] -= scale
    return loss, correct


@nb.njit(error_model="numpy", cache=CACHE)
def squared_error_grad(dZ, Z, Y, scale):
    """dZ (B, C) = (Z - Y) * scale; returns the sum over rows of 0.5 * ||Z_i - Y_i||^2."""
    B, C = Z.shape
    loss = 0.0
    for i in range(B):
        for k in range(C):
            d = Z[i, k] - Y[i, k]
            loss += 0.5 * d * d
            dZ[i, k] = d * scale
    return loss
