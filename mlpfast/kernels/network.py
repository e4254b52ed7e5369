"""The whole network in compiled code: forward, backward, a run of training steps, prediction.

Legend: N rows of the data, B rows of a minibatch, L weight layers, widths (L+1,) =
(n_features, hidden..., n_outputs), P parameters, S chunks of a minibatch.

A minibatch is split into S row chunks (buffers.py). A step is two passes:
- the chunks, in one parallel region: each chunk's gather, forward, loss and backward on one
  thread and its own buffers, products and elementwise work alike (one region per step
  rather than one per product);
- the update (update.py): the chunks' gradients summed in chunk order, L2, the optimizer, the
  weights packed for the next step, split across threads by blocks of output rows.
The weights are packed once per step for every chunk's products (matmul.gemm_packed).
"""
import numba as nb
import numpy as np

from . import CACHE
from .activations import IDENTITY, activation_backward, dropout_backward
from .buffers import chunk_rows, layer_block, layer_panels, layer_params, pack_weights
from .matmul import gemm_packed, gemm_tn
from .optim import add_l2, bias_grad
from .random import dropout_mask, next_u64
from .softmax import softmax, softmax_xent_grad, squared_error_grad
from .update import ADAM, SGD, update  # noqa: F401  (SGD, ADAM: the solver codes)

# hyper (float64 array) slots
H_LR, H_ALPHA, H_MOMENTUM, H_BETA1, H_BETA2, H_EPSILON, H_DROPOUT = range(7)
# counters (int64 array) slots
C_ADAM_T, C_NESTEROV = range(2)
# totals (float64 array) slots
T_LOSS, T_CORRECT, T_ROWS = range(3)


@nb.njit(error_model="numpy", cache=CACHE)
def forward(ws, c, theta, layout, widths, rows, hidden, dropout):
    """Chunk c's input block (rows, widths[0]) of ws.acts must be filled, and the weights
    packed; fills every layer's output. The output layer is left as raw scores (logits or
    regression values)."""
    L = layout.shape[0]
    acts = ws.acts[c]
    cap = ws.ybuf.shape[1]
    for layer in range(L):
        A_in = layer_block(acts, widths, rows, cap, layer)
        A_out = layer_block(acts, widths, rows, cap, layer + 1)
        _, b = layer_params(theta, layout, layer)
        last = layer == L - 1
        # A_out (B, O) = act(A_in (B, I) . Wt (O, I).T + b)
        gemm_packed(A_out, A_in, layer_panels(ws, layout, layer, np.int64(0)), b,
                    IDENTITY if last else hidden, ws.work[c])
        if dropout > 0 and not last:
            dropout_mask(layer_block(ws.masks[c], widths, rows, cap, layer + 1), A_out, dropout,
                         ws.chunk_rng[c:c + 1])


@nb.njit(error_model="numpy", cache=CACHE)
def backward(ws, c, grad, layout, widths, rows, hidden, dropout):
    """From chunk c's output delta block, fills grad (without L2) and every hidden delta."""
    L = layout.shape[0]
    cap = ws.ybuf.shape[1]
    acts = ws.acts[c]
    deltas = ws.deltas[c]
    no_bias = grad[:0]
    identity = np.int64(IDENTITY)
    for layer in range(L - 1, -1, -1):
        dZ = layer_block(deltas, widths, rows, cap, layer + 1)
        A_in = layer_block(acts, widths, rows, cap, layer)
        dWt, db = layer_params(grad, layout, layer)
        # dWt (O, I) = dZ.T (O, B) . A_in (B, I)
        gemm_tn(dWt, dZ, A_in, no_bias, identity, ws.work[c])
        bias_grad(db, dZ)
        if layer > 0:
            # dA_in (B, I) = dZ (B, O) . Wt (O, I), then through the activation
            dA = layer_block(deltas, widths, rows, cap, layer)
            gemm_packed(dA, dZ, layer_panels(ws, layout, layer, np.int64(1)), no_bias, identity,
                        ws.work[c])
            if dropout > 0:
                dropout_backward(dA, A_in, layer_block(ws.masks[c], widths, rows, cap, layer),
                                 hidden)
            else:
                activation_backward(dA, A_in, hidden)


@nb.njit(error_model="numpy", cache=CACHE)
def chunk_gradient(ws, c, X, y, Y, perm, start, rows, scale, theta, grad, layout, widths,
                   hidden, classify, dropout):
    """Chunk c of a minibatch, rows perm[start:start+rows]: gather, forward, loss, backward.
    Its share of the gradient of the mean loss (scale = 1 / minibatch rows, no L2) goes in
    grad, (summed loss, rows predicted right) in ws.losses[c]."""
    cap = ws.ybuf.shape[1]
    Xb = layer_block(ws.acts[c], widths, rows, cap, 0)
    for i in range(rows):
        r = perm[start + i]
        Xb[i, :] = X[r, :]
        if classify:
            ws.ybuf[c, i] = y[r]
        else:
            ws.Ybuf[c, i, :] = Y[r, :]
    forward(ws, c, theta, layout, widths, rows, hidden, dropout)
    L = layout.shape[0]
    Z = layer_block(ws.acts[c], widths, rows, cap, L)
    dZ = layer_block(ws.deltas[c], widths, rows, cap, L)
    correct = 0
    if classify:
        loss, correct = softmax_xent_grad(dZ, Z, ws.ybuf[c, :rows], scale)
    else:
        loss = squared_error_grad(dZ, Z, ws.Ybuf[c, :rows], scale)
    backward(ws, c, grad, layout, widths, rows, hidden, dropout)
    ws.losses[c, 0] = loss
    ws.losses[c, 1] = correct


