"""A small counter-free generator for compiled code: splitmix64 over a one-element uint64 state.

Each estimator owns its state array, so two models training in one process never share a
stream (Numba's np.random state is per thread and global), and a run is reproduced exactly
from its seed.
"""
import numba as nb
import numpy as np

from . import CACHE

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@nb.njit(error_model="numpy", cache=CACHE)
def next_u64(state):
    s = state[0] + _GAMMA
    state[0] = s
    z = (s ^ (s >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(error_model="numpy", cache=CACHE)
def next_float(state):
    """Uniform in [0, 1) with 53 random bits."""
    return float(next_u64(state) >> _S11) * _INV53


@nb.njit(error_model="numpy", nogil=True, cache=CACHE)
def shuffle(perm, state):
    """Fisher-Yates shuffle of perm in place. Without the GIL: fits in threads (together.py)
    shuffle side by side."""
    for i in range(perm.shape[0] - 1, 0, -1):
        j = np.int64(next_u64(state) % np.uint64(i + 1))
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp


@nb.njit(error_model="numpy", cache=CACHE)
def dropout_mask(mask, H, rate, state):
    """Inverted dropout: mask (R, W) = 0 with probability rate, else 1/(1-rate); H *= mask."""
    keep = mask.dtype.type(1.0 / (1.0 - rate))
    for i in range(H.shape[0]):
        for j in range(H.shape[1]):
            if next_float(state) < rate:
                mask[i, j] = 0
                H[i, j] = 0
            else:
                mask[i, j] = keep
                H[i, j] *= keep
