"""Flat parameter buffers: every weight and bias of a network in one contiguous array.

One array (plus an int64 table of offsets and shapes) lets one compiled function serve any
depth, the optimizer update one loop over the whole model, and a checkpoint a few arrays.
Layer l's weight is stored transposed, Wt (n_out, n_in): one block of output rows is one
contiguous slice (the CPU update works by such blocks, kernels/update.py) and the input
gradient's product reads it as it is; `coefs(theta, layout)` hands out the (n_in, n_out)
views scikit-learn's coefs_ expects.
"""
import numpy as np


def make_layout(widths):
    """(L, 4) int64 rows (weight offset, bias offset, n_in, n_out) and the total size P."""
    rows = []
    off = 0
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        rows.append((off, off + n_in * n_out, n_in, n_out))
        off += n_in * n_out + n_out
    return np.array(rows, dtype=np.int64).reshape(-1, 4), off


def coefs(theta, layout):
    """Per-layer weight views, each (n_in, n_out), sharing memory with theta."""
    return [theta[w0: w0 + i * o].reshape(o, i).T for w0, _, i, o in layout]


def intercepts(theta, layout):
    return [theta[b0: b0 + o] for _, b0, _, o in layout]


def glorot_init(theta, layout, random_state, activation):
    """scikit-learn's initialisation, draw for draw: for each layer, coef then intercept from
    U(-b, b) with b = sqrt(6 / (fan_in + fan_out)) (2 instead of 6 for logistic)."""
    factor = 2.0 if activation == "logistic" else 6.0
    for W, b in zip(coefs(theta, layout), intercepts(theta, layout)):
        fan_in, fan_out = W.shape
        bound = np.sqrt(factor / (fan_in + fan_out))
        W[...] = random_state.uniform(-bound, bound, (fan_in, fan_out))
        b[...] = random_state.uniform(-bound, bound, fan_out)


def assign(theta, layout, coef_list, intercept_list):
    """Copy per-layer arrays (scikit-learn orientation) into a flat buffer."""
    for dst, src in zip(coefs(theta, layout), coef_list):
        dst[...] = src
    for dst, src in zip(intercepts(theta, layout), intercept_list):
        dst[...] = src


def packed_order(layout):
    """(P,) int64 indices such that theta[order] is scikit-learn's packing of the same
    parameters (its MLP's _pack: every coefs_[l].ravel() in layer order, (n_in, n_out) C
    order, then every intercepts_[l]); theta[order] = packed is the inverse."""
    coef_parts, bias_parts = [], []
    for w0, b0, n_in, n_out in layout:
        # coefs_[l][i, o] is Wt[o, i], at w0 + o * n_in + i
        i, o = np.meshgrid(np.arange(n_in), np.arange(n_out), indexing="ij")
        coef_parts.append((w0 + o * n_in + i).ravel())
        bias_parts.append(b0 + np.arange(n_out))
    return np.concatenate(coef_parts + bias_parts).astype(np.int64)
