"""The whole network in compiled code: forward, backward, a run of training steps, prediction.

Legend: N rows of the data, B rows of a minibatch (cap = the batch size buffers are sized
for), L weight layers, widths (L+1,) = (n_features, hidden..., n_outputs), P parameters,
S chunks of a minibatch (chunk_cap rows each at most).

A minibatch is split into S row chunks (chunk_count: from the batch size alone, so results
do not depend on the thread count). One parallel region per step runs every chunk's gather,
forward, loss and backward on its own buffers, each chunk's products on one thread; the
chunks' gradients are then summed in chunk order. Elementwise work (activations, the loss,
their derivatives) is split with the products, and a step opens one parallel region instead
of one per product.

Buffers (allocated once per fit by the engine, never inside these functions), in a Workspace:
    theta, grad      (P,)  weights and biases, flat; layer l's weight is stored transposed,
                           Wt (O, I) (see matmul.py for how the products read it)
    layout           (L, 4) int64 rows (weight offset, bias offset, n_in, n_out)
    acts, deltas     (S, chunk_cap * sum(widths)) one (rows, width) block per layer, input
                           included: acts holds each layer's output, deltas dLoss/d(pre-act.)
    masks            same shape as acts; dropout masks of the hidden layers
    work             (S, rows, NR) per chunk: panels of its weight-gradient products
    grads            (S - 1, P) the gradients of chunks 1.. (chunk 0 writes grad)
    ybuf, Ybuf       (S, chunk_cap) / (S, chunk_cap, n_outputs) the chunks' targets
    wpack, wpanels   the weights packed once per step for every chunk's products: layer l's
                     forward panels (Wt transposed) start at row wpanels[l, 0], its
                     input-gradient panels (Wt) at wpanels[l, 1]
    chunk_rng        (S,) uint64 dropout streams, drawn from the fit's stream every step
    losses           (S, 2) float64 per chunk: summed loss, rows predicted right
"""
from collections import namedtuple

import numba as nb
import numpy as np

from .. import config
from .activations import IDENTITY, activation_backward, dropout_backward
from .matmul import gemm_packed, gemm_tn, nr_of, pack_b, pack_shape, packed_rows
from .optim import adam_step, add_l2, bias_grad, sgd_step
from .random import dropout_mask, next_u64
from .softmax import softmax, softmax_xent_grad, squared_error_grad

SGD = 0
ADAM = 1

# hyper (float64 array) slots
H_LR, H_ALPHA, H_MOMENTUM, H_BETA1, H_BETA2, H_EPSILON, H_DROPOUT = range(7)
# counters (int64 array) slots
C_ADAM_T, C_NESTEROV = range(2)
# totals (float64 array) slots
T_LOSS, T_CORRECT, T_ROWS = range(3)

Workspace = namedtuple("Workspace", "acts deltas masks work grads ybuf Ybuf wpack wpanels "
                                    "chunk_rng losses")


