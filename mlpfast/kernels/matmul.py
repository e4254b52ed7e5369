"""Matrix products of the MLP, written in Numba (no BLAS call).

Legend: C (M, N) = act(A (M, K) . B (K, N) + bias (N,)); L vector lanes (simd.py: 16 float32,
8 float64 at 64 bytes, where AVX-512 was measured faster, else 8 and 4), MR rows (8 at 64 bytes,
else 6) and NR = 2L columns of a register block, KC rows of B per K-block.

The three products of a layer (weights stored transposed, Wt (O, I)) need no transposed copy
of anything the size of a minibatch:

    forward          Z   (B, O) = X  (B, I) . Wt (O, I).T    gemm_packed, Wt packed transposed
    input gradient   dX  (B, I) = dZ (B, O) . Wt (O, I)      gemm_packed, Wt packed as it is
    weight gradient  dWt (O, I) = dZ (B, O).T . X (B, I)     gemm_tn, from dZ as it is stored

The engine packs the weights once per step for every chunk of the minibatch (gemm_packed);
gemm packs B itself per call, B given as is or transposed (trans_b), and gemm_parallel splits
one product across threads (for single large products and the benchmarks).

The design is BLAS's (Goto and van de Geijn; the loop names are BLIS's):
- The micro-kernel holds an MR x 2L block of C in 2 MR vector registers. Per k it loads two
  vectors of B, broadcasts MR elements of A and issues 2 MR FMAs, with no load or store of C
  inside the K loop: at MR = 6, 15 of AVX2's 16 registers; at MR = 8, 19 of AVX-512's 32 (a
  W1 step 4 % faster than at 6, W4 3 % slower: benchmarks/RESULTS.md). (Dot-product blocks,
  which reduce along K, need a horizontal sum per element of C and ran at half this speed.)
- B is packed per K-block into panels NR columns wide, contiguous along k, zero past N. A panel
  (KC x NR, 16 KB in float32, 32 KB at 64 bytes) stays in L1 while the blocks of A pass over
  it; unpacked, rows of B are N elements apart and at N = 1024 (4 KB apart) they all land in
  one L1 set. Packing is also where Wt gets transposed (L x L blocks in registers).
- A is read in place through its strides, except in gemm_tn, which copies each MR x kc block
  of A = dZ.T out of dZ once (see _pack_a_t).
- gemm_parallel splits C into row ranges (multiples of MR) or column ranges (multiples of NR),
  whichever has more blocks; each thread packs the B columns it needs into its own part of
  `pack`, so one parallel region per product and no synchronisation inside it.

Constants passed from one kernel to another go through np.int64 / np.bool_: Numba types a
literal argument as its own type and compiles another copy of the callee, and of everything
beneath it, for it.

Edges: rows past M are clamped to the last row (computed, never stored); columns past N are
zeros in the panel and masked on store. Every element of C is the same sequence of FMAs over
k wherever it sits, so a row's result does not depend on the batch it was computed in, on its
position in a register block, on the number of threads, or on L and MR (the products at 32 and
at 64 bytes are the same bits: tested against a copy at the other width).
"""
import numba as nb
import numpy as np

from . import CACHE
from .. import config
from .activations import IDENTITY, RELU, apply_activation
from .simd import (VEC_BYTES, lanes_of, vadd, vfma, vlanes, vload, vload_part, vrelu, vsplat,
                   vstore, vstore_part, vtranspose, vzero)

# rows of the register block: 8 (16 accumulators) where vectors are 64 bytes, for AVX-512's 32
# registers; 6 (12) for AVX2's 16
MR = 8 if VEC_BYTES == 64 else 6
KC = 256


def nr_of(dtype):
    """NR, the columns of a packed panel, for a dtype."""
    return 2 * lanes_of(dtype)


