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

The data come as a buffers.Data tuple: dense rows or CSR rows (a chunk's gather densifies
only its own rows), targets for the output code `output` (softmax.OUT_*), and optional row
weights. Weights follow scikit-learn: a minibatch's loss is the weighted mean of its rows'
plus 0.5 * alpha * ||W||^2, both over the minibatch's sum of weights sw; row r's output delta
is scaled by w_r / sw and L2's coefficient is alpha / sw. A minibatch whose weights sum to 0
has no such mean: it is skipped (no gradient, no update, no Adam step, 0 added to the loss; its
rows still count as seen). Without weights (an empty w) the arithmetic is the unweighted one,
bit for bit.
"""
import sys

import numba as nb
import numpy as np

from . import CACHE, lock_cache_saves
from .addresses import call_at
from .. import config
from .activations import IDENTITY, activation_backward, dropout_backward
from .buffers import (Data, Workspace, borrowed, borrowed_data, borrowed_workspace, chunk_rows,
                      layer_block, layer_panels, layer_params, n_rows, pack_weights)
from .matmul import gemm_packed, gemm_tn
from .optim import add_l2, bias_grad
from .random import dropout_mask, next_u64
from .simd import prefetch
from .softmax import (OUT_EXP, OUT_LOGISTIC, OUT_SOFTMAX, logistic_xent_grad,
                      output_activation, poisson_grad, softmax_xent_grad, squared_error_grad)
from .update import ADAM, SGD, update, update_serial  # noqa: F401  (SGD, ADAM: the solver codes)

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


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _copy_row(dst, src):
    # dst[:] = src written out: an array-to-array slice assignment compiles Numba's
    # shape-mismatch error (its message formatting: string joins) into the caller, seconds of
    # the first run's compilation
    for j in range(src.shape[0]):
        dst[j] = src[j]


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _row_of(perm, i):
    # the data row of position i: perm[i], or i itself where perm is empty (the data's order)
    return perm[i] if perm.shape[0] > 0 else i


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def weight_sum(d, perm, start, rows):
    """Sum of the weights of rows perm[start:start+rows] in that order (rows when unweighted)."""
    w = d.w
    if w.shape[0] == 0:
        return np.float64(rows)
    sw = 0.0
    for i in range(rows):
        sw += w[_row_of(perm, start + i)]
    return sw


@nb.njit(error_model="numpy", cache=CACHE)
def chunk_gradient(ws, c, d, perm, start, rows, scale, theta, grad, layout, widths, hidden,
                   output, dropout):
    """Chunk c of a minibatch, rows perm[start:start+rows] of the data d (start.. when perm is
    empty): gather, forward, loss, backward. Its share of the gradient of the (weighted) mean
    loss goes in grad (no L2): scale = 1 / minibatch rows, or 1 / the minibatch's sum of
    weights when d.w is given, each row's delta times its weight then. (Summed loss, weighted
    when d.w is given; rows predicted right) in ws.losses[c]."""
    cap = ws.ybuf.shape[1]
    # the Data fields and the tests on them taken out of the row loop: a call per row with
    # the tuple, or the tests inside, cost W4 40 % and 8 % of its step
    X, data, indices, indptr, y, Y, w = d.X, d.data, d.indices, d.indptr, d.y, d.Y, d.w
    weighted = w.shape[0] > 0
    sparse = indptr.shape[0] > 0
    ordered = perm.shape[0] > 0
    Xb = layer_block(ws.acts[c], widths, rows, cap, 0)
    for i in range(rows):
        r = perm[start + i] if ordered else start + i
        if sparse:
            Xb[i, :] = 0
            for j in range(indptr[r], indptr[r + 1]):
                Xb[i, indices[j]] = data[j]
        else:
            _copy_row(Xb[i], X[r])
        if output == OUT_SOFTMAX:
            ws.ybuf[c, i] = y[r]
        else:
            _copy_row(ws.Ybuf[c, i], Y[r])
        if weighted:
            ws.wbuf[c, i] = w[r]
    forward(ws, c, theta, layout, widths, rows, hidden, dropout)
    L = layout.shape[0]
    Z = layer_block(ws.acts[c], widths, rows, cap, L)
    dZ = layer_block(ws.deltas[c], widths, rows, cap, L)
    wb = ws.wbuf[c, :rows] if weighted else ws.wbuf[c, :0]
    Yb = ws.Ybuf[c, :rows]
    correct = 0
    if output == OUT_SOFTMAX:
        loss, correct = softmax_xent_grad(dZ, Z, ws.ybuf[c, :rows], wb, scale)
    elif output == OUT_LOGISTIC:
        loss, correct = logistic_xent_grad(dZ, Z, Yb, wb, scale)
    elif output == OUT_EXP:
        loss = poisson_grad(dZ, Z, Yb, wb, scale)
    else:
        loss = squared_error_grad(dZ, Z, Yb, wb, scale)
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
def batch_gradient(ws, d, perm, start, rows, theta, grad, layout, widths, hidden, output, alpha,
                   dropout, rng):
    """Gradient of the (weighted) mean loss + L2 over rows perm[start:start+rows] (start.. when
    perm is empty) into grad, without an update; the chunks one after the other (for checks:
    training runs them in parallel).

    Returns (sw * batch loss, sw, rows predicted right) with sw the rows, or their sum of
    weights, and scikit-learn's batch loss: (weighted summed loss + 0.5 * alpha * ||W||^2) / sw.
    Weights summing to 0: grad = 0 and (0, 0, 0).
    """
    sw = weight_sum(d, perm, start, rows)
    if sw == 0:
        grad[:] = 0
        return 0.0, sw, 0
    pack_weights(ws, theta, layout, np.bool_(True))
    S, per = chunk_rows(rows, ws.acts.shape[0])
    _draw_streams(ws, S, dropout, rng)
    for c in range(S):
        lo = c * per
        g = grad if c == 0 else ws.grads[c - 1]
        chunk_gradient(ws, c, d, perm, start + lo, min(rows, lo + per) - lo, 1.0 / sw, theta, g,
                       layout, widths, hidden, output, dropout)
    # chunk order, as the update sums them
    for c in range(S - 1):
        g = ws.grads[c]
        for p in range(grad.shape[0]):
            grad[p] += g[p]
    loss, correct = _loss_of_chunks(ws, S)
    sq = add_l2(grad, theta, layout, alpha / sw)
    return loss + 0.5 * alpha * sq, sw, correct


def chunk_gradient_types(ws, d, perm, theta, grad, layout, widths, hidden, output):
    """The argument types (Numba types) that train_batches and full_gradient call
    chunk_gradient with, for its Address (addresses.address_of, their chunk_fn): their own
    arguments' (the same names), int64 for the chunk, its first row and its rows, float64 for
    the scale and the dropout rate (hyper is float64). About a millisecond (the types of a
    dozen arrays): a caller keeps the Address."""
    i8, f8 = nb.types.int64, nb.types.float64
    t = nb.typeof
    return (t(ws), i8, t(d), t(perm), i8, i8, f8, t(theta), t(grad), t(layout), t(widths),
            t(hidden), t(output), f8)


@nb.njit(error_model="numpy", parallel=True, cache=CACHE)
def train_batches(ws, workers, d, perm, first, last, cap, theta, grad, opt1, opt2, layout,
                  widths, hidden, output, solver, hyper, counters, rng, totals, chunk_fn,
                  task_fn):
    """Minibatches first..last-1 of the order `perm` over the data d: gradient, then one
    optimizer step each. The chunks of a minibatch run in parallel, the update on up to
    `workers` threads.

    opt1/opt2 are SGD's velocity (opt2 unused) or Adam's m and v. Adds to totals the rows times
    the batch loss (scikit-learn's accumulation: without weights, the summed loss + 0.5 * alpha
    * ||W||^2), the rows predicted right and the rows seen. With weights, a minibatch whose
    weights sum to 0 is skipped: no update and no Adam step, nothing added but its rows seen.

    The parallel loop sits here rather than in a function of its own: Numba re-optimises
    everything a function calls when it compiles it, and each level of calls above the
    network cost seconds of the first fit's compilation. For the same reason chunk_gradient
    is called through its address, chunk_fn (chunk_gradient_types), compiled once on its
    own: linked, its tree went through LLVM here and in the three levels of the parallel
    loop's body (the first fit compiled in 18-19 s instead of 22-27 s; W1, W2 and W4 steps
    unchanged within the A/B's noise). task_fn: update's _task Address (update.task_types).
    """
    # the arrays without their reference counts, for the views every step makes of them
    # (buffers.borrowed: W4 took 9.0 us a step with the counts, 7.4 without)
    ws = borrowed_workspace(ws)
    d = borrowed_data(d)
    perm, theta, grad, opt1, opt2 = (borrowed(perm), borrowed(theta), borrowed(grad),
                                     borrowed(opt1), borrowed(opt2))
    layout, widths, hyper, counters = (borrowed(layout), borrowed(widths), borrowed(hyper),
                                       borrowed(counters))
    rng, totals = borrowed(rng), borrowed(totals)
    n = n_rows(d)
    weighted = d.w.shape[0] > 0
    alpha = hyper[H_ALPHA]
    dropout = hyper[H_DROPOUT]
    # theta may have changed since the last call (warm start, partial_fit, set weights)
    pack_weights(ws, theta, layout, np.bool_(True))
    for b in range(first, last):
        start = b * cap
        rows = min(cap, n - start)
        # the minibatch's weight: its rows without weights (1 / rows is then the scale the
        # unweighted code always had, bit for bit)
        sw = weight_sum(d, perm, start, rows)
        if sw == 0:
            totals[T_ROWS] += rows
            continue
        S, per = chunk_rows(rows, ws.acts.shape[0])
        _draw_streams(ws, S, dropout, rng)
        if S == 1:
            # no parallel region for one chunk: waking the other threads costs microseconds,
            # a fifth of a small network's step; the next minibatch's rows asked for meanwhile
            if b + 1 < last:
                _prefetch_rows(d, perm, start + cap, min(cap, n - start - cap))
            call_at(chunk_fn, (ws, np.int64(0), d, perm, start, rows, 1.0 / sw, theta, grad,
                               layout, widths, hidden, output, dropout))
        else:
            for c_ in nb.prange(S):
                c = np.int64(c_)
                lo = c * per
                g = grad if c == 0 else ws.grads[c - 1]
                call_at(chunk_fn, (ws, c, d, perm, start + lo, min(rows, lo + per) - lo,
                                   1.0 / sw, theta, g, layout, widths, hidden, output, dropout))
        loss, correct = _loss_of_chunks(ws, S)
        if solver == ADAM:
            counters[C_ADAM_T] += 1
        sq = update(ws, workers, theta, grad, opt1, opt2, layout, S, alpha / sw, solver,
                    hyper[H_LR], hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPSILON],
                    counters[C_ADAM_T], hyper[H_MOMENTUM], counters[C_NESTEROV] != 0, task_fn)
        if weighted:
            totals[T_LOSS] += rows * ((loss + 0.5 * alpha * sq) / sw)
        else:
            totals[T_LOSS] += loss + 0.5 * alpha * sq
        totals[T_CORRECT] += correct
        totals[T_ROWS] += rows


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _prefetch_rows(d, perm, start, rows):
    """A hint that dense rows perm[start:start+rows] of d (their first 256 bytes) and their
    targets are read soon: the next minibatch's gather. Shuffled rows lie anywhere in the
    data, and waiting on them cost W4 1.5 of its 9 us per step. Changes no result."""
    X, y, Y, w = d.X, d.y, d.Y, d.w
    if d.indptr.shape[0] > 0 or X.shape[1] == 0:
        return
    line = max(1, 64 // X.itemsize)
    span = min(X.shape[1], 4 * line)
    for i in range(rows):
        r = _row_of(perm, start + i)
        row = X[r]
        for j in range(0, span, line):
            prefetch(row, j)
        prefetch(row, span - 1)
        if y.shape[0] > 0:
            prefetch(y, r)
        if Y.shape[1] > 0:
            prefetch(Y[r], 0)
        if w.shape[0] > 0:
            prefetch(w, r)


@nb.njit(error_model="numpy", cache=CACHE)
def _gather_block(d, perm, s0, rows, gX, gy, gY, gw):
    """Rows perm[s0:s0+rows] of the dense data d (s0.. when perm is empty), with their targets
    and weights, into the first rows of the block gX, gy, gY, gw (gy, gw empty when d has no
    such field), the rows a few ahead prefetched."""
    X, y, Y, w = d.X, d.y, d.Y, d.w
    ordered = perm.shape[0] > 0
    weighted = w.shape[0] > 0
    labels = gy.shape[0] > 0
    line = max(1, 64 // X.itemsize)
    span = min(X.shape[1], 4 * line)
    ahead = 8
    for i in range(rows):
        if i + ahead < rows and span > 0:
            q = perm[s0 + i + ahead] if ordered else s0 + i + ahead
            row = X[q]
            for j in range(0, span, line):
                prefetch(row, j)
            prefetch(row, span - 1)
            if labels:
                prefetch(y, q)
            if weighted:
                prefetch(w, q)
        r = perm[s0 + i] if ordered else s0 + i
        _copy_row(gX[i], X[r])
        if labels:
            gy[i] = y[r]
        _copy_row(gY[i], Y[r])
        if weighted:
            gw[i] = w[r]


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _model_ws(wss, k, S, R, T):
    # model k's buffers in a train_workspaces stack
    return Workspace(wss.acts[k, :S], wss.deltas[k, :S], wss.masks[k, :S], wss.work[k, :S],
                     wss.grads[k, :S - 1], wss.ybuf[k, :S], wss.Ybuf[k, :S], wss.wbuf[k, :S],
                     wss.wpack[k, :R], wss.wpanels, wss.tasks, wss.task_sq[k, :T],
                     wss.chunk_rng[k, :S], wss.losses[k, :S])


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _shares_rows(dsel, psel, firsts, lasts, k, m):
    # models k and m step through the same minibatches: same data, same order, same range
    return (dsel[k] == dsel[m] and psel[k] == psel[m] and firsts[k] == firsts[m]
            and lasts[k] == lasts[m])


@nb.njit(error_model="numpy", parallel=True, nogil=True, cache=CACHE)
def train_batches_many(wss, S, R, ds, dsel, perms, firsts, lasts, cap, thetas, grads, opt1s,
                       opt2s, P, layout, widths, hidden, output, solver, hypers, counters, rngs,
                       totals, order, bounds, psel, gbuf):
    """train_batches for K models at once, each on one thread: model k runs its minibatches
    firsts[k]..lasts[k]-1 of the order perms[psel[k]] over the data dsel[k] of ds in its own
    buffers, its chunks one after the other and its update on one thread, so that every
    model gets the bits train_batches gives it alone (which do not depend on the thread
    count).

    ds is a buffers.Data tuple of D data sets of one shape stacked along a leading axis (X
    (D, N, F), y (D, N), ...; D = 1 and views of one data set when the models share it).
    perms (Q, N) holds the distinct orders, psel (K,) each model's. The models share the
    network (layout, widths, hidden, output, solver) and the batch cap; each has its own row
    k of: wss (buffers.train_workspaces, S chunks and R wpack rows per model:
    buffers.workspace_sizes), thetas, grads, opt1s, opt2s (K, >= P; opt2s (K, 0) for SGD),
    hypers (K, >= 7), counters (K, >= 2), rngs (K, >= 1) and totals (K, >= 3), read and
    written as train_batches reads and writes its own.

    Thread t runs models order[bounds[t]:bounds[t+1]], each over its whole range: one
    parallel region per call, no synchronisation per step. A model alone runs its range with
    the totals and the Adam step count in registers, written back at the end (the same
    additions in the same order); the next minibatch's rows are prefetched during a step.
    Models next to each other in a thread's list that step through the same minibatches
    (the same dsel, psel, first and last) share their gather when the data are dense and
    gbuf has a block of at least cap rows for the thread: the rows (and targets, weights) of
    G minibatches are gathered once from the shuffled data into the thread's block of gbuf
    (a buffers.Data of (T, G * cap, ...) blocks: X (T, G * cap, F), y (T, G * cap) or (T, 0),
    Y (T, G * cap, n_targets), w (T, G * cap) or (T, 0)), then each model runs those G
    minibatches taking its rows from the block in order, as it would from the data
    (chunk_gradient, the same arithmetic): the scattered reads are paid once per block
    instead of once per model, and a model's state stays in cache over G steps.
    Without the GIL: a thread of together.run_together that steps aside (away()) runs its
    Python meanwhile, and a Ctrl-C reaches the caller during the call."""
    T = wss.tasks.shape[0]
    P1 = min(P, opt1s.shape[1])
    P2 = min(P, opt2s.shape[1])
    for t in nb.prange(bounds.shape[0] - 1):
        i = bounds[t]
        end = bounds[t + 1]
        while i < end:
            k = order[i]
            j = dsel[k]
            d = Data(ds.X[j], ds.data[j], ds.indices[j], ds.indptr[j], ds.y[j], ds.Y[j],
                     ds.w[j])
            g_end = i + 1
            B = gbuf.X.shape[1]
            if (d.indptr.shape[0] == 0 and t < gbuf.X.shape[0] and B >= cap
                    and gbuf.X.shape[2] == d.X.shape[1] and gbuf.Y.shape[1] >= B
                    and gbuf.Y.shape[2] == d.Y.shape[1]
                    and (d.y.shape[0] == 0 or gbuf.y.shape[1] >= B)
                    and (d.w.shape[0] == 0 or gbuf.w.shape[1] >= B)):
                while g_end < end and _shares_rows(dsel, psel, firsts, lasts, k, order[g_end]):
                    g_end += 1
            n = n_rows(d)
            weighted = d.w.shape[0] > 0
            perm = perms[psel[k]]
            first = firsts[k]
            last = lasts[k]
            # models order[i:g_end] run block after block of minibatches: with others
            # (shared), blocks of G gathered once into the thread's gbuf block, each model
            # then reading its rows from it in order; alone, one block of its whole range,
            # read from the data through perm with the next minibatch prefetched
            shared = g_end > i + 1
            if shared:
                src = Data(gbuf.X[t], d.data, d.indices, d.indptr,
                           gbuf.y[t] if d.y.shape[0] > 0 else d.y, gbuf.Y[t],
                           gbuf.w[t] if weighted else d.w)
                src_perm = perm[:0]
                G = gbuf.X.shape[1] // cap
            else:
                src = d
                src_perm = perm
                G = max(1, last - first)
            for m in range(i, g_end):
                km = order[m]
                pack_weights(_model_ws(wss, km, S, R, T), thetas[km, :P], layout,
                             np.bool_(True))
            for b0 in range(first, last, G):
                b1 = min(last, b0 + G)
                s0 = b0 * cap
                if shared:
                    _gather_block(d, perm, s0, min(n, b1 * cap) - s0, src.X, src.y, src.Y,
                                  src.w)
                for m in range(i, g_end):
                    km = order[m]
                    ws = _model_ws(wss, km, S, R, T)
                    theta = thetas[km, :P]
                    grad = grads[km, :P]
                    opt1 = opt1s[km, :P1]
                    opt2 = opt2s[km, :P2]
                    hyper = hypers[km]
                    rng = rngs[km]
                    alpha = hyper[H_ALPHA]
                    dropout = hyper[H_DROPOUT]
                    nesterov = counters[km, C_NESTEROV] != 0
                    step = counters[km, C_ADAM_T]
                    sum_loss = totals[km, T_LOSS]
                    sum_correct = totals[km, T_CORRECT]
                    sum_rows = totals[km, T_ROWS]
                    for b in range(b0, b1):
                        start = b * cap
                        rows = min(cap, n - start)
                        sw = weight_sum(d, perm, start, rows)
                        if sw == 0:
                            sum_rows += rows
                            continue
                        if not shared and b + 1 < last:
                            _prefetch_rows(d, perm, start + cap, min(cap, n - start - cap))
                        at = start - s0 if shared else start
                        used, per = chunk_rows(rows, S)
                        _draw_streams(ws, used, dropout, rng)
                        for c in range(used):
                            lo = c * per
                            g = grad if c == 0 else ws.grads[c - 1]
                            chunk_gradient(ws, c, src, src_perm, at + lo,
                                           min(rows, lo + per) - lo, 1.0 / sw, theta, g,
                                           layout, widths, hidden, output, dropout)
                        loss, correct = _loss_of_chunks(ws, used)
                        if solver == ADAM:
                            step += 1
                        sq = update_serial(ws, theta, grad, opt1, opt2, layout, used,
                                           alpha / sw, solver, hyper[H_LR], hyper[H_BETA1],
                                           hyper[H_BETA2], hyper[H_EPSILON], step,
                                           hyper[H_MOMENTUM], nesterov)
                        if weighted:
                            sum_loss += rows * ((loss + 0.5 * alpha * sq) / sw)
                        else:
                            sum_loss += loss + 0.5 * alpha * sq
                        sum_correct += correct
                        sum_rows += rows
                    counters[km, C_ADAM_T] = step
                    totals[km, T_LOSS] = sum_loss
                    totals[km, T_CORRECT] = sum_correct
                    totals[km, T_ROWS] = sum_rows
            i = g_end


@nb.njit(error_model="numpy", cache=CACHE)
def _add_chunks(grad, part, grads, S, p0, p1):
    # grad[p0:p1] += part (chunk 0's), then chunks 1..S-1's in chunk order
    acc = grad[p0:p1]
    first = part[p0:p1]
    for p in range(p1 - p0):
        acc[p] += first[p]
    for c in range(S - 1):
        src = grads[c, p0:p1]
        for p in range(p1 - p0):
            acc[p] += src[p]


@nb.njit(error_model="numpy", parallel=True, cache=CACHE)
def full_gradient(ws, d, perm, theta, grad, part, layout, widths, hidden, output, alpha, cap,
                  chunk_fn):
    """scikit-learn's full-batch objective at theta over all the rows of d (weighted mean loss
    + 0.5 * alpha * ||W||^2 / sw, sw the rows or their sum of weights), returned, and its
    gradient into grad (P,); for L-BFGS. No dropout.

    The rows go through in blocks of cap, each split into chunks as a training minibatch is
    (buffers.chunk_rows: from its size alone), the chunks in parallel in the training
    workspace ws, so memory does not grow with the rows; chunk 0 writes part (P,), the
    others ws.grads. Every block is added to grad in chunk order, block after block, and
    the losses likewise: the result does not depend on the thread count. perm is empty (the
    data's order). Weights summing to 0: 0, with grad = 0. chunk_fn: chunk_gradient's
    Address for these arguments (chunk_gradient_types with grad=part; see train_batches).
    """
    n = n_rows(d)
    P = grad.shape[0]
    grad[:] = 0
    sw = weight_sum(d, perm, 0, n)
    if sw == 0:
        return 0.0
    scale = 1.0 / sw
    pack_weights(ws, theta, layout, np.bool_(True))
    # slices of the parameters for the parallel sum of the chunks' gradients
    per_slice = 4096
    n_slices = (P + per_slice - 1) // per_slice
    grads = ws.grads
    loss = 0.0
    for start in range(0, n, cap):
        rows = min(cap, n - start)
        S, per = chunk_rows(rows, ws.acts.shape[0])
        if S == 1:
            call_at(chunk_fn, (ws, np.int64(0), d, perm, start, rows, scale, theta, part, layout,
                               widths, hidden, output, 0.0))
        else:
            for c_ in nb.prange(S):
                c = np.int64(c_)
                lo = c * per
                g = part if c == 0 else grads[c - 1]
                call_at(chunk_fn, (ws, c, d, perm, start + lo, min(rows, lo + per) - lo, scale,
                                   theta, g, layout, widths, hidden, output, 0.0))
        if S == 1 or P < config.PARALLEL_MIN_PARAMS:
            # a parallel region per block costs more than it saves here (W4: 15x the block)
            _add_chunks(grad, part, grads, S, 0, P)
        else:
            for k in nb.prange(n_slices):
                p0 = k * per_slice
                _add_chunks(grad, part, grads, S, p0, min(P, p0 + per_slice))
        block, _ = _loss_of_chunks(ws, S)
        loss += block
    sq = add_l2(grad, theta, layout, alpha / sw)
    return (loss + 0.5 * alpha * sq) / sw


@nb.njit(error_model="numpy", cache=CACHE)
def predict_raw(ws, out, d, theta, layout, widths, hidden, output):
    """out (N, C) = the network's output for the rows of d (dense or CSR): the output
    activation of code `output` (softmax.OUT_*: OUT_IDENTITY for the raw scores, class
    probabilities for OUT_SOFTMAX, sigmoid for OUT_LOGISTIC, exp for OUT_EXP).

    Works through the rows in blocks of chunk_cap rows in chunk 0's buffers, so that
    activations stay in cache-sized blocks; a row's output does not depend on its block. On
    one thread: a parallel loop here would add its own copy of the network to the first run's
    compilation (8 s of 2-core time) to save milliseconds on the files people predict."""
    pack_weights(ws, theta, layout, np.bool_(False))
    cap = ws.ybuf.shape[1]
    zero = np.int64(0)
    acts = ws.acts[0]
    n = n_rows(d)
    X, data, indices, indptr = d.X, d.data, d.indices, d.indptr
    for start in range(0, n, cap):
        rows = min(cap, n - start)
        Xb = layer_block(acts, widths, rows, cap, 0)
        if indptr.shape[0] > 0:
            Xb[:, :] = 0
            for i in range(rows):
                for j in range(indptr[start + i], indptr[start + i + 1]):
                    Xb[i, indices[j]] = data[j]
        else:
            for i in range(rows):
                _copy_row(Xb[i], X[start + i])
        forward(ws, zero, theta, layout, widths, rows, hidden, 0.0)
        Z = layer_block(acts, widths, rows, cap, layout.shape[0])
        # OUT_IDENTITY copies Z
        output_activation(out[start: start + rows], Z, output)


# every CPU kernel module is loaded by now (this one imports the others)
lock_cache_saves(module for name, module in list(sys.modules.items())
                 if name.startswith(__package__ + ".") and name != __package__ + ".cuda_kernels")