@nb.njit(error_model="numpy", cache=CACHE)
def _draw_streams(ws, S, dropout, rng):
    # one dropout stream per chunk, drawn in chunk order from the fit's stream
    if dropout > 0:
        for c in range(S):
            ws.chunk_rng[c] = next_u64(rng)


@nb.njit(error_model="numpy", cache=CACHE)
def _loss_of_chunks(ws, S):
    loss = 0.0
    correct = 0
    for c in range(S):
        loss += ws.losses[c, 0]
        correct += int(ws.losses[c, 1])
    return loss, correct


@nb.njit(error_model="numpy", cache=CACHE)
def batch_gradient(ws, X, y, Y, perm, start, rows, theta, grad, layout, widths, hidden,
                   classify, alpha, dropout, rng):
    """Gradient of the mean loss (+ L2) over rows perm[start:start+rows] into grad, without
    an update; the chunks one after the other (for checks: training runs them in parallel).

    Returns (rows * batch loss, rows predicted right), scikit-learn's loss convention:
    mean loss + 0.5 * alpha * ||W||^2 / rows.
    """
    pack_weights(ws, theta, layout, np.bool_(True))
    S, per = chunk_rows(rows, ws.acts.shape[0])
    _draw_streams(ws, S, dropout, rng)
    for c in range(S):
        lo = c * per
        g = grad if c == 0 else ws.grads[c - 1]
        chunk_gradient(ws, c, X, y, Y, perm, start + lo, min(rows, lo + per) - lo, 1.0 / rows,
                       theta, g, layout, widths, hidden, classify, dropout)
    # chunk order, as the update sums them
    for c in range(S - 1):
        g = ws.grads[c]
        for p in range(grad.shape[0]):
            grad[p] += g[p]
    loss, correct = _loss_of_chunks(ws, S)
    sq = add_l2(grad, theta, layout, alpha / rows)
    return loss + 0.5 * alpha * sq, correct


@nb.njit(error_model="numpy", parallel=True, cache=CACHE)
def train_batches(ws, workers, X, y, Y, perm, first, last, cap, theta, grad, opt1, opt2, layout,
                  widths, hidden, classify, solver, hyper, counters, rng, totals):
    """Minibatches first..last-1 of the order `perm`: gradient, then one optimizer step each.
    The chunks of a minibatch run in parallel, the update on up to `workers` threads.

    opt1/opt2 are SGD's velocity (opt2 unused) or Adam's m and v. Adds the summed loss, the
    rows predicted right and the rows seen to totals.

    The parallel loop sits here rather than in a function of its own: Numba re-optimises
    everything a function calls when it compiles it, and each level of calls above the
    network cost seconds of the first fit's compilation.
    """
    n = X.shape[0]
    alpha = hyper[H_ALPHA]
    dropout = hyper[H_DROPOUT]
    # theta may have changed since the last call (warm start, partial_fit, set weights)
    pack_weights(ws, theta, layout, np.bool_(True))
    for b in range(first, last):
        start = b * cap
        rows = min(cap, n - start)
        S, per = chunk_rows(rows, ws.acts.shape[0])
        _draw_streams(ws, S, dropout, rng)
        if S == 1:
            # no parallel region for one chunk: waking the other threads costs microseconds,
            # a fifth of a small network's step
            chunk_gradient(ws, np.int64(0), X, y, Y, perm, start, rows, 1.0 / rows, theta,
                           grad, layout, widths, hidden, classify, dropout)
        else:
            for c_ in nb.prange(S):
                c = np.int64(c_)
                lo = c * per
                g = grad if c == 0 else ws.grads[c - 1]
                chunk_gradient(ws, c, X, y, Y, perm, start + lo, min(rows, lo + per) - lo,
                               1.0 / rows, theta, g, layout, widths, hidden, classify, dropout)
        loss, correct = _loss_of_chunks(ws, S)
        if solver == ADAM:
            counters[C_ADAM_T] += 1
        sq = update(ws, workers, theta, grad, opt1, opt2, layout, S, alpha / rows, solver,
                    hyper[H_LR], hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPSILON],
                    counters[C_ADAM_T], hyper[H_MOMENTUM], counters[C_NESTEROV] != 0)
        totals[T_LOSS] += loss + 0.5 * alpha * sq
        totals[T_CORRECT] += correct
        totals[T_ROWS] += rows


@nb.njit(error_model="numpy", cache=CACHE)
def predict_raw(ws, out, X, theta, layout, widths, hidden, classify):
    """out (N, C) = the network's output for X (N, I): class probabilities or regression values.

    Works through X in blocks of chunk_cap rows in chunk 0's buffers, so that activations
    stay in cache-sized blocks; a row's output does not depend on its block. On one thread:
    a parallel loop here would add its own copy of the network to the first run's
    compilation (8 s of 2-core time) to save milliseconds on the files people predict."""
    pack_weights(ws, theta, layout, np.bool_(False))
    cap = ws.ybuf.shape[1]
    zero = np.int64(0)
    acts = ws.acts[0]
    for start in range(0, X.shape[0], cap):
        rows = min(cap, X.shape[0] - start)
        layer_block(acts, widths, rows, cap, 0)[:, :] = X[start: start + rows, :]
        forward(ws, zero, theta, layout, widths, rows, hidden, 0.0)
        Z = layer_block(acts, widths, rows, cap, layout.shape[0])
        if classify:
            softmax(out[start: start + rows], Z)
        else:
            out[start: start + rows, :] = Z
