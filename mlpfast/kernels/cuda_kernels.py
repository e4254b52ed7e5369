"""CUDA kernels (numba.cuda, float32): the same training step as kernels/network.py, on a GPU.

Legend: N rows of the data, F features, B rows of a minibatch (cap = the batch size buffers
are sized for), L weight layers, P parameters, C outputs. The flat buffers and their layout are
the CPU engine's (see network.py): theta/grad/opt1/opt2 (P,), layout (L, 4) rows
(weight offset, bias offset, n_in, n_out) with weights stored transposed, Wt (O, I); acts and
deltas hold one (B, width) block per layer. Here they are 1-D device arrays with offsets.

One step of training is a fixed list of phases, each a grid-stride loop over independent work
(GEMM tiles, rows, parameters):

    forward l = 0..L-1   Z = A_l . Wt_l^T + b_l, activation (and dropout) in the epilogue; layer
                         0 reads its rows straight from X through the epoch's permutation
    loss                 the output layer's loss and its gradient (y_hat - y) * w_r / sum(w)
                         (every output kind is its loss's canonical link): stable softmax +
                         cross-entropy one pass per row, sigmoid + binary cross-entropy one
                         thread per row, squared error and exp + Poisson deviance one thread
                         per element; weighted loss and hits summed per step
    backward l = L-1..0  dWt_l = dZ^T . A_l, the bias gradient summed by the same tiles, and
                         dA_l = dZ . Wt_l times f'(h) from the stored output (l > 0)
    update               L2 (alpha / sum(w)), then SGD (momentum, Nesterov) or Adam over the
                         whole flat buffer

Sample weights (scikit-learn's semantics): sw (N,) float32 holds each row's weight, and wsums
(steps,) float32 each step's sum of weights, summed by the host in float64 for the epoch's
permutation (without weights: the step's rows, so w_r / sum(w) is exactly 1 / B as before). A
step whose weights sum to 0 runs no phase at all (its stats are zeroed; no update).

`make_kernels()` builds two kernels from the same phase code: a persistent one that runs every
phase of a run of steps with a grid-wide sync between phases (one launch per epoch or progress
chunk, cooperative launch), and a per-phase one that the host launches once per phase. The
engine measures nothing itself; bench/tests compare the two.

Every float constant is a module-level float32 so that no float64 arithmetic creeps in (the
tests look for `.f64` in the PTX). Kernels whose shared-memory shapes are tile sizes are built by
factories over those sizes, so tests can build them with small tiles whose edges are ragged.
"""
import math

import numpy as np
from numba import config as numba_config
from numba import cuda, float32, uint64

from .activations import IDENTITY, LEAKY_RELU, LOGISTIC, RELU, TANH
from .network import ADAM
from .softmax import OUT_EXP, OUT_LOGISTIC, OUT_SOFTMAX
from .random import _GAMMA, _M1, _M2, _S27, _S30, _S31

SIM = bool(numba_config.ENABLE_CUDASIM)

F0 = np.float32(0.0)
F1 = np.float32(1.0)
SLOPE = np.float32(0.01)
HALF = np.float32(0.5)
NEG_INF = np.float32(-np.inf)
INV24 = np.float32(1.0 / 16777216.0)
FULL_MASK = 0xFFFFFFFF

# the dropout hash: splitmix64's finaliser (random.py) over a mix of the unit's coordinates
_G1 = _GAMMA
_G2 = np.uint64(0xD1B54A32D192ED03)
_G3 = np.uint64(0x8CB92BA72F3D8DD7)
_S40 = np.uint64(40)

# epilogue modes of the GEMM tile
MODE_PLAIN = 0     # C[m, n] = acc
MODE_FORWARD = 1   # acts = act(acc + b), dropout
MODE_DINPUT = 2    # deltas = acc * f'(h)
MODE_DWEIGHT = 3   # grad Wt[m, n] = acc; tiles at n0 = 0 also write grad b[m] = sum_k A[m, k]

