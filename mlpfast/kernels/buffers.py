"""The buffers of the compiled network and views into them.

Legend: B rows of a minibatch, L weight layers, widths (L+1,) = (n_features, hidden...,
n_outputs), P parameters, S chunks of a minibatch (chunk_cap rows each at most), NR columns
of a packed panel (matmul.py), T update tasks.

A minibatch is split into S row chunks (chunk_count: from the batch size alone, so results
do not depend on the thread count); each chunk has its own buffers. Everything is allocated
once per fit (train_workspace) or per prediction (predict_workspace), never in the kernels.

Workspace fields:
    acts, deltas     (S, chunk_cap * sum(widths)) one (rows, width) block per layer, input
                     included: acts holds each layer's output, deltas dLoss/d(pre-activation)
    masks            same shape as acts; dropout masks of the hidden layers
    work             (S, rows, NR) per chunk: panels of its weight-gradient products
    grads            (S - 1, P) the gradients of chunks 1.. (chunk 0 writes grad)
    ybuf, Ybuf       (S, chunk_cap) / (S, chunk_cap, n_outputs) the chunks' targets
    wbuf             (S, chunk_cap) float64 the chunks' row weights (sample_weight)
    wpack, wpanels   the weights packed for every chunk's products: layer l's forward panels
                     (B = Wt.T) start at row wpanels[l, 0] of wpack, its input-gradient
                     panels (B = Wt) at wpanels[l, 1]
    tasks, task_sq   (T, 3) int64 rows (layer, first, last output row) of the update's tasks,
                     a multiple of NR output rows of a layer each (update.py); float64 sum
                     of squared weights per task
    chunk_rng        (S,) uint64 dropout streams, drawn from the fit's stream every step
    losses           (S, 2) float64 per chunk: summed loss, rows predicted right

The training data reaches the kernels as one Data tuple, dense or sparse alike (one compiled
version for both):
    X                (N, F) dense rows, or (0, F) when the rows are sparse
    data, indices, indptr   CSR rows (nnz,) spec dtype, (nnz,) int64 column indices sorted
                     without duplicates, (N + 1,) int64; all three empty for dense X
    y                (N,) int32 class indices (OUT_SOFTMAX), else empty
    Y                (N, C) targets of the other outputs, else (N, 0)
    w                (N,) float64 row weights (sample_weight), or empty for none

The flat parameter buffer theta (P,) holds layer l's weight transposed, Wt (O, I), then its
bias (O,), at the offsets of layout (L, 4) int64 rows (weight offset, bias offset, I, O).
"""
from collections import namedtuple

import numba as nb
import numpy as np
from numba import types
from numba.extending import intrinsic

from . import CACHE
from .. import config
from .matmul import nr_of, pack_b, pack_shape, packed_rows

Workspace = namedtuple("Workspace", "acts deltas masks work grads ybuf Ybuf wbuf wpack wpanels "
                                    "tasks task_sq chunk_rng losses")
Data = namedtuple("Data", "X data indices indptr y Y w")


