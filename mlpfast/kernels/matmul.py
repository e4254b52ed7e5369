"""Matrix products of the MLP, written in Numba (no BLAS call).

Legend: M rows of the output, N its columns, K the reduced dimension.

Every product is written as C = A @ Bt.T ("NT" form): both operands are read along rows, so
each output element is a dot product of two contiguous vectors. The three products of a layer
map onto it as follows (Wt is the layer's weight stored transposed, (O, I)):

    forward          Z  (B, O) = X  (B, I) . Wt (O, I).T
    input gradient   dX (B, I) = dZ (B, O) . W  (I, O).T    (W = Wt.T, transposed per step)
    weight gradient  dWt(O, I) = dZ.T (O, B) . X.T (I, B).T (both transposed per step)

The transposes cost O(B*(I+O) + I*O) per step against O(B*I*O) for the product.

Where the reduced dimension is small (K <= SMALL_K: the first layer of a narrow table, the
input gradient of a layer with few outputs) gemm_nn_small_k takes over in the broadcast form.

Why NT: the micro-kernel keeps a 4x4 block of C in 16 scalar accumulators while it walks K.
With reassociation allowed LLVM turns each accumulator into a vector register and the loop
into vector FMAs (one load of A and of Bt feeds four FMAs each), which is what OpenBLAS does by
hand. The broadcast form (C[i, :] += A[i, k] * B[k, :]) stores C on every k and runs 10x slower.

Edge blocks clamp their row and column indices to the last valid one instead of branching to
another loop, so every element of C comes out of the same instruction sequence wherever it
sits: a row's result does not depend on the batch it was computed in.
"""
import numba as nb
import numpy as np

from .. import config
from .activations import apply_activation

# reassoc lets LLVM vectorise the K reduction, contract fuses multiply-adds. Both only change
# rounding. No nnan/ninf: NaN and inf must propagate as IEEE says.
FAST = {"reassoc", "contract"}

TILE_M = 4
TILE_N = 4


@nb.njit(error_model="numpy", inline="always", fastmath=FAST, cache=True)
def _micro_4x4(C, A, Bt, bias, i0, j0):
    # C[i0:i0+4, j0:j0+4] = A[i0:i0+4] . Bt[j0:j0+4].T (+ bias), rows/cols clamped at the edge
    M, K = A.shape
    N = Bt.shape[0]
    r0 = i0
    r1 = min(i0 + 1, M - 1)
    r2 = min(i0 + 2, M - 1)
    r3 = min(i0 + 3, M - 1)
    s0 = j0
    s1 = min(j0 + 1, N - 1)
    s2 = min(j0 + 2, N - 1)
    s3 = min(j0 + 3, N - 1)
    zero = C.dtype.type(0)
    c00 = c01 = c02 = c03 = zero
    c10 = c11 = c12 = c13 = zero
    c20 = c21 = c22 = c23 = zero
    c30 = c31 = c32 = c33 = zero
    for k in range(K):
        b0 = Bt[s0, k]
        b1 = Bt[s1, k]
        b2 = Bt[s2, k]
        b3 = Bt[s3, k]
        a = A[r0, k]
        c00 += a * b0
        c01 += a * b1
        c02 += a * b2
        c03 += a * b3
        a = A[r1, k]
        c10 += a * b0
        c11 += a * b1
        c12 += a * b2
        c13 += a * b3
        a = A[r2, k]
        c20 += a * b0
        c21 += a * b1
        c22 += a * b2
        c23 += a * b3
        a = A[r3, k]
        c30 += a * b0
        c31 += a * b1
        c32 += a * b2
        c33 += a * b3
    rows = min(4, M - i0)
    cols = min(4, N - j0)
    if bias.shape[0] > 0:
        c00 += bias[s0]
        c10 += bias[s0]
        c20 += bias[s0]
        c30 += bias[s0]
        c01 += bias[s1]
        c11 += bias[s1]
        c21 += bias[s1]
        c31 += bias[s1]
        c02 += bias[s2]
        c12 += bias[s2]
        c22 += bias[s2]
        c32 += bias[s2]
        c03 += bias[s3]
        c13 += bias[s3]
        c23 += bias[s3]
        c33 += bias[s3]
    if rows == 4 and cols == 4:
        C[r0, s0] = c00
        C[r0, s1] = c01
        C[r0, s2] = c02
        C[r0, s3] = c03
        C[r1, s0] = c10
        C[r1, s1] = c11
        C[r1, s2] = c12
        C[r1, s3] = c13
        C[r2, s0] = c20
        C[r2, s1] = c21
        C[r2, s2] = c22
        C[r2, s3] = c23
        C[r3, s0] = c30
        C[r3, s1] = c31
        C[r3, s2] = c32
        C[r3, s3] = c33
    else:
        # ragged edge: the clamped rows/cols were computed twice; store each real one once
        tile = ((c00, c01, c02, c03), (c10, c11, c12, c13),
                (c20, c21, c22, c23), (c30, c31, c32, c33))
        for r in range(rows):
            row = tile[r]
            for s in range(cols):
                C[i0 + r, j0 + s] = row[s]


@nb.njit(error_model="numpy", fastmath=FAST, cache=True)
def _row_block(C, A, Bt, bias, activation, blk):
    # one block of TILE_M rows across all of C's columns, then the activation while it is hot
    N = Bt.shape[0]
    i0 = blk * TILE_M
    for j0 in range(0, N, TILE_N):
        _micro_4x4(C, A, Bt, bias, i0, j0)
    i1 = min(i0 + TILE_M, C.shape[0])
    apply_activation(C[i0:i1], activation)