# hyper (float32 device array) slots
HY_ALPHA, HY_MOMENTUM, HY_B1, HY_B2, HY_C1, HY_C2, HY_EPS, HY_RATE, HY_KEEP = range(9)
# ip (int32 device array) slots: IP_OUTPUT is NetSpec.output (kernels.softmax.OUT_*),
# IP_WEIGHTED 1 when sw holds sample weights (0: sw is a placeholder, never read)
IP_N, IP_CAP, IP_L, IP_HIDDEN, IP_OUTPUT, IP_SOLVER, IP_NESTEROV, IP_WEIGHTED = range(8)
IP_SIZE = 8
# stats (steps, 2) float32: the step's weighted summed loss plus the L2 term
# 0.5 * alpha * ||W||^2 (the host divides by the step's sum of weights), and rows predicted
# right (unweighted), per step
ST_LOSS, ST_CORRECT = range(2)

# threads per block are TX * TY; each tile config is (BM, BN, BK), BM a multiple of TY and BN of TX
TX = 16
TY = 16
TILES = ((32, 32, 32), (64, 64, 16), (128, 128, 16))


def n_phases(L):
    """Phases in one training step: L forward, loss, L backward, update."""
    return 2 * L + 2


@cuda.jit(device=True)
def act_forward(z, code):
    if code == RELU:
        return z if z > F0 else F0
    if code == TANH:
        return math.tanh(z)
    if code == LOGISTIC:
        if z >= F0:
            return F1 / (F1 + math.exp(-z))
        e = math.exp(z)
        return e / (F1 + e)
    if code == LEAKY_RELU:
        return z if z > F0 else SLOPE * z
    return z


@cuda.jit(device=True)
def act_slope(h, code):
    """f'(z) written from the output h = f(z), as kernels/activations.py does."""
    if code == RELU:
        return F1 if h > F0 else F0
    if code == TANH:
        return F1 - h * h
    if code == LOGISTIC:
        return h * (F1 - h)
    if code == LEAKY_RELU:
        return F1 if h > F0 else SLOPE
    return F1


@cuda.jit(device=True)
def uniform(seed, layer, row, col):
    """A float32 in [0, 1) from a hash of (seed, layer, row, col): the dropout draw of one unit.

    Counter-based, so the backward pass recomputes the mask instead of storing it."""
    z = uint64(seed) + uint64(layer) * _G1 + uint64(row) * _G2 + uint64(col) * _G3
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return float32(z >> _S40) * INV24


@cuda.jit(device=True)
def fetch(buf, off, s_row, s_col, r, c, X, perm, start, gather):
    """Element (r, c) of an operand: buf[off + r*s_row + c*s_col], or row perm[start + r] of
    X (N, F) when gather."""
    if gather:
        return X[perm[start + r], c]
    return buf[off + r * s_row + c * s_col]


