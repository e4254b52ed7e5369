"""The whole network in compiled code: forward, backward, a run of training steps, prediction.

Legend: N rows of the data, B rows of a minibatch (cap = the batch size buffers are sized
for), L weight layers, widths (L+1,) = (n_features, hidden..., n_outputs), P parameters.

Buffers (allocated once per fit by the engine, never inside these functions):
    theta, grad      (P,)  weights and biases, flat; layer l's weight is stored transposed,
                           Wt (O, I), so the forward product is in NT form (see matmul.py)
    layout           (L, 4) int64 rows (weight offset, bias offset, n_in, n_out)
    acts, deltas     (cap * sum(widths),) one (B, width) block per layer, input included:
                           acts holds each layer's output, deltas dLoss/d(pre-activation)
    masks            same size as acts; dropout masks of the hidden layers
    scratch          transposes for the backward products
    ybuf, Ybuf       the minibatch's targets (class indices, or regression targets)
"""
import numba as nb
import numpy as np

from .activations import IDENTITY, activation_backward, dropout_backward
from .matmul import SMALL_K, gemm_nn_small_k, gemm_nt, nn_rows, transpose
from .optim import adam_step, add_l2, bias_grad, sgd_step
from .random import dropout_mask
from .softmax import softmax, softmax_xent_grad, squared_error_grad

SGD = 0
ADAM = 1

# minibatches of at most this many rows take the weight gradient in the broadcast form
SMALL_BATCH = 32

# hyper (float64 array) slots
H_LR, H_ALPHA, H_MOMENTUM, H_BETA1, H_BETA2, H_EPSILON, H_DROPOUT = range(7)
# counters (int64 array) slots
C_ADAM_T, C_NESTEROV = range(2)
# totals (float64 array) slots
T_LOSS, T_CORRECT, T_ROWS = range(3)


def scratch_size(widths, cap):
    """Elements `scratch` needs: the larger of dZ.T + A.T and W for any layer."""
    need = 1
    for i, o in zip(widths[:-1], widths[1:]):
        need = max(need, cap * (i + o), i * o)
    return need


@nb.njit(error_model="numpy", inline="always", cache=True)
def layer_block(buf, widths, rows, cap, layer):
    """The (rows, widths[layer]) block of a per-layer buffer."""
    off = 0
    for k in range(layer):
        off += cap * widths[k]
    w = widths[layer]
    return buf[off: off + rows * w].reshape((rows, w))


@nb.njit(error_model="numpy", inline="always", cache=True)
def layer_params(theta, layout, layer):
    """Views (Wt (O, I), b (O,)) of weight layer `layer` (0-based) in a flat buffer."""
    w0 = layout[layer, 0]
    b0 = layout[layer, 1]
    n_in = layout[layer, 2]
    n_out = layout[layer, 3]
    return theta[w0: w0 + n_out * n_in].reshape((n_out, n_in)), theta[b0: b0 + n_out]


@nb.njit(error_model="numpy", cache=True)
def forward(theta, layout, widths, acts, masks, scratch, rows, cap, hidden, dropout, rng):
    """acts' input block (rows, widths[0]) must be filled; fills every layer's output.

    The output layer is left as raw scores (logits or regression values). scratch holds W
    (I, O) for layers with few inputs (see matmul.SMALL_K)."""
    L = layout.shape[0]
    for layer in range(L):
        A_in = layer_block(acts, widths, rows, cap, layer)
        A_out = layer_block(acts, widths, rows, cap, layer + 1)
        Wt, b = layer_params(theta, layout, layer)
        last = layer == L - 1
        act = IDENTITY if last else hidden
        n_in = widths[layer]
        if n_in <= SMALL_K:
            W = scratch[: n_in * widths[layer + 1]].reshape((n_in, widths[layer + 1]))
            transpose(W, Wt)
            gemm_nn_small_k(A_out, A_in, W, b, act)
        else:
            gemm_nt(A_out, A_in, Wt, b, act)
        if dropout > 0 and not last:
            dropout_mask(layer_block(masks, widths, rows, cap, layer + 1), A_out, dropout, rng)