@nb.njit(error_model="numpy", cache=True)
def chunk_count(rows):
    """Chunks for a minibatch of `rows` rows: one per CHUNK_ROWS rows, at least two once there
    are CHUNK_ROWS rows, at most MAX_CHUNKS."""
    per = config.CHUNK_ROWS
    return max(1, min(config.MAX_CHUNKS, max(rows // per, min(2, rows // (per // 2)))))


@nb.njit(error_model="numpy", cache=True)
def chunk_rows(rows, S):
    """(chunks used, rows per chunk but the last) for a minibatch of `rows` rows in a
    workspace of S chunks."""
    used = min(S, chunk_count(rows))
    per = (rows + used - 1) // used
    return (rows + per - 1) // per, per


def weight_panels(widths, dtype):
    """(L, 2) int64 first rows of each layer's forward and input-gradient panels in wpack, and
    wpack's row count."""
    rows = []
    off = 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        fwd = off
        off += packed_rows(n_in, n_out, dtype)
        rows.append((fwd, off))
        off += packed_rows(n_out, n_in, dtype)
    return np.array(rows, dtype=np.int64).reshape(-1, 2), off


def workspace(widths, dtype, n_targets, n_params, chunks, chunk_cap):
    """The buffers of `chunks` chunks of up to chunk_cap rows each."""
    per_chunk = chunk_cap * int(sum(widths))
    wpanels, wrows = weight_panels(widths, dtype)
    return Workspace(
        acts=np.zeros((chunks, per_chunk), dtype), deltas=np.zeros((chunks, per_chunk), dtype),
        masks=np.zeros((chunks, per_chunk), dtype),
        work=np.zeros((chunks,) + pack_shape(dtype, max(widths), chunk_cap, 1), dtype),
        grads=np.zeros((chunks - 1, n_params), dtype),
        ybuf=np.zeros((chunks, chunk_cap), np.int32),
        Ybuf=np.zeros((chunks, chunk_cap, n_targets), dtype),
        wpack=np.zeros((max(1, wrows), nr_of(dtype)), dtype), wpanels=wpanels,
        chunk_rng=np.zeros(chunks, np.uint64), losses=np.zeros((chunks, 2), np.float64))


@nb.njit(error_model="numpy", cache=True)
def _largest_chunk(cap, S):
    # the most rows chunk_rows gives a chunk, over every minibatch of <= cap rows
    most = 1
    for rows in range(1, cap + 1):
        most = max(most, chunk_rows(rows, S)[1])
    return most


def train_workspace(widths, dtype, n_targets, n_params, cap):
    """Buffers for training on minibatches of up to cap rows."""
    S = chunk_count(cap)
    return workspace(widths, dtype, n_targets, n_params, S, _largest_chunk(cap, S))


def predict_workspace(widths, dtype, rows, threads):
    """Buffers for predicting `rows` rows on `threads` threads."""
    chunk_cap = max(1, min(rows, config.PREDICT_CHUNK_ROWS))
    chunks = max(1, min(threads, -(-rows // chunk_cap)))
    return workspace(widths, dtype, 0, 0, chunks, chunk_cap)


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
def _layer_panels(ws, layout, layer, which):
    # layer's forward (which=0) or input-gradient (which=1) panels in ws.wpack
    n_in = layout[layer, 2]
    n_out = layout[layer, 3]
    K = n_in if which == 0 else n_out
    N = n_out if which == 0 else n_in
    r0 = ws.wpanels[layer, which]
    NR = ws.wpack.shape[1]
    return ws.wpack[r0: r0 + (N + NR - 1) // NR * K]


@nb.njit(error_model="numpy", cache=True)
def pack_weights(ws, theta, layout, backward_too):
    """Every layer's weights into ws.wpack: forward panels (B = Wt.T) and, for training, the
    input gradient's (B = Wt)."""
    zero = np.int64(0)
    for layer in range(layout.shape[0]):
        Wt, _ = layer_params(theta, layout, layer)
        n_out, n_in = Wt.shape
        pack_b(_layer_panels(ws, layout, layer, zero), Wt, np.bool_(True), zero, n_in, zero,
               n_out)
        if backward_too and layer > 0:
            pack_b(_layer_panels(ws, layout, layer, np.int64(1)), Wt, np.bool_(False), zero,
                   n_out, zero, n_in)


@nb.njit(error_model="numpy", cache=True)
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
        gemm_packed(A_out, A_in, _layer_panels(ws, layout, layer, np.int64(0)), b,
                    IDENTITY if last else hidden, ws.work[c])
        if dropout > 0 and not last:
            dropout_mask(layer_block(ws.masks[c], widths, rows, cap, layer + 1), A_out, dropout,
                         ws.chunk_rng[c:c + 1])


@nb.njit(error_model="numpy", cache=True)
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
            gemm_packed(dA, dZ, _layer_panels(ws, layout, layer, np.int64(1)), no_bias, identity,
                        ws.work[c])
            if dropout > 0:
                dropout_backward(dA, A_in, layer_block(ws.masks[c], widths, rows, cap, layer),
                                 hidden)
            else:
                activation_backward(dA, A_in, hidden)


@nb.njit(error_model="numpy", cache=True)
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


@nb.njit(error_model="numpy", cache=True)
def _predict_chunk(ws, c, out, X, start, rows, theta, layout, widths, hidden, classify):
    # out[start:start+rows] for X's rows there, in chunk c's buffers (weights packed)
    cap = ws.ybuf.shape[1]
    Xb = layer_block(ws.acts[c], widths, rows, cap, 0)
    Xb[:, :] = X[start: start + rows, :]
    forward(ws, c, theta, layout, widths, rows, hidden, 0.0)
    Z = layer_block(ws.acts[c], widths, rows, cap, layout.shape[0])
    if classify:
        softmax(out[start: start + rows], Z)
    else:
        out[start: start + rows, :] = Z


GRADIENT = 0
PREDICT = 1


@nb.njit(error_model="numpy", parallel=True, cache=True)
def _run_chunks(job, ws, S, per, X, y, Y, perm, start, rows, theta, grad, layout, widths, hidden,
                classify, dropout, out):
    # S chunks in parallel. GRADIENT: chunk c is rows c*per ... of the minibatch at start.
    # PREDICT: chunk buffers c serve row blocks c, c + S, ... of X, per rows each.
    # Training and prediction share this one parallel region: each region costs seconds of
    # compilation, for the whole network beneath it.
    for c_ in nb.prange(S):
        c = np.int64(c_)
        if job == GRADIENT:
            lo = c * per
            g = grad if c == 0 else ws.grads[c - 1]
            chunk_gradient(ws, c, X, y, Y, perm, start + lo, min(rows, lo + per) - lo,
                           1.0 / rows, theta, g, layout, widths, hidden, classify, dropout)
        else:
            for k in range(c, (X.shape[0] + per - 1) // per, S):
                _predict_chunk(ws, c, out, X, k * per, min(per, X.shape[0] - k * per), theta,
                               layout, widths, hidden, classify)


@nb.njit(error_model="numpy", cache=True)
def batch_gradient(ws, X, y, Y, perm, start, rows, theta, grad, layout, widths, hidden,
                   classify, alpha, dropout, rng):
    """Gradient of the mean loss (+ L2) over rows perm[start:start+rows] into grad.

    Returns (rows * batch loss, rows predicted right), scikit-learn's loss convention:
    mean loss + 0.5 * alpha * ||W||^2 / rows.
    """
    pack_weights(ws, theta, layout, True)
    S, per = chunk_rows(rows, ws.acts.shape[0])
    if dropout > 0:
        for c in range(S):
            ws.chunk_rng[c] = next_u64(rng)
    if S == 1:
        chunk_gradient(ws, np.int64(0), X, y, Y, perm, start, rows, 1.0 / rows, theta, grad,
                       layout, widths, hidden, classify, dropout)
    else:
        _run_chunks(np.int64(GRADIENT), ws, S, per, X, y, Y, perm, start, rows, theta, grad, layout,
                    widths, hidden, classify, dropout, ws.Ybuf[0])
        # chunk order, whichever thread finished first
        for c in range(1, S):
            g = ws.grads[c - 1]
            for p in range(grad.shape[0]):
                grad[p] += g[p]
    loss = 0.0
    correct = 0
    for c in range(S):
        loss += ws.losses[c, 0]
        correct += int(ws.losses[c, 1])
    sq = add_l2(grad, theta, layout, alpha / rows)
    return loss + 0.5 * alpha * sq, correct


@nb.njit(error_model="numpy", cache=True)
def train_batches(ws, X, y, Y, perm, first, last, cap, theta, grad, opt1, opt2, layout, widths,
                  hidden, classify, solver, hyper, counters, rng, totals):
    """Minibatches first..last-1 of the order `perm`: gradient, then one optimizer step each.

    opt1/opt2 are SGD's velocity (opt2 unused) or Adam's m and v. Adds the summed loss, the
    rows predicted right and the rows seen to totals.
    """
    n = X.shape[0]
    for b in range(first, last):
        start = b * cap
        rows = min(cap, n - start)
        loss, correct = batch_gradient(ws, X, y, Y, perm, start, rows, theta, grad, layout,
                                       widths, hidden, classify, hyper[H_ALPHA],
                                       hyper[H_DROPOUT], rng)
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
def predict_raw(ws, out, X, theta, layout, widths, hidden, classify):
    """out (N, C) = the network's output for X (N, I): class probabilities or regression values.

    Works through X in chunks of chunk_cap rows, each in one chunk's buffers, so that
    activations stay in cache-sized blocks; a row's output does not depend on its chunk."""
    pack_weights(ws, theta, layout, False)
    cap = ws.ybuf.shape[1]
    if X.shape[0] <= cap:
        zero = np.int64(0)
        _predict_chunk(ws, zero, out, X, zero, X.shape[0], theta, layout, widths, hidden,
                       classify)
    else:
        # (the arguments of the training job are placeholders of the same types)
        zero = np.int64(0)
        _run_chunks(np.int64(PREDICT), ws, ws.acts.shape[0], cap, X, ws.ybuf[0], ws.Ybuf[0],
                    ws.wpanels[0], zero, zero, theta, ws.acts[0], layout, widths, hidden,
                    classify, 0.0, out)