def make_gemm_tile(BM, BN, BK, tx_n=TX, ty_n=TY, shared=None):
    """A device function computing one BM x BN tile of C (M, N) = A (M, K) . B (K, N) with the
    given epilogue; all threads of the block must call it (it syncs the block).

    shared: the (rows, cols) of the A and B tiles' shared arrays if not (BK, BM + 1) and
    (BK, BN + 1): the simulator keys shared arrays by source line, so all configs of one
    kernel must allocate the same shape there."""
    TM = BM // ty_n
    TN = BN // tx_n
    NT = tx_n * ty_n
    SA, SB = shared or ((BK, BM + 1), (BK, BN + 1))

    @cuda.jit(device=True)
    def tile(t, M, N, K,
             a, a_off, a_sm, a_sk, a_kfast, a_gather,
             b, b_off, b_sk, b_sn, b_kfast, b_gather,
             X, perm, start,
             mode, c, c_off, ldc, theta, bias_off, act, hbuf, h_off, seed, layer, rate, keep):
        sA = cuda.shared.array(SA, float32)
        sB = cuda.shared.array(SB, float32)
        acc = cuda.local.array((TM, TN), float32)
        ar = cuda.local.array(TM, float32)
        br = cuda.local.array(TN, float32)
        bsum = cuda.local.array(TM, float32)
        tiles_n = (N + BN - 1) // BN
        m0 = (t // tiles_n) * BM
        n0 = (t % tiles_n) * BN
        # the weight gradient's first tile column also sums A over k: the bias gradient
        with_bias = mode == MODE_DWEIGHT and n0 == 0
        tid = cuda.threadIdx.x
        tx = tid % tx_n
        ty = tid // tx_n
        for i in range(TM):
            bsum[i] = F0
            for j in range(TN):
                acc[i, j] = F0
        for k0 in range(0, K, BK):
            for idx in range(tid, BM * BK, NT):
                if a_kfast:
                    mm = idx // BK
                    kk = idx - mm * BK
                else:
                    kk = idx // BM
                    mm = idx - kk * BM
                m = m0 + mm
                k = k0 + kk
                v = F0
                if m < M and k < K:
                    v = fetch(a, a_off, a_sm, a_sk, m, k, X, perm, start, a_gather)
                sA[kk, mm] = v
            for idx in range(tid, BN * BK, NT):
                if b_kfast:
                    nn = idx // BK
                    kk = idx - nn * BK
                else:
                    kk = idx // BN
                    nn = idx - kk * BN
                n = n0 + nn
                k = k0 + kk
                v = F0
                if n < N and k < K:
                    v = fetch(b, b_off, b_sk, b_sn, k, n, X, perm, start, b_gather)
                sB[kk, nn] = v
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(TM):
                    ar[i] = sA[kk, ty + i * ty_n]
                for j in range(TN):
                    br[j] = sB[kk, tx + j * tx_n]
                for i in range(TM):
                    for j in range(TN):
                        acc[i, j] += ar[i] * br[j]
                if with_bias:
                    for i in range(TM):
                        bsum[i] += ar[i]
            cuda.syncthreads()
        for i in range(TM):
            m = m0 + ty + i * ty_n
            if m >= M:
                continue
            if with_bias and tx == 0:
                c[bias_off + m] = bsum[i]
            for j in range(TN):
                n = n0 + tx + j * tx_n
                if n >= N:
                    continue
                v = acc[i, j]
                if mode == MODE_FORWARD:
                    v = act_forward(v + theta[bias_off + n], act)
                    if rate > F0:
                        if uniform(seed, layer, start + m, n) < rate:
                            v = F0
                        else:
                            v = v * keep
                    c[c_off + m * ldc + n] = v
                elif mode == MODE_DINPUT:
                    h = hbuf[h_off + m * ldc + n]
                    if rate > F0:
                        if uniform(seed, layer, start + m, n) < rate:
                            v = F0
                        else:
                            v = v * keep * act_slope(h / keep, act)
                    else:
                        v = v * act_slope(h, act)
                    c[c_off + m * ldc + n] = v
                else:
                    c[c_off + m * ldc + n] = v

    return tile


def make_gemm(tiles=TILES, tx_n=TX, ty_n=TY):
    """gemm(...) over the whole C with the tile config chosen by shape: the largest tile that
    still gives every SM a tile (the engine launches two blocks per SM, so half the grid),
    else the smallest."""
    shared = None
    if SIM:
        bk = max(t[2] for t in tiles)
        shared = ((bk, max(t[0] for t in tiles) + 1), (bk, max(t[1] for t in tiles) + 1))
    fns = [make_gemm_tile(bm, bn, bk, tx_n, ty_n, shared) for bm, bn, bk in tiles]
    sizes = tuple((bm, bn) for bm, bn, _ in tiles)
    n_cfg = len(tiles)
    # numba cannot index a list of functions; unroll the choice for up to three configs
    f0 = fns[0]
    f1 = fns[1] if n_cfg > 1 else fns[0]
    f2 = fns[2] if n_cfg > 2 else f1
    bm0, bn0 = sizes[0]
    bm1, bn1 = sizes[1] if n_cfg > 1 else sizes[0]
    bm2, bn2 = sizes[2] if n_cfg > 2 else (bm1, bn1)

    @cuda.jit(device=True)
    def n_tiles(M, N, cfg):
        if cfg == 2:
            return ((M + bm2 - 1) // bm2) * ((N + bn2 - 1) // bn2)
        if cfg == 1:
            return ((M + bm1 - 1) // bm1) * ((N + bn1 - 1) // bn1)
        return ((M + bm0 - 1) // bm0) * ((N + bn0 - 1) // bn0)

    @cuda.jit(device=True)
    def choose(M, N, blocks):
        cfg = n_cfg - 1
        want = (blocks + 1) // 2
        while cfg > 0 and n_tiles(M, N, cfg) < want:
            cfg -= 1
        return cfg

    @cuda.jit(device=True)
    def run_tile(cfg, t, M, N, K, a, a_off, a_sm, a_sk, a_kfast, a_gather,
                 b, b_off, b_sk, b_sn, b_kfast, b_gather, X, perm, start,
                 mode, c, c_off, ldc, theta, bias_off, act, hbuf, h_off, seed, layer, rate, keep):
        if cfg == 2:
            f2(t, M, N, K, a, a_off, a_sm, a_sk, a_kfast, a_gather, b, b_off, b_sk, b_sn,
               b_kfast, b_gather, X, perm, start, mode, c, c_off, ldc, theta,
               bias_off, act, hbuf, h_off, seed, layer, rate, keep)
        elif cfg == 1:
            f1(t, M, N, K, a, a_off, a_sm, a_sk, a_kfast, a_gather, b, b_off, b_sk, b_sn,
               b_kfast, b_gather, X, perm, start, mode, c, c_off, ldc, theta,
               bias_off, act, hbuf, h_off, seed, layer, rate, keep)
        else:
            f0(t, M, N, K, a, a_off, a_sm, a_sk, a_kfast, a_gather, b, b_off, b_sk, b_sn,
               b_kfast, b_gather, X, perm, start, mode, c, c_off, ldc, theta,
               bias_off, act, hbuf, h_off, seed, layer, rate, keep)

    return n_tiles, choose, run_tile


@cuda.jit(device=True)
def _layer_offset(widths, cap, layer):
    off = 0
    for k in range(layer):
        off += cap * widths[k]
    return off


def make_phases(tiles=TILES, tx_n=TX, ty_n=TY):
    """The device functions of one training step (see the module docstring)."""
    n_tiles, choose, run_tile = make_gemm(tiles, tx_n, ty_n)
    NT = tx_n * ty_n
    WARPS = max(NT // 32, 1)

    @cuda.jit(device=True)
    def forward(layer, X, perm, start, rows, acts, theta, layout, widths, cap, hidden, L,
                seed, rate, keep):
        n_in = layout[layer, 2]
        n_out = layout[layer, 3]
        last = layer == L - 1
        act = IDENTITY if last else hidden
        r = F0 if last else rate
        a_off = _layer_offset(widths, cap, layer)
        c_off = _layer_offset(widths, cap, layer + 1)
        blocks = cuda.gridDim.x
        cfg = choose(rows, n_out, blocks)
        for t in range(cuda.blockIdx.x, n_tiles(rows, n_out, cfg), blocks):
            run_tile(cfg, t, rows, n_out, n_in,
                     acts, a_off, n_in, 1, True, layer == 0,
                     theta, layout[layer, 0], 1, n_in, True, False,
                     X, perm, start,
                     MODE_FORWARD, acts, c_off, n_out, theta, layout[layer, 1], act, acts, 0,
                     seed, layer, r, keep)

    @cuda.jit(device=True)
    def backward(layer, X, perm, start, rows, acts, deltas, theta, grad, layout, widths, cap,
                 hidden, seed, rate, keep):
        """dWt, db of weight layer `layer` and (layer > 0) the delta of its input, one grid loop."""
        n_in = layout[layer, 2]
        n_out = layout[layer, 3]
        a_off = _layer_offset(widths, cap, layer)
        d_off = _layer_offset(widths, cap, layer + 1)
        blocks = cuda.gridDim.x
        cfg_w = choose(n_out, n_in, blocks)
        tw = n_tiles(n_out, n_in, cfg_w)
        cfg_x = choose(rows, n_in, blocks)
        tx_ = n_tiles(rows, n_in, cfg_x) if layer > 0 else 0
        for t in range(cuda.blockIdx.x, tw + tx_, blocks):
            if t < tw:
                # dWt (O, I) = dZ^T (O, B) . A_in (B, I); db = the row sums of dZ^T
                run_tile(cfg_w, t, n_out, n_in, rows,
                         deltas, d_off, 1, n_out, False, False,
                         acts, a_off, n_in, 1, False, layer == 0,
                         X, perm, start,
                         MODE_DWEIGHT, grad, layout[layer, 0], n_in, theta, layout[layer, 1],
                         IDENTITY, acts, 0, seed, layer, F0, keep)
            else:
                # dA (B, I) = dZ (B, O) . Wt (O, I), times f'(h) of the layer below (its output
                # is acts block `layer`, drawn with dropout key layer - 1)
                run_tile(cfg_x, t - tw, rows, n_in, n_out,
                         deltas, d_off, n_out, 1, True, False,
                         theta, layout[layer, 0], n_in, 1, False, False,
                         X, perm, start,
                         MODE_DINPUT, deltas, a_off, n_in, theta, 0, hidden,
                         acts, a_off, seed, layer - 1, rate, keep)

    @cuda.jit(device=True)
    def row_weight(sw, weighted, perm, start, r):
        """Row r's sample weight (1 without weights)."""
        if weighted:
            return sw[perm[start + r]]
        return F1

    @cuda.jit(device=True)
    def xent_rows_sim(Z, z_off, dZ, d_off, y, perm, start, rows, C, sw, weighted, wsum, acc):
        """Thread per row (the simulator has no warp shuffles)."""
        nthreads = cuda.gridDim.x * NT
        for r in range(cuda.blockIdx.x * NT + cuda.threadIdx.x, rows, nthreads):
            base = z_off + r * C
            t = y[perm[start + r]]
            w = row_weight(sw, weighted, perm, start, r)
            scale = w / wsum
            m = Z[base]
            best = 0
            for k in range(1, C):
                if Z[base + k] > m:
                    m = Z[base + k]
                    best = k
            s = F0
            for k in range(C):
                s += math.exp(Z[base + k] - m)
            inv = scale / s
            for k in range(C):
                g = math.exp(Z[base + k] - m) * inv
                if k == t:
                    g -= scale
                dZ[d_off + r * C + k] = g
            cuda.atomic.add(acc, 0, w * (math.log(s) + m - Z[base + t]))
            if best == t:
                cuda.atomic.add(acc, 1, F1)

    @cuda.jit(device=True)
    def warp_max_arg(m, best):
        """The lanes' largest value and its smallest index, on every lane."""
        off = 16
        while off > 0:
            m2 = cuda.shfl_xor_sync(FULL_MASK, m, off)
            b2 = cuda.shfl_xor_sync(FULL_MASK, best, off)
            if m2 > m or (m2 == m and b2 < best):
                m = m2
                best = b2
            off //= 2
        return m, best

    @cuda.jit(device=True)
    def warp_sum(s):
        off = 16
        while off > 0:
            s += cuda.shfl_xor_sync(FULL_MASK, s, off)
            off //= 2
        return s

    @cuda.jit(device=True)
    def xent_rows_warp(Z, z_off, dZ, d_off, y, perm, start, rows, C, sw, weighted, wsum, acc):
        """Warp per row: lanes stride the row, shuffles reduce max / argmax / sum. The row is
        read three times (max, sum, gradient); a form holding the row in registers measured
        slower on an H200 (1.39 against 1.57 TB/s at 65536 x 1024), so this one stays."""
        lane = cuda.threadIdx.x % 32
        warp = cuda.blockIdx.x * WARPS + cuda.threadIdx.x // 32
        nwarps = cuda.gridDim.x * WARPS
        for r in range(warp, rows, nwarps):
            base = z_off + r * C
            t = y[perm[start + r]]
            w = row_weight(sw, weighted, perm, start, r)
            scale = w / wsum
            m = NEG_INF
            best = C
            for k in range(lane, C, 32):
                v = Z[base + k]
                if v > m:
                    m = v
                    best = k
            m, best = warp_max_arg(m, best)
            s = F0
            for k in range(lane, C, 32):
                s += math.exp(Z[base + k] - m)
            s = warp_sum(s)
            inv = scale / s
            for k in range(lane, C, 32):
                g = math.exp(Z[base + k] - m) * inv
                if k == t:
                    g -= scale
                dZ[d_off + r * C + k] = g
            if lane == 0:
                cuda.atomic.add(acc, 0, w * (math.log(s) + m - Z[base + t]))
                if best == t:
                    cuda.atomic.add(acc, 1, F1)

    xent_rows = xent_rows_sim if SIM else xent_rows_warp

    @cuda.jit(device=True)
    def pointwise_rows(Z, z_off, dZ, d_off, Y, perm, start, rows, C, sw, weighted, wsum, code,
                       acc):
        """Thread per element, for the outputs without hits: identity + half squared error
        (z - y), or exp + half Poisson deviance y log(y / mu) - y + mu, mu = exp(z) (mu - y;
        y log y is 0 at y = 0). Times w_r / sum(w); the weighted losses summed into acc[0]."""
        nthreads = cuda.gridDim.x * NT
        total = rows * C
        part = F0
        for e in range(cuda.blockIdx.x * NT + cuda.threadIdx.x, total, nthreads):
            r = e // C
            k = e - r * C
            w = row_weight(sw, weighted, perm, start, r)
            z = Z[z_off + e]
            t = Y[perm[start + r], k]
            if code == OUT_EXP:
                mu = math.exp(z)
                d = mu - t
                if t > F0:
                    part += w * (t * (math.log(t) - z) + d)
                else:
                    part += w * mu
            else:
                d = z - t
                part += w * (HALF * d * d)
            dZ[d_off + e] = d * (w / wsum)
        cuda.atomic.add(acc, 0, part)

    @cuda.jit(device=True)
    def logistic_rows(Z, z_off, dZ, d_off, Y, perm, start, rows, C, sw, weighted, wsum, acc):
        """Thread per row: sigmoid per output and binary cross-entropy, written
        max(z, 0) - y z + log1p(exp(-|z|)) (finite for any z), gradient (sigmoid(z) - y) *
        w_r / sum(w); a row is a hit when every output's (z > 0) is its (y > 0.5)."""
        nthreads = cuda.gridDim.x * NT
        part = F0
        hits = F0
        for r in range(cuda.blockIdx.x * NT + cuda.threadIdx.x, rows, nthreads):
            base = z_off + r * C
            row = perm[start + r]
            w = row_weight(sw, weighted, perm, start, r)
            scale = w / wsum
            lrow = F0
            hit = True
            for k in range(C):
                z = Z[base + k]
                t = Y[row, k]
                lrow += max(z, F0) - t * z + math.log1p(math.exp(-abs(z)))
                dZ[d_off + r * C + k] = (act_forward(z, LOGISTIC) - t) * scale
                if (z > F0) != (t > HALF):
                    hit = False
            part += w * lrow
            if hit:
                hits += F1
        cuda.atomic.add(acc, 0, part)
        cuda.atomic.add(acc, 1, hits)

    @cuda.jit(device=True)
    def block_to_stats(acc, stats, step, alpha_term):
        """Adds a block's shared (loss, correct) to stats[step]; acc must be zeroed and the
        block synced before the block's threads accumulated into it."""
        cuda.syncthreads()
        if cuda.threadIdx.x == 0:
            cuda.atomic.add(stats, (step, ST_LOSS), acc[0] + alpha_term)
            cuda.atomic.add(stats, (step, ST_CORRECT), acc[1])

    @cuda.jit(device=True)
    def loss(step, y, Y, sw, weighted, perm, start, rows, acts, deltas, widths, cap, L, code,
             wsum, stats):
        acc = cuda.shared.array(2, float32)
        if cuda.threadIdx.x == 0:
            acc[0] = F0
            acc[1] = F0
        cuda.syncthreads()
        C = widths[L]
        off = _layer_offset(widths, cap, L)
        if code == OUT_SOFTMAX:
            xent_rows(acts, off, deltas, off, y, perm, start, rows, C, sw, weighted, wsum, acc)
        elif code == OUT_LOGISTIC:
            logistic_rows(acts, off, deltas, off, Y, perm, start, rows, C, sw, weighted, wsum,
                          acc)
        else:
            pointwise_rows(acts, off, deltas, off, Y, perm, start, rows, C, sw, weighted, wsum,
                           code, acc)
        block_to_stats(acc, stats, step, F0)

    @cuda.jit(device=True)
    def update(step, wsum, theta, grad, opt1, opt2, layout, L, solver, nesterov, lr, hyper,
               stats):
        """L2 on the weights (alpha / sum(w), and its loss term), then the optimizer step,
        over all P."""
        acc = cuda.shared.array(1, float32)
        if cuda.threadIdx.x == 0:
            acc[0] = F0
        cuda.syncthreads()
        alpha = hyper[HY_ALPHA]
        coef = alpha / wsum
        P = theta.shape[0]
        sq = F0
        for p in range(cuda.blockIdx.x * NT + cuda.threadIdx.x, P, cuda.gridDim.x * NT):
            w = theta[p]
            g = grad[p]
            if alpha > F0:
                for layer in range(L):
                    w0 = layout[layer, 0]
                    if p >= w0 and p < w0 + layout[layer, 2] * layout[layer, 3]:
                        g += coef * w
                        sq += w * w
            if solver == ADAM:
                mp = hyper[HY_B1] * opt1[p] + hyper[HY_C1] * g
                vp = hyper[HY_B2] * opt2[p] + hyper[HY_C2] * g * g
                opt1[p] = mp
                opt2[p] = vp
                theta[p] = w - lr * mp / (math.sqrt(vp) + hyper[HY_EPS])
            else:
                mu = hyper[HY_MOMENTUM]
                v = mu * opt1[p] - lr * g
                opt1[p] = v
                if nesterov:
                    theta[p] = w + (mu * v - lr * g)
                else:
                    theta[p] = w + v
        if alpha > F0:
            cuda.atomic.add(acc, 0, sq)
            cuda.syncthreads()
            if cuda.threadIdx.x == 0:
                # the loss term 0.5 * alpha * ||W||^2, added once per batch as on the CPU
                cuda.atomic.add(stats, (step, ST_LOSS), HALF * alpha * acc[0])

    @cuda.jit(device=True)
    def probs(rows, acts, widths, cap, L, code, out):
        """out (rows, C) = the output activation of the output block: softmax, sigmoid, exp,
        or the block itself (identity)."""
        C = widths[L]
        off = _layer_offset(widths, cap, L)
        nthreads = cuda.gridDim.x * NT
        for r in range(cuda.blockIdx.x * NT + cuda.threadIdx.x, rows, nthreads):
            base = off + r * C
            if code == OUT_SOFTMAX:
                m = acts[base]
                for k in range(1, C):
                    m = max(m, acts[base + k])
                s = F0
                for k in range(C):
                    s += math.exp(acts[base + k] - m)
                inv = F1 / s
                for k in range(C):
                    out[r, k] = math.exp(acts[base + k] - m) * inv
            elif code == OUT_LOGISTIC:
                for k in range(C):
                    out[r, k] = act_forward(acts[base + k], LOGISTIC)
            elif code == OUT_EXP:
                for k in range(C):
                    out[r, k] = math.exp(acts[base + k])
            else:
                for k in range(C):
                    out[r, k] = acts[base + k]

    return forward, backward, loss, update, probs, xent_rows, n_tiles, choose, run_tile


@cuda.jit(device=True)
def _grid_sync():
    cuda.cg.this_grid().sync()


@cuda.jit(device=True)
def _no_sync():
    pass


class Kernels:
    """The compiled kernels of one tile/thread configuration (see make_kernels)."""


_BUILT = {}


def make_kernels(tiles=TILES, tx_n=TX, ty_n=TY):
    """Build (once per configuration) the kernels the CUDA engine, tests and bench launch:

    steps_persistent[grid, NT](...)  phases ph_first..ph_last-1 of steps b_first..b_last-1,
                                     grid-wide sync between phases (cooperative launch)
    steps_phased[grid, NT](...)      the same body without the syncs: launch one phase at a time
    predict_persistent / _phased     forward + output activation of the rows of X into out
    gemm_plain[grid, NT]             c (M, N) = a (M, K) . b (K, N), row-major, for benchmarks
    xent[grid, NT]                   the fused softmax + cross-entropy gradient alone
    """
    key = (tuple(tuple(t) for t in tiles), tx_n, ty_n)
    if key in _BUILT:
        return _BUILT[key]
    (forward, backward, loss, update, probs, xent_rows, n_tiles, choose,
     run_tile) = make_phases(tiles, tx_n, ty_n)
    NT = tx_n * ty_n

    def make_steps(sync):
        @cuda.jit
        def steps(X, y, Y, sw, perm, theta, grad, opt1, opt2, layout, widths, acts, deltas,
                  stats, lrs, wsums, hyper, ip, b_first, b_last, ph_first, ph_last, seed):
            N = ip[IP_N]
            cap = ip[IP_CAP]
            L = ip[IP_L]
            hidden = ip[IP_HIDDEN]
            weighted = ip[IP_WEIGHTED] != 0
            rate = hyper[HY_RATE]
            keep = hyper[HY_KEEP]
            for b in range(b_first, b_last):
                start = b * cap
                rows = min(cap, N - start)
                # the step's sum of weights; 0 skips the step (the same on every block)
                wsum = wsums[b]
                live = wsum > F0
                for ph in range(ph_first, ph_last):
                    if ph == 0 and cuda.blockIdx.x == 0 and cuda.threadIdx.x == 0:
                        stats[b, ST_LOSS] = F0
                        stats[b, ST_CORRECT] = F0
                    if not live:
                        pass  # nothing but the syncs, which every block must reach
                    elif ph < L:
                        forward(ph, X, perm, start, rows, acts, theta, layout, widths, cap,
                                hidden, L, seed, rate, keep)
                    elif ph == L:
                        loss(b, y, Y, sw, weighted, perm, start, rows, acts, deltas, widths, cap,
                             L, ip[IP_OUTPUT], wsum, stats)
                    elif ph <= 2 * L:
                        backward(2 * L - ph, X, perm, start, rows, acts, deltas, theta, grad,
                                 layout, widths, cap, hidden, seed, rate, keep)
                    else:
                        update(b, wsum, theta, grad, opt1, opt2, layout, L, ip[IP_SOLVER],
                               ip[IP_NESTEROV] != 0, lrs[b], hyper, stats)
                    sync()
        return steps

    def make_predict(sync):
        @cuda.jit
        def predict(X, perm, rows, theta, layout, widths, acts, out, ip, ph_first, ph_last):
            # phases: forward l = 0..L-1, then L = the output activation into out
            L = ip[IP_L]
            for ph in range(ph_first, ph_last):
                if ph < L:
                    forward(ph, X, perm, 0, rows, acts, theta, layout, widths, rows,
                            ip[IP_HIDDEN], L, 0, F0, F1)
                else:
                    probs(rows, acts, widths, rows, L, ip[IP_OUTPUT], out)
                sync()
        return predict

    @cuda.jit
    def gemm_plain(a, b, c, M, N, K, X, perm):
        """c (M, N) = a (M, K) . b (K, N), all row-major and flat."""
        blocks = cuda.gridDim.x
        cfg = choose(M, N, blocks)
        for t in range(cuda.blockIdx.x, n_tiles(M, N, cfg), blocks):
            run_tile(cfg, t, M, N, K, a, 0, K, 1, True, False, b, 0, N, 1, False, False,
                     X, perm, 0, MODE_PLAIN, c, 0, N, c, 0, IDENTITY, c, 0, 0, 0, F0, F1)

    @cuda.jit
    def xent(z, y, perm, dz, acc, rows, C):
        """dz = (softmax(z) - onehot(y)) / rows for z (rows, C) flat; acc += (loss, hits)."""
        # unweighted (z stands in for the weights, never read): the scale is 1 / rows
        xent_rows(z, 0, dz, 0, y, perm, 0, rows, C, z, False, float32(rows), acc)

    k = Kernels()
    k.NT = NT
    k.steps_persistent = make_steps(_grid_sync)
    k.steps_phased = make_steps(_no_sync)
    k.predict_persistent = make_predict(_grid_sync)
    k.predict_phased = make_predict(_no_sync)
    k.gemm_plain = gemm_plain
    k.xent = xent
    _BUILT[key] = k
    return k