@nb.njit(error_model="numpy", cache=True)
def backward(theta, grad, layout, widths, acts, deltas, masks, scratch, rows, cap, hidden, dropout):
    """From the output layer's delta block, fills grad (without L2) and every hidden delta."""
    L = layout.shape[0]
    no_bias = theta[:0]
    for layer in range(L - 1, -1, -1):
        n_in = widths[layer]
        n_out = widths[layer + 1]
        dZ = layer_block(deltas, widths, rows, cap, layer + 1)
        A_in = layer_block(acts, widths, rows, cap, layer)
        Wt, _ = layer_params(theta, layout, layer)
        dWt, db = layer_params(grad, layout, layer)
        if rows <= SMALL_BATCH:
            # few rows to reduce over: the broadcast form on strided views, no transposes of
            # the batch; its output rows run along the longer of I and O. Serial: a parallel
            # copy for these views would double the cold compile time for small gains.
            if n_in >= n_out:
                nn_rows(dWt, dZ.T, A_in, no_bias, IDENTITY, 0, n_out)
            else:
                G = scratch[: n_in * n_out].reshape((n_in, n_out))
                nn_rows(G, A_in.T, dZ, no_bias, IDENTITY, 0, n_in)
                transpose(dWt, G)
        else:
            # dWt (O, I) = dZ.T (O, B) . A_in.T (I, B).T
            dZt = scratch[: n_out * rows].reshape((n_out, rows))
            A_inT = scratch[n_out * rows: (n_out + n_in) * rows].reshape((n_in, rows))
            transpose(dZt, dZ)
            transpose(A_inT, A_in)
            gemm_nt(dWt, dZt, A_inT, no_bias, IDENTITY)
        bias_grad(db, dZ)
        if layer > 0:
            # dA_in (B, I) = dZ (B, O) . W (I, O).T, then through the activation
            dA = layer_block(deltas, widths, rows, cap, layer)
            if n_out <= SMALL_K:
                gemm_nn_small_k(dA, dZ, Wt, no_bias, IDENTITY)
            else:
                W = scratch[: n_in * n_out].reshape((n_in, n_out))
                transpose(W, Wt)
                gemm_nt(dA, dZ, W, no_bias, IDENTITY)
            if dropout > 0:
                dropout_backward(dA, A_in, layer_block(masks, widths, rows, cap, layer), hidden)
            else:
                activation_backward(dA, A_in, hidden)


@nb.njit(error_model="numpy", cache=True)
def batch_gradient(X, y, Y, perm, start, rows, cap, theta, grad, layout, widths, acts, deltas,
                   masks, scratch, ybuf, Ybuf, hidden, classify, alpha, dropout, rng):
    """Gradient of the mean loss (+ L2) over rows perm[start:start+rows] into grad.

    Returns (rows * batch loss, rows predicted right), scikit-learn's loss convention:
    mean loss + 0.5 * alpha * ||W||^2 / rows.
    """
    Xb = layer_block(acts, widths, rows, cap, 0)
    for i in range(rows):
        r = perm[start + i]
        Xb[i, :] = X[r, :]
        if classify:
            ybuf[i] = y[r]
        else:
            Ybuf[i, :] = Y[r, :]
    forward(theta, layout, widths, acts, masks, scratch, rows, cap, hidden, dropout, rng)
    L = layout.shape[0]
    Z = layer_block(acts, widths, rows, cap, L)
    dZ = layer_block(deltas, widths, rows, cap, L)
    scale = 1.0 / rows
    correct = 0
    if classify:
        loss, correct = softmax_xent_grad(dZ, Z, ybuf[:rows], scale)
    else:
        loss = squared_error_grad(dZ, Z, Ybuf[:rows], scale)
    backward(theta, grad, layout, widths, acts, deltas, masks, scratch, rows, cap, hidden, dropout)
    sq = add_l2(grad, theta, layout, alpha / rows)
    return loss + 0.5 * alpha * sq, correct


@nb.njit(error_model="numpy", cache=True)
def train_batches(X, y, Y, perm, first, last, cap, theta, grad, opt1, opt2, layout, widths,
                  acts, deltas, masks, scratch, ybuf, Ybuf, hidden, classify, solver, hyper,
                  counters, rng, totals):
    """Minibatches first..last-1 of the order `perm`: gradient, then one optimizer step each.

    opt1/opt2 are SGD's velocity (opt2 unused) or Adam's m and v. Adds the summed loss, the
    rows predicted right and the rows seen to totals.
    """
    n = X.shape[0]
    for b in range(first, last):
        start = b * cap
        rows = min(cap, n - start)
        loss, correct = batch_gradient(X, y, Y, perm, start, rows, cap, theta, grad, layout,
                                       widths, acts, deltas, masks, scratch, ybuf, Ybuf, hidden,
                                       classify, hyper[H_ALPHA], hyper[H_DROPOUT], rng)
        totals[T_LOSS] += loss
        totals[T_CORRECT] += correct
        totals[T_ROWS] += rows
        if solver == ADAM:
            counters[C_ADAM_T] += 1
            adam_step(theta, grad, opt1, opt2, counters[C_ADAM_T], hyper[H_LR],
                      hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPSILON])
        else:
            sgd_step(theta, grad, opt1, hyper[H_LR], hyper[H_MOMENTUM],
                     counters[C_NESTEROV] != 0)


@nb.njit(error_model="numpy", cache=True)
def predict_raw(out, X, theta, layout, widths, acts, scratch, cap, hidden, classify):
    """out (N, C) = the network's output for X (N, I): class probabilities or regression values.

    Works through X in chunks of cap rows so that activations stay in the given buffer."""
    n = X.shape[0]
    L = layout.shape[0]
    no_rng = np.zeros(1, dtype=np.uint64)
    for start in range(0, n, cap):
        rows = min(cap, n - start)
        Xb = layer_block(acts, widths, rows, cap, 0)
        Xb[:, :] = X[start: start + rows, :]
        forward(theta, layout, widths, acts, acts, scratch, rows, cap, hidden, 0.0, no_rng)
        Z = layer_block(acts, widths, rows, cap, L)
        if classify:
            softmax(out[start: start + rows], Z)
        else:
            out[start: start + rows, :] = Z