@nb.njit(error_model="numpy", fastmath=FAST, cache=True)
def _gemm_serial(C, A, Bt, bias, activation):
    n_blocks = (C.shape[0] + TILE_M - 1) // TILE_M
    for blk in range(n_blocks):
        _row_block(C, A, Bt, bias, activation, blk)


@nb.njit(error_model="numpy", fastmath=FAST, parallel=True, cache=True)
def _gemm_parallel(C, A, Bt, bias, activation):
    n_blocks = (C.shape[0] + TILE_M - 1) // TILE_M
    for blk in nb.prange(n_blocks):
        _row_block(C, A, Bt, bias, activation, blk)


@nb.njit(error_model="numpy", cache=True)
def gemm_nt(C, A, Bt, bias, activation):
    """C (M, N) = activation(A (M, K) . Bt (N, K).T + bias (N,)); bias may be empty (no bias).

    Results are identical whether the row blocks run on one thread or several.
    """
    M, K = A.shape
    N = Bt.shape[0]
    if M == 0 or N == 0:
        return
    if K == 0:
        C[:] = 0
        if bias.shape[0] > 0:
            for i in range(M):
                C[i, :] = bias
        apply_activation(C, activation)
        return
    if M * N * K >= config.PARALLEL_MIN_WORK and M > TILE_M:
        _gemm_parallel(C, A, Bt, bias, activation)
    else:
        _gemm_serial(C, A, Bt, bias, activation)


# Below this many reduced values (K) the broadcast form beats the dot-product micro-kernel: the
# 4x4 tile's 16 horizontal sums cost more than the K steps themselves (measured on Zen 5,
# 256x10x128: 24 -> 15 us; 32x20x64: 6.0 -> 3.0 us; 32x2x64: 4.8 -> 0.5 us; K=32 even).
SMALL_K = 24
_NN_ROWS = 16


@nb.njit(error_model="numpy", fastmath=FAST, cache=True)
def nn_rows(C, A, B, bias, activation, i0, i1):
    # rows i0..i1-1 of C = A . B (+ bias): each row of C stays in L1 while the k loop adds
    # A[i, k] * B[k, :] to it, vectorised along the row. The row is loaded and stored once per
    # four k (LLVM cannot keep it in registers: it cannot rule out that C aliases B), which
    # made this 25-50 % faster than once per k on the MLP's shapes.
    K = A.shape[1]
    N = B.shape[1]
    K4 = K - K % 4
    has_bias = bias.shape[0] > 0
    zero = C.dtype.type(0)
    for i in range(i0, i1):
        c = C[i]
        if has_bias:
            for j in range(N):
                c[j] = bias[j]
        else:
            for j in range(N):
                c[j] = zero
        for k in range(0, K4, 4):
            a0 = A[i, k]
            a1 = A[i, k + 1]
            a2 = A[i, k + 2]
            a3 = A[i, k + 3]
            for j in range(N):
                c[j] += a0 * B[k, j] + a1 * B[k + 1, j] + a2 * B[k + 2, j] + a3 * B[k + 3, j]
        for k in range(K4, K):
            a = A[i, k]
            for j in range(N):
                c[j] += a * B[k, j]
    apply_activation(C[i0:i1], activation)


@nb.njit(error_model="numpy", fastmath=FAST, parallel=True, cache=True)
def _nn_parallel(C, A, B, bias, activation):
    M = C.shape[0]
    for blk in nb.prange((M + _NN_ROWS - 1) // _NN_ROWS):
        nn_rows(C, A, B, bias, activation, blk * _NN_ROWS, min(M, (blk + 1) * _NN_ROWS))


@nb.njit(error_model="numpy", cache=True)
def gemm_nn_small_k(C, A, B, bias, activation):
    """C (M, N) = activation(A (M, K) . B (K, N) + bias (N,)) in the broadcast form, for small
    K (K >= 1); A may be a strided view. Every row comes from the same instruction sequence
    wherever it sits."""
    M = C.shape[0]
    if M * C.shape[1] * A.shape[1] >= config.PARALLEL_MIN_WORK and M > _NN_ROWS:
        _nn_parallel(C, A, B, bias, activation)
    else:
        nn_rows(C, A, B, bias, activation, 0, M)


@nb.njit(error_model="numpy", cache=True)
def transpose(out, A):
    """out (N, M) = A (M, N).T. Interior 8x8 blocks have constant trip counts, so LLVM unrolls
    them into straight loads and stores (3x faster than 32x32 blocks with bounds in the loop);
    the ragged right and bottom strips go element by element."""
    M, N = A.shape
    Mb = M - M % 8
    Nb = N - N % 8
    for i0 in range(0, Mb, 8):
        for j0 in range(0, Nb, 8):
            for i in range(8):
                for j in range(8):
                    out[j0 + j, i0 + i] = A[i0 + i, j0 + j]
    for i in range(Mb):
        for j in range(Nb, N):
            out[j, i] = A[i, j]
    for i in range(Mb, M):
        for j in range(N):
            out[j, i] = A[i, j]


def matmul_nt_alloc(A, Bt):
    """Convenience for tests and benchmarks: a fresh C = A @ Bt.T."""
    C = np.empty((A.shape[0], Bt.shape[0]), dtype=A.dtype)
    gemm_nt(C, A, Bt, np.empty(0, dtype=A.dtype), 0)
    return C