def pack_shape(dtype, max_n, max_k, threads):
    """Shape of the `pack` buffer for products with N <= max_n, K <= max_k on up to `threads`
    threads (the buffer's size is what caps a product's thread count)."""
    nr = nr_of(dtype)
    kc = min(KC, max(1, max_k))
    # per thread: the panels of B, the register block on its way to C, gemm_tn's block of A
    return (max(1, threads) * (-(-max(1, max_n) // nr) * kc + MR + kc), nr)


def new_pack(dtype, max_n, max_k):
    """A pack buffer for the current Numba thread count."""
    return np.zeros(pack_shape(dtype, max_n, max_k, nb.get_num_threads()), dtype)


@nb.njit(error_model="numpy", cache=CACHE)
def pack_b(P, B, trans_b, k0, k1, j_lo, j_hi):
    """Panels of B[k0:k1, j_lo:j_hi] into P: panel p (columns j_lo + p*NR ...) in rows
    p*(k1-k0) ... (p+1)*(k1-k0) - 1, zeros past j_hi. B is (K, N), or (N, K) when trans_b."""
    L = vlanes(P)
    NR = 2 * L
    kc = k1 - k0
    for p in range((j_hi - j_lo + NR - 1) // NR):
        j0 = j_lo + p * NR
        n = min(NR, j_hi - j0)
        r = p * kc - k0
        if trans_b:
            # L x L blocks of B transposed in registers; a ragged k tail and columns past N
            # one element at a time
            k_vec = k0 + (kc // L) * L
            for jb in range(0, NR, L):
                if jb + L <= n:
                    for k in range(k0, k_vec, L):
                        vtranspose(P, r + k, jb, B, j0 + jb, k)
                    for jj in range(jb, jb + L):
                        for k in range(k_vec, k1):
                            P[r + k, jj] = B[j0 + jj, k]
                else:
                    # a ragged (or empty) block of columns: zeros, then the columns there are
                    for k in range(k0, k1):
                        vstore(P, r + k, jb, vzero(P))
                    for jj in range(jb, n):
                        for k in range(k0, k1):
                            P[r + k, jj] = B[j0 + jj, k]
        elif n == NR:
            for k in range(k0, k1):
                vstore(P, r + k, 0, vload(B, k, j0))
                vstore(P, r + k, L, vload(B, k, j0 + L))
        else:
            for k in range(k0, k1):
                vstore(P, r + k, 0, vload_part(B, k, j0, n))
                vstore(P, r + k, L, vload_part(B, k, j0 + L, n - L))


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _micro6(Ak, P, p0, tile, i0, i_hi):
    """tile (6, NR) = Ak[i0:i0+6] (6, kc) . P[p0:p0+kc] (kc, NR); rows at or past i_hi repeat
    the last. (Inlined, with offsets instead of views: each array view made or passed in the
    loop over blocks costs a pair of atomic reference-count updates.)"""
    last = i_hi - 1
    r0 = i0
    r1 = min(i0 + 1, last)
    r2 = min(i0 + 2, last)
    r3 = min(i0 + 3, last)
    r4 = min(i0 + 4, last)
    r5 = min(i0 + 5, last)
    L = vlanes(tile)
    # twelve named accumulators, rows written out: Numba has no arrays of vectors, and only
    # values held in variables stay in registers across the k loop
    c00 = vzero(tile)
    c01 = vzero(tile)
    c10 = vzero(tile)
    c11 = vzero(tile)
    c20 = vzero(tile)
    c21 = vzero(tile)
    c30 = vzero(tile)
    c31 = vzero(tile)
    c40 = vzero(tile)
    c41 = vzero(tile)
    c50 = vzero(tile)
    c51 = vzero(tile)
    for k in range(Ak.shape[1]):
        b0 = vload(P, p0 + k, 0)
        b1 = vload(P, p0 + k, L)
        a = vsplat(Ak[r0, k], tile)
        c00 = vfma(a, b0, c00)
        c01 = vfma(a, b1, c01)
        a = vsplat(Ak[r1, k], tile)
        c10 = vfma(a, b0, c10)
        c11 = vfma(a, b1, c11)
        a = vsplat(Ak[r2, k], tile)
        c20 = vfma(a, b0, c20)
        c21 = vfma(a, b1, c21)
        a = vsplat(Ak[r3, k], tile)
        c30 = vfma(a, b0, c30)
        c31 = vfma(a, b1, c31)
        a = vsplat(Ak[r4, k], tile)
        c40 = vfma(a, b0, c40)
        c41 = vfma(a, b1, c41)
        a = vsplat(Ak[r5, k], tile)
        c50 = vfma(a, b0, c50)
        c51 = vfma(a, b1, c51)
    vstore(tile, 0, 0, c00)
    vstore(tile, 0, L, c01)
    vstore(tile, 1, 0, c10)
    vstore(tile, 1, L, c11)
    vstore(tile, 2, 0, c20)
    vstore(tile, 2, L, c21)
    vstore(tile, 3, 0, c30)
    vstore(tile, 3, L, c31)
    vstore(tile, 4, 0, c40)
    vstore(tile, 4, L, c41)
    vstore(tile, 5, 0, c50)
    vstore(tile, 5, L, c51)


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _micro8(Ak, P, p0, tile, i0, i_hi):
    """_micro with 8 rows: 16 accumulators, for 32 vector registers (AVX-512)."""
    last = i_hi - 1
    r0 = i0
    r1 = min(i0 + 1, last)
    r2 = min(i0 + 2, last)
    r3 = min(i0 + 3, last)
    r4 = min(i0 + 4, last)
    r5 = min(i0 + 5, last)
    r6 = min(i0 + 6, last)
    r7 = min(i0 + 7, last)
    L = vlanes(tile)
    c00 = vzero(tile)
    c01 = vzero(tile)
    c10 = vzero(tile)
    c11 = vzero(tile)
    c20 = vzero(tile)
    c21 = vzero(tile)
    c30 = vzero(tile)
    c31 = vzero(tile)
    c40 = vzero(tile)
    c41 = vzero(tile)
    c50 = vzero(tile)
    c51 = vzero(tile)
    c60 = vzero(tile)
    c61 = vzero(tile)
    c70 = vzero(tile)
    c71 = vzero(tile)
    for k in range(Ak.shape[1]):
        b0 = vload(P, p0 + k, 0)
        b1 = vload(P, p0 + k, L)
        a = vsplat(Ak[r0, k], tile)
        c00 = vfma(a, b0, c00)
        c01 = vfma(a, b1, c01)
        a = vsplat(Ak[r1, k], tile)
        c10 = vfma(a, b0, c10)
        c11 = vfma(a, b1, c11)
        a = vsplat(Ak[r2, k], tile)
        c20 = vfma(a, b0, c20)
        c21 = vfma(a, b1, c21)
        a = vsplat(Ak[r3, k], tile)
        c30 = vfma(a, b0, c30)
        c31 = vfma(a, b1, c31)
        a = vsplat(Ak[r4, k], tile)
        c40 = vfma(a, b0, c40)
        c41 = vfma(a, b1, c41)
        a = vsplat(Ak[r5, k], tile)
        c50 = vfma(a, b0, c50)
        c51 = vfma(a, b1, c51)
        a = vsplat(Ak[r6, k], tile)
        c60 = vfma(a, b0, c60)
        c61 = vfma(a, b1, c61)
        a = vsplat(Ak[r7, k], tile)
        c70 = vfma(a, b0, c70)
        c71 = vfma(a, b1, c71)
    vstore(tile, 0, 0, c00)
    vstore(tile, 0, L, c01)
    vstore(tile, 1, 0, c10)
    vstore(tile, 1, L, c11)
    vstore(tile, 2, 0, c20)
    vstore(tile, 2, L, c21)
    vstore(tile, 3, 0, c30)
    vstore(tile, 3, L, c31)
    vstore(tile, 4, 0, c40)
    vstore(tile, 4, L, c41)
    vstore(tile, 5, 0, c50)
    vstore(tile, 5, L, c51)
    vstore(tile, 6, 0, c60)
    vstore(tile, 6, L, c61)
    vstore(tile, 7, 0, c70)
    vstore(tile, 7, L, c71)


_micro = _micro8 if MR == 8 else _micro6


@nb.njit(error_model="numpy", inline="always", cache=CACHE)
def _store(C, tile, i0, rows, j0, n, bias2, k_first, relu):
    """C[i0:i0+rows, j0:j0+n] = tile (+ bias on the first K-block, + C on the later ones),
    relu if asked. bias2 is the bias as a (1, N) row, or (1, 0) for none."""
    L = vlanes(C)
    for r in range(rows):
        # whole 2L-wide blocks with plain loads and stores, the ragged last block masked
        v0 = vload(tile, r, 0)
        v1 = vload(tile, r, L)
        i = i0 + r
        if n == 2 * L:
            if not k_first:
                v0 = vadd(v0, vload(C, i, j0))
                v1 = vadd(v1, vload(C, i, j0 + L))
            elif bias2.shape[1] > 0:
                v0 = vadd(v0, vload(bias2, 0, j0))
                v1 = vadd(v1, vload(bias2, 0, j0 + L))
            if relu:
                v0 = vrelu(v0)
                v1 = vrelu(v1)
            vstore(C, i, j0, v0)
            vstore(C, i, j0 + L, v1)
        else:
            if not k_first:
                v0 = vadd(v0, vload_part(C, i, j0, n))
                v1 = vadd(v1, vload_part(C, i, j0 + L, n - L))
            elif bias2.shape[1] > 0:
                v0 = vadd(v0, vload_part(bias2, 0, j0, n))
                v1 = vadd(v1, vload_part(bias2, 0, j0 + L, n - L))
            if relu:
                v0 = vrelu(v0)
                v1 = vrelu(v1)
            vstore_part(C, i, j0, v0, n)
            vstore_part(C, i, j0 + L, v1, n - L)


@nb.njit(error_model="numpy", cache=CACHE)
def _block(C, Ak, panels, stride, koff, tile, i_lo, i_hi, j_lo, j_hi, bias2, k_first, relu):
    # C[i_lo:i_hi, j_lo:j_hi] (+)= Ak[i_lo:i_hi] (., kc) . one K-block of the panels: that of
    # panel p (the columns from j_lo + p*NR) is rows p*stride + koff ... of `panels`. The
    # MR x kc block of A stays in L1 while it meets every panel.
    NR = 2 * vlanes(C)
    for i0 in range(i_lo, i_hi, MR):
        for j0 in range(j_lo, j_hi, NR):
            _micro(Ak, panels, (j0 - j_lo) // NR * stride + koff, tile, i0, i_hi)
            _store(C, tile, i0, min(MR, i_hi - i0), j0, min(NR, j_hi - j0), bias2, k_first,
                   relu)


@nb.njit(error_model="numpy", cache=CACHE)
def _gemm_part(C, A, B, trans_b, bias2, activation, pack, row0, i_lo, i_hi, j_lo, j_hi):
    # C[i_lo:i_hi, j_lo:j_hi]; this part's panels go in pack rows from row0 on, and the
    # MR rows after them hold the register block on its way to C
    K = A.shape[1]
    NR = 2 * vlanes(C)
    room = (j_hi - j_lo + NR - 1) // NR * min(K, KC)
    panels = pack[row0: row0 + room]
    tile = pack[row0 + room: row0 + room + MR]
    for k0 in range(0, K, KC):
        k1 = min(K, k0 + KC)
        pack_b(panels, B, trans_b, k0, k1, j_lo, j_hi)
        _block(C, A[:, k0:k1], panels, k1 - k0, np.int64(0), tile, i_lo, i_hi, j_lo, j_hi,
               bias2, k0 == 0, k1 == K and activation == RELU)
    if activation != IDENTITY and activation != RELU:
        apply_activation(C[i_lo:i_hi, j_lo:j_hi], activation)


@nb.njit(error_model="numpy", cache=CACHE)
def _pack_a_t(Ap, At, i0, i_hi):
    # Ap[k, r] = At[k, min(i0 + r, i_hi - 1)] for r < MR: a block of A = At.T, MR rows, with
    # its k-th column in one row of Ap. Reading At.T in place walks down At's columns, a row
    # of At apart per k: at 128 or 256 columns those addresses share a few L1 sets, and the
    # block of A was evicted before its next pass over the panels (57 against 81 GFLOP/s).
    L = vlanes(Ap)
    if L >= MR and i0 + L <= At.shape[1]:
        for k in range(At.shape[0]):
            vstore(Ap, k, 0, vload(At, k, i0))
    elif 2 * L >= MR and i0 + 2 * L <= At.shape[1]:
        for k in range(At.shape[0]):
            vstore(Ap, k, 0, vload(At, k, i0))
            vstore(Ap, k, L, vload(At, k, i0 + L))
    else:
        for k in range(At.shape[0]):
            for r in range(MR):
                Ap[k, r] = At[k, min(i0 + r, i_hi - 1)]


@nb.njit(error_model="numpy", cache=CACHE)
def gemm_tn(C, At, B, bias, activation, pack):
    """C (M, N) = activation(At (K, M).T . B (K, N) + bias) on the calling thread: the weight
    gradient dWt = dZ.T . A_in, from dZ as it is stored. The MR x kc block of A is copied out
    of At once per block (see _pack_a_t); otherwise as gemm."""
    K, M = At.shape
    N = C.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        _fill_bias(C, bias, activation)
        return
    NR = 2 * vlanes(C)
    kc_max = min(K, KC)
    room = (N + NR - 1) // NR * kc_max
    if room + MR + kc_max > pack.shape[0] or pack.shape[1] != NR:
        raise ValueError("gemm_tn: the pack buffer is too small for this product")
    panels = pack[:room]
    tile = pack[room: room + MR]
    bias2 = bias.reshape((1, bias.shape[0]))
    zero = np.int64(0)
    for k0 in range(0, K, KC):
        k1 = min(K, k0 + KC)
        kc = k1 - k0
        pack_b(panels, B, np.bool_(False), k0, k1, zero, N)
        Ap = pack[room + MR: room + MR + kc]
        relu = k1 == K and activation == RELU
        for i0 in range(0, M, MR):
            if N > 2 * NR:
                _pack_a_t(Ap, At[k0:k1], i0, M)
                Ak, r0, r_hi = Ap.T, zero, np.int64(MR)
            else:
                # one or two panels: the block of A is read once or twice, copying it costs
                # more than reading it in place
                Ak, r0, r_hi = At[k0:k1].T, i0, M
            for j0 in range(0, N, NR):
                _micro(Ak, panels, j0 // NR * kc, tile, r0, r_hi)
                _store(C, tile, i0, min(MR, M - i0), j0, min(NR, N - j0), bias2, k0 == 0,
                       relu)
    if activation != IDENTITY and activation != RELU:
        apply_activation(C, activation)


@nb.njit(error_model="numpy", cache=CACHE)
def _fill_bias(C, bias, activation):
    # a product over K = 0: C = activation(bias)
    for i in range(C.shape[0]):
        for j in range(C.shape[1]):
            C[i, j] = bias[j] if bias.shape[0] > 0 else 0
    apply_activation(C, activation)


@nb.njit(error_model="numpy", cache=CACHE)
def gemm(C, A, B, trans_b, bias, activation, pack):
    """C (M, N) = activation(A (M, K) . B + bias (N,)), B (K, N), or B (N, K) when trans_b,
    on the calling thread.

    bias may be empty (no bias); A may be any strided view; B needs unit stride along its
    rows. pack: a buffer of pack_shape(dtype, >= N, >= K, 1) for the panels of B.
    """
    M, K = A.shape
    N = C.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        _fill_bias(C, bias, activation)
        return
    NR = 2 * vlanes(C)
    if (N + NR - 1) // NR * min(K, KC) + MR > pack.shape[0] or pack.shape[1] != NR:
        raise ValueError("gemm: the pack buffer is too small for this product")
    zero = np.int64(0)
    _gemm_part(C, A, B, trans_b, bias.reshape((1, bias.shape[0])), activation, pack, zero, zero,
               M, zero, N)


@nb.njit(error_model="numpy", parallel=True, cache=CACHE)
def _gemm_threads(C, A, B, trans_b, bias2, activation, pack, T, by_rows, step, per):
    M, N = C.shape
    zero = np.int64(0)
    for t_ in nb.prange(T):
        t = np.int64(t_)
        if by_rows:
            i_lo = min(M, t * step)
            i_hi = min(M, i_lo + step)
            if i_lo < i_hi:
                _gemm_part(C, A, B, trans_b, bias2, activation, pack, t * per, i_lo, i_hi, zero,
                           N)
        else:
            j_lo = min(N, t * step)
            j_hi = min(N, j_lo + step)
            if j_lo < j_hi:
                _gemm_part(C, A, B, trans_b, bias2, activation, pack, t * per, zero, M, j_lo,
                           j_hi)


@nb.njit(error_model="numpy", cache=CACHE)
def gemm_parallel(C, A, B, trans_b, bias, activation, pack):
    """gemm on as many threads as `pack` has room for (pack_shape(..., threads)): C split into
    row ranges (multiples of MR) or column ranges (multiples of NR), whichever has more
    blocks, each range packing the B columns it needs into its own part of pack; one
    parallel region, no synchronisation inside it. Results are identical to gemm's.

    The engine splits minibatches instead (network.py); this is for single large products.
    """
    M, K = A.shape
    N = C.shape[1]
    NR = 2 * vlanes(C)
    row_blocks = (M + MR - 1) // MR
    col_blocks = (N + NR - 1) // NR
    # each part gets room for all of B's panels, whichever way C is split
    per = col_blocks * min(K, KC) + MR
    by_rows = row_blocks >= col_blocks
    T = min(row_blocks if by_rows else col_blocks, pack.shape[0] // per)
    if M == 0 or N == 0 or K == 0 or T <= 1 or M * N * K < config.PARALLEL_MIN_WORK:
        gemm(C, A, B, trans_b, bias, activation, pack)
    elif by_rows:
        _gemm_threads(C, A, B, trans_b, bias.reshape((1, bias.shape[0])), activation, pack, T,
                      np.bool_(True), (row_blocks + T - 1) // T * MR, per)
    else:
        _gemm_threads(C, A, B, trans_b, bias.reshape((1, bias.shape[0])), activation, pack, T,
                      np.bool_(False), (col_blocks + T - 1) // T * NR, per)


def packed_rows(K, N, dtype):
    """Rows of a pre-packed B (K, N): its panels over all of K (see gemm_packed)."""
    return -(-N // nr_of(dtype)) * K


@nb.njit(error_model="numpy", cache=CACHE)
def gemm_packed(C, A, Bp, bias, activation, work):
    """C (M, N) = activation(A (M, K) . B + bias) with B given as Bp: pack_b(Bp, B, trans_b,
    0, K, 0, N), its panels over all of K (packed_rows(K, N) rows), so that a B used for many
    products (a layer's weights, for every chunk of a minibatch) is packed once. On one
    thread; work: at least MR rows of NR for the register block (ValueError otherwise, and for
    a Bp with fewer rows than the panels)."""
    M, K = A.shape
    N = C.shape[1]
    if M == 0 or N == 0:
        return
    NR = 2 * vlanes(C)
    if (work.shape[0] < MR or work.shape[1] != NR or Bp.shape[1] != NR
            or Bp.shape[0] < (N + NR - 1) // NR * K):
        raise ValueError("gemm_packed: the work buffer or the packed B is too small")
    bias2 = bias.reshape((1, bias.shape[0]))
    if K == 0:
        _fill_bias(C, bias, activation)
        return
    tile = work[:MR]
    zero = np.int64(0)
    for k0 in range(0, K, KC):
        k1 = min(K, k0 + KC)
        _block(C, A[:, k0:k1], Bp, K, k0, tile, zero, M, zero, N, bias2, k0 == 0,
               k1 == K and activation == RELU)
    if activation != IDENTITY and activation != RELU:
        apply_activation(C, activation)


def matmul(A, B, trans_b=False, bias=None, activation=IDENTITY):
    """Convenience for tests and benchmarks: a fresh C = activation(A @ B + bias) (B.T if
    trans_b), with its own pack buffer."""
    N = B.shape[0] if trans_b else B.shape[1]
    C = np.empty((A.shape[0], N), dtype=A.dtype)
    bias = np.empty(0, dtype=A.dtype) if bias is None else bias
    gemm_parallel(C, A, B, trans_b, bias, activation, new_pack(A.dtype, N, A.shape[1]))
    return C