@intrinsic
def borrowed(typingctx, arr):
    """The array arr without its reference to its memory (a null meminfo), for a kernel's own
    use while its caller holds arr: every view made of it then skips the atomic reference
    count updates that Numba makes for a view (NRT_incref / NRT_decref return at once on
    null). A small network's step makes hundreds of views: W4 ran a fifth slower with
    them. It must not outlive the call that made it (it is never returned or stored)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        cls = context.make_array(arr)
        src = cls(context, builder, value=args[0])
        out = cls(context, builder)
        context.populate_array(out, data=src.data, shape=src.shape, strides=src.strides,
                               itemsize=src.itemsize, meminfo=None)
        return out._getvalue()
    return arr(arr), codegen


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def borrowed_workspace(ws):
    """A Workspace of borrowed() arrays."""
    return Workspace(borrowed(ws.acts), borrowed(ws.deltas), borrowed(ws.masks),
                     borrowed(ws.work), borrowed(ws.grads), borrowed(ws.ybuf),
                     borrowed(ws.Ybuf), borrowed(ws.wbuf), borrowed(ws.wpack),
                     borrowed(ws.wpanels), borrowed(ws.tasks), borrowed(ws.task_sq),
                     borrowed(ws.chunk_rng), borrowed(ws.losses))


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def borrowed_data(d):
    """A Data tuple of borrowed() arrays."""
    return Data(borrowed(d.X), borrowed(d.data), borrowed(d.indices), borrowed(d.indptr),
                borrowed(d.y), borrowed(d.Y), borrowed(d.w))


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def n_rows(d):
    """Rows of a Data tuple, dense or CSR."""
    return d.indptr.shape[0] - 1 if d.indptr.shape[0] > 0 else d.X.shape[0]


def n_rows_of(d):
    """n_rows in Python."""
    return d.indptr.shape[0] - 1 if d.indptr.shape[0] > 0 else d.X.shape[0]


@nb.njit(error_model="numpy", cache=CACHE)
def chunk_count(rows):
    """Chunks for a minibatch of `rows` rows: one per CHUNK_ROWS rows, at least two once there
    are CHUNK_ROWS rows, at most MAX_CHUNKS."""
    per = config.CHUNK_ROWS
    return max(1, min(config.MAX_CHUNKS, max(rows // per, min(2, rows // (per // 2)))))


@nb.njit(error_model="numpy", cache=CACHE)
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


def update_tasks(widths, dtype):
    """(T, 3) int64 rows (layer, first output row, last + 1): blocks of output rows of each
    layer, a multiple of NR rows and about config.UPDATE_TASK_PARAMS weights each."""
    nr = nr_of(dtype)
    rows = []
    for layer, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        step = nr * max(1, round(config.UPDATE_TASK_PARAMS / (nr * n_in)))
        rows += [(layer, o0, min(n_out, o0 + step)) for o0 in range(0, n_out, step)]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def workspace(widths, dtype, n_targets, n_params, chunks, chunk_cap):
    """The buffers of `chunks` chunks of up to chunk_cap rows each."""
    per_chunk = chunk_cap * int(sum(widths))
    wpanels, wrows = weight_panels(widths, dtype)
    tasks = update_tasks(widths, dtype)
    return Workspace(
        acts=np.zeros((chunks, per_chunk), dtype), deltas=np.zeros((chunks, per_chunk), dtype),
        masks=np.zeros((chunks, per_chunk), dtype),
        work=np.zeros((chunks,) + pack_shape(dtype, max(widths), chunk_cap, 1), dtype),
        grads=np.zeros((chunks - 1, n_params), dtype),
        ybuf=np.zeros((chunks, chunk_cap), np.int32),
        Ybuf=np.zeros((chunks, chunk_cap, n_targets), dtype),
        wbuf=np.zeros((chunks, chunk_cap), np.float64),
        wpack=np.zeros((max(1, wrows), nr_of(dtype)), dtype), wpanels=wpanels,
        tasks=tasks, task_sq=np.zeros(len(tasks)), chunk_rng=np.zeros(chunks, np.uint64),
        losses=np.zeros((chunks, 2), np.float64))


@nb.njit(error_model="numpy", cache=CACHE)
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


def train_workspaces(widths, dtype, n_targets, n_params, cap, models):
    """The buffers of train_workspace for `models` models at once (network.train_batches_many):
    every field but the shared wpanels and tasks gets a leading axis of `models`, model k's
    buffers being field[k, :n] with n the one model's extent (workspace_sizes). The small
    fields written every step (task_sq, chunk_rng, losses) are padded to whole 64-byte lines
    per model so that models on different threads never write one cache line."""
    one = train_workspace(widths, dtype, n_targets, n_params, cap)

    def stacked(a, pad_rows=False):
        shape = a.shape
        if pad_rows:
            row = a.itemsize * int(np.prod(shape[1:], dtype=np.int64))
            rows = shape[0]
            while (rows * row) % _LINE:
                rows += 1
            shape = (max(rows, 1),) + shape[1:]
        return aligned_zeros((models,) + shape, a.dtype)
    fields = {name: stacked(getattr(one, name), name in ("task_sq", "chunk_rng", "losses"))
              for name in Workspace._fields if name not in ("wpanels", "tasks")}
    return Workspace(wpanels=one.wpanels, tasks=one.tasks, **fields)


def workspace_sizes(ws):
    """(S chunks, wpack rows) of one model's buffers in a train_workspaces stack."""
    return np.int64(ws.acts.shape[1]), np.int64(ws.wpack.shape[1])


_LINE = 64


def aligned_zeros(shape, dtype):
    """np.zeros(shape, dtype) starting on a 64-byte cache line."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.zeros(n * dtype.itemsize + _LINE, np.uint8)
    off = (-raw.ctypes.data) % _LINE
    return raw[off: off + n * dtype.itemsize].view(dtype).reshape(shape)


def predict_workspace(widths, dtype, rows):
    """Buffers for predicting `rows` rows: one chunk, which network.predict_raw reuses for
    every block of PREDICT_CHUNK_ROWS rows."""
    return workspace(widths, dtype, 0, 0, 1, max(1, min(rows, config.PREDICT_CHUNK_ROWS)))


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def layer_block(buf, widths, rows, cap, layer):
    """The (rows, widths[layer]) block of a per-layer buffer."""
    off = 0
    for k in range(layer):
        off += cap * widths[k]
    w = widths[layer]
    return buf[off: off + rows * w].reshape((rows, w))


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def layer_params(theta, layout, layer):
    """Views (Wt (O, I), b (O,)) of weight layer `layer` (0-based) in a flat buffer."""
    w0 = layout[layer, 0]
    b0 = layout[layer, 1]
    n_in = layout[layer, 2]
    n_out = layout[layer, 3]
    return theta[w0: w0 + n_out * n_in].reshape((n_out, n_in)), theta[b0: b0 + n_out]


@nb.njit(error_model="numpy", cache=CACHE)
def layer_panels(ws, layout, layer, which):
    # layer's forward (which=0) or input-gradient (which=1) panels in ws.wpack
    n_in = layout[layer, 2]
    n_out = layout[layer, 3]
    K = n_in if which == 0 else n_out
    N = n_out if which == 0 else n_in
    r0 = ws.wpanels[layer, which]
    NR = ws.wpack.shape[1]
    return ws.wpack[r0: r0 + (N + NR - 1) // NR * K]


@nb.njit(error_model="numpy", cache=CACHE)
def pack_weights(ws, theta, layout, backward_too):
    """Every layer's weights into ws.wpack: forward panels (B = Wt.T) and, for training, the
    input gradient's (B = Wt)."""
    # (constants passed to other kernels go through np.int64 / np.bool_: see matmul.py)
    zero = np.int64(0)
    for layer in range(layout.shape[0]):
        Wt, _ = layer_params(theta, layout, layer)
        n_out, n_in = Wt.shape
        pack_b(layer_panels(ws, layout, layer, zero), Wt, np.bool_(True), zero, n_in, zero,
               n_out)
        if backward_too and layer > 0:
            pack_b(layer_panels(ws, layout, layer, np.int64(1)), Wt, np.bool_(False), zero,
                   n_out, zero, n_in)
