"""Every CPU kernel against the float64 reference (mlpfast.reference), on shapes that do not
divide the register blocks, in float32 and float64."""
import importlib
import itertools
import math
import shutil
import sys

import numba as nb
import numpy as np
import pytest
from llvmlite import binding as llvm
from numba.core.registry import cpu_target
from conftest import ODD, tol

import mlpfast
from mlpfast import reference as ref
from mlpfast.kernels import activations as act
from mlpfast.kernels import addresses, buffers, matmul, optim, random, simd, softmax
from mlpfast.registry import ACTIVATIONS

DTYPES = (np.float32, np.float64)
NO_WEIGHTS = np.zeros(0)  # the fused output kernels' "no sample weights"
OUTPUT_NAMES = {softmax.OUT_IDENTITY: "identity", softmax.OUT_SOFTMAX: "softmax",
                softmax.OUT_LOGISTIC: "logistic", softmax.OUT_EXP: "exp"}


def _empty(dtype):
    return np.empty(0, dtype)


def _pack(dtype, N, K, threads=1):
    return np.zeros(matmul.pack_shape(dtype, N, K, threads), dtype)


def _packed(B, trans_b):
    """B's panels over all of K, as gemm_packed takes them."""
    K, N = (B.shape[1], B.shape[0]) if trans_b else B.shape
    Bp = np.full((matmul.packed_rows(K, N, B.dtype), matmul.nr_of(B.dtype)), np.nan, B.dtype)
    matmul.pack_b(Bp, B, trans_b, 0, K, 0, N)
    return Bp


# M, K, N that do not divide the 6-row and 2L-column register block, K past one K-block
GEMM_SHAPES = (list(itertools.product(ODD, (1, 7, 33), ODD))[::3]
               + [(257, 257, 257), (13, matmul.KC + 9, 21), (6, 2 * matmul.KC, 16)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M,K,N", GEMM_SHAPES)
def test_gemm_matches_reference(rng, dtype, M, K, N):
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    expect = ref.matmul(A, B)
    # B as given, B transposed (the forward's Wt), and A a strided view (the weight gradient's
    # dZ.T): the three ways the network calls it
    for A_, B_, trans_b in [(A, B, False), (A, np.ascontiguousarray(B.T), True),
                            (np.ascontiguousarray(A.T).T, B, False)]:
        C = np.full((M, N), np.nan, dtype)
        matmul.gemm(C, A_, B_, trans_b, _empty(dtype), act.IDENTITY, _pack(dtype, N, K))
        np.testing.assert_allclose(C, expect, **tol(dtype))
        C = np.full((M, N), np.nan, dtype)
        matmul.gemm_packed(C, A_, _packed(B_, trans_b), _empty(dtype), act.IDENTITY,
                           _pack(dtype, N, K))
        np.testing.assert_allclose(C, expect, **tol(dtype))
    # A given transposed (the weight gradient's dZ, as stored)
    C = np.full((M, N), np.nan, dtype)
    matmul.gemm_tn(C, np.ascontiguousarray(A.T), B, _empty(dtype), act.IDENTITY,
                   _pack(dtype, N, K))
    np.testing.assert_allclose(C, expect, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("K", [7, matmul.KC + 3])
def test_gemm_epilogue_bias_and_activation(rng, dtype, name, K):
    # with two K-blocks the bias goes in with the first and the activation after the last
    M, N = 33, 257
    A = rng.standard_normal((M, K)).astype(dtype)
    Bt = rng.standard_normal((N, K)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    expect = ref.ACTIVATIONS[name](ref.matmul(A, Bt.T) + b)
    C = np.empty((M, N), dtype)
    matmul.gemm(C, A, Bt, True, b, ACTIVATIONS[name], _pack(dtype, N, K))
    np.testing.assert_allclose(C, expect, **tol(dtype))
    C = np.empty((M, N), dtype)
    matmul.gemm_packed(C, A, _packed(Bt, True), b, ACTIVATIONS[name], _pack(dtype, N, K))
    np.testing.assert_allclose(C, expect, **tol(dtype))
    C = np.empty((M, N), dtype)
    matmul.gemm_tn(C, np.ascontiguousarray(A.T), np.ascontiguousarray(Bt.T), b,
                   ACTIVATIONS[name], _pack(dtype, N, K))
    np.testing.assert_allclose(C, expect, **tol(dtype))


def test_gemm_k_zero_gives_the_bias(rng):
    b = rng.standard_normal(9)
    C = np.full((5, 9), np.nan)
    matmul.gemm(C, np.empty((5, 0)), np.empty((0, 9)), False, b, act.RELU, _pack(np.float64, 9, 1))
    np.testing.assert_array_equal(C, np.broadcast_to(np.maximum(b, 0), (5, 9)))


@pytest.mark.parametrize("M,K,N", [(257, 129, 65), (10, 300, 250), (600, 40, 7)])
def test_gemm_results_do_not_depend_on_threads_or_position(rng, M, K, N):
    # the same FMAs for an element wherever it sits: a parallel product (split by rows or by
    # columns), a serial one, the pre-packed one and a few rows alone agree to the bit
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    b = rng.standard_normal(N).astype(np.float32)
    serial = np.empty((M, N), np.float32)
    matmul.gemm(serial, A, B, False, b, act.TANH, _pack(np.float32, N, K))
    for threads in (2, 3, 8):
        par = np.empty_like(serial)
        matmul.gemm_parallel(par, A, B, False, b, act.TANH, _pack(np.float32, N, K, threads))
        assert np.array_equal(par, serial)
    packed = np.empty_like(serial)
    matmul.gemm_packed(packed, A, _packed(B, False), b, act.TANH, _pack(np.float32, N, K))
    assert np.array_equal(packed, serial)
    tn = np.empty_like(serial)
    matmul.gemm_tn(tn, np.ascontiguousarray(A.T), B, b, act.TANH, _pack(np.float32, N, K))
    assert np.array_equal(tn, serial)
    for lo, hi in [(0, 1), (5, min(M, 12)), (M - 7, M)]:
        part = np.empty((hi - lo, N), np.float32)
        matmul.gemm(part, np.ascontiguousarray(A[lo:hi]), B, False, b, act.TANH,
                    _pack(np.float32, N, K))
        assert np.array_equal(part, serial[lo:hi])


@pytest.fixture(scope="module")
def other_width(tmp_path_factory):
    """matmul compiled at the other vector width (32 bytes where this CPU gives 64, and the
    reverse): a copy of the package whose simd.VEC_BYTES is fixed to it. LLVM splits vectors
    wider than the CPU's registers, so either width runs on any x86 CPU with AVX2. Skipped on
    a CPU with AVX-512 that mlpfast runs at 32 bytes (not in simd.WIDE_CPUS): the copy would
    run 512-bit code that mlpfast never runs there."""
    _, cpu, features = cpu_target.target_context.codegen().magic_tuple()
    if simd.VEC_BYTES == 32 and "+avx512f" in features.split(","):
        pytest.skip(f"mlpfast uses 32-byte vectors on this AVX-512 CPU ({cpu})")
    root = tmp_path_factory.mktemp("width")
    copy = root / "mlpfast_width"
    shutil.copytree(mlpfast.__path__[0], copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = (copy / "kernels" / "simd.py").read_text()
    line = "VEC_BYTES = target_vector_bytes()"
    assert line in source
    (copy / "kernels" / "simd.py").write_text(
        source.replace(line, f"VEC_BYTES = {96 - simd.VEC_BYTES}"))
    sys.path.insert(0, str(root))
    try:
        other = importlib.import_module("mlpfast_width.kernels.matmul")
    finally:
        sys.path.remove(str(root))
    assert other.nr_of(np.float32) != matmul.nr_of(np.float32)
    return other


def _products(mm, A, B, b):
    """The GEMM entry points the network uses, of matmul module `mm`, on A (M, K) . B (K, N)
    + b, relu (gemm_parallel runs gemm's code on each thread: its bits are tested equal
    above)."""
    M, K = A.shape
    N = B.shape[1]
    dtype = A.dtype

    def pack():
        return np.zeros(mm.pack_shape(dtype, N, K, 1), dtype)
    out = {}
    for name in ("gemm", "gemm_t", "tn", "packed"):
        out[name] = np.full((M, N), np.nan, dtype)
    mm.gemm(out["gemm"], A, B, False, b, act.RELU, pack())
    mm.gemm(out["gemm_t"], A, np.ascontiguousarray(B.T), True, b, act.RELU, pack())
    mm.gemm_tn(out["tn"], np.ascontiguousarray(A.T), B, b, act.RELU, pack())
    Bp = np.full((mm.packed_rows(K, N, dtype), mm.nr_of(dtype)), np.nan, dtype)
    mm.pack_b(Bp, B, False, 0, K, 0, N)
    mm.gemm_packed(out["packed"], A, Bp, b, act.RELU, pack())
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_bits_do_not_depend_on_the_vector_width(rng, other_width, dtype):
    # every element of C gets the same FMAs in the same order at 32 and at 64 bytes, so a
    # model trained on an AVX2 machine and on an AVX-512 machine has the same bits
    for M, K, N in [(1, 1, 1), (7, 33, 17), (37, 300, 70), (257, matmul.KC + 9, 129)]:
        A = rng.standard_normal((M, K)).astype(dtype)
        B = rng.standard_normal((K, N)).astype(dtype)
        b = rng.standard_normal(N).astype(dtype)
        here = _products(matmul, A, B, b)
        there = _products(other_width, A, B, b)
        for name, C in here.items():
            assert np.array_equal(C, there[name]), (name, M, K, N)
            np.testing.assert_allclose(C, np.maximum(ref.matmul(A, B) + b, 0), **tol(dtype))


def test_vector_width_follows_the_target_cpu_and_features():
    assert simd.target_vector_bytes("+avx2,+fma,+avx512f,+avx512bw", "znver5") == 64
    assert simd.target_vector_bytes("+avx2,+fma,-avx512f,-avx512bw", "znver5") == 32
    # AVX-512 where 64 bytes were not measured faster: 32
    assert simd.target_vector_bytes("+avx2,+fma,+avx512f,+avx512bw", "znver4") == 32
    assert simd.target_vector_bytes("+avx2,+fma,+avx512f", "sapphirerapids") == 32
    assert simd.target_vector_bytes("+avx512f", "generic") == 32
    assert simd.target_vector_bytes("+neon", "neoverse-v2") == 32
    # this process: the CPU and features Numba keys its cache on
    _, cpu, features = cpu_target.target_context.codegen().magic_tuple()
    wide = cpu in simd.WIDE_CPUS and "+avx512f" in features.split(",")
    assert simd.VEC_BYTES == (64 if wide else 32)
    assert matmul.MR == (8 if wide else 6)


@pytest.mark.skipif(not {"+avx2", "+fma"} <= set(llvm.get_host_cpu_features().flatten()
                                                 .split(",")),
                    reason="vector FMA instructions are checked on x86 with AVX2 and FMA")
def test_micro_kernel_compiles_to_vector_fmas():
    # the register block must come out of LLVM as FMAs of the vector width (256-bit, 512-bit
    # with AVX-512) on 12 accumulators, with no accumulator spilled to memory (a fresh
    # compile: the cache keeps no assembly to inspect)
    block = nb.njit(error_model="numpy")(matmul._block.py_func)
    nr = matmul.nr_of(np.float32)
    C = np.zeros((12, 2 * nr), np.float32)
    A = np.ones((12, 40), np.float32)
    P = np.ones((80, nr), np.float32)
    tile = np.zeros((matmul.MR, nr), np.float32)  # the register block on its way to C
    block(C, A, P, 40, 0, tile, 0, 12, 0, 2 * nr, C[:1, :0], True, False)
    assert np.all(C == 40)
    asm = block.inspect_asm(block.signatures[0])
    register = {32: "ymm", 64: "zmm"}[simd.VEC_BYTES]
    fmas = [line for line in asm.splitlines() if "vfmadd" in line and register in line]
    assert len(fmas) >= 12
    assert not any("(%rsp)" in line for line in fmas)  # no FMA on a stack slot


def test_gemm_refuses_a_pack_buffer_too_small(rng):
    # room for one panel of B, four needed
    nr = matmul.nr_of(np.float32)
    A = np.ones((8, 40), np.float32)
    B = np.ones((40, 3 * nr + 1), np.float32)
    with pytest.raises(ValueError, match="pack buffer"):
        matmul.gemm(np.empty((8, 3 * nr + 1), np.float32), A, B, False, _empty(np.float32), 0,
                    _pack(np.float32, nr, 40))


def test_gemm_packed_refuses_a_work_buffer_too_small(rng):
    # the register block is MR rows on its way to C: a shorter buffer was written past its end
    A = np.ones((8, 40), np.float32)
    B = np.ones((40, 50), np.float32)
    work = _pack(np.float32, 50, 40)
    with pytest.raises(ValueError, match="too small"):
        matmul.gemm_packed(np.empty((8, 50), np.float32), A, _packed(B, False), _empty(np.float32),
                           0, work[:matmul.MR - 1])
    with pytest.raises(ValueError, match="too small"):
        matmul.gemm_packed(np.empty((8, 50), np.float32), A, _packed(B, False)[:-1],
                           _empty(np.float32), 0, work)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K,N", [(1, 1), (7, 33), (9, 16), (33, 40)])
def test_pack_b_lays_out_panels_with_zero_padding(rng, dtype, K, N):
    B = rng.standard_normal((K, N)).astype(dtype)
    nr = matmul.nr_of(dtype)
    n_panels = -(-N // nr)
    padded = np.zeros((K, n_panels * nr), dtype)
    padded[:, :N] = B
    expect = padded.reshape(K, n_panels, nr).transpose(1, 0, 2).reshape(-1, nr)
    for src, trans_b in [(B, False), (np.ascontiguousarray(B.T), True)]:
        assert np.array_equal(_packed(src, trans_b), expect)
    # one K-block of a column range, as gemm packs it
    P = np.full((n_panels * K, nr), np.nan, dtype)
    matmul.pack_b(P, B, False, 1, K, 0, N)
    assert np.array_equal(P[: n_panels * (K - 1)],
                          padded[1:].reshape(K - 1, n_panels, nr).transpose(1, 0, 2)
                          .reshape(-1, nr))


@nb.njit
def _simd_roundtrip(dst, src, i, j, n):
    simd.vstore_part(dst, i, j, simd.vload_part(src, i, j, n), n)


@nb.njit
def _simd_transpose(dst, src):
    simd.vtranspose(dst, 1, 2, src, 3, 4)


@nb.njit
def _simd_arith(out, a, b):
    x = simd.vload(a, 0, 0)
    y = simd.vload(b, 0, 0)
    simd.vstore(out, 0, 0, simd.vfma(x, y, simd.vsplat(a[0, 0], a)))
    simd.vstore(out, 1, 0, simd.vrelu(simd.vadd(x, y)))
    simd.vstore(out, 2, 0, simd.vzero(a))
    return simd.vlanes(a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_simd_vectors(rng, dtype):
    L = simd.lanes_of(dtype)
    a = rng.standard_normal((1, L)).astype(dtype)
    b = rng.standard_normal((1, L)).astype(dtype)
    out = np.full((3, L), np.nan, dtype)
    assert _simd_arith(out, a, b) == L
    np.testing.assert_allclose(out[0], a[0] * b[0] + a[0, 0], rtol=1e-6)
    np.testing.assert_array_equal(out[1], np.where(a[0] + b[0] > 0, a[0] + b[0], 0))
    np.testing.assert_array_equal(out[2], 0)
    # a partial load and store touch nothing past n
    src = rng.standard_normal((2, L + 3)).astype(dtype)
    for n in range(L):
        dst = np.full_like(src, 7.0)
        _simd_roundtrip(dst, src, 1, 2, n)
        assert np.array_equal(dst[1, 2:2 + n], src[1, 2:2 + n])
        assert (dst[1, 2 + n:] == 7).all() and (dst[0] == 7).all() and (dst[1, :2] == 7).all()
    # an L x L block transposed in registers
    src = rng.standard_normal((3 + L, 4 + L)).astype(dtype)
    dst = np.zeros((1 + L, 2 + L), dtype)
    _simd_transpose(dst, src)
    assert np.array_equal(dst[1:, 2:], src[3:, 4:].T)
    assert (dst[0] == 0).all() and (dst[:, :2] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_from_output(rng, dtype, name):
    Z = (3 * rng.standard_normal((7, 33))).astype(dtype)
    H = Z.copy()
    act.apply_activation(H, ACTIVATIONS[name])
    np.testing.assert_allclose(H, ref.ACTIVATIONS[name](Z.astype(np.float64)), **tol(dtype))
    G = rng.standard_normal((7, 33)).astype(dtype)
    dH = G.copy()
    act.activation_backward(dH, H, ACTIVATIONS[name])
    np.testing.assert_allclose(dH, G * ref.DERIVATIVES[name](H.astype(np.float64)), **tol(dtype))


def test_float32_tanh_is_within_4e_7_of_tanh():
    # the float32 path's rational tanh (activations.tanh32): odd, saturating, NaN kept
    x = np.linspace(-30, 30, 400_001).astype(np.float32).reshape(1, -1)
    h = x.copy()
    act.apply_activation(h, act.TANH)
    assert np.abs(h - np.tanh(x.astype(np.float64))).max() < 4e-7
    neg = -x
    act.apply_activation(neg, act.TANH)
    assert np.array_equal(neg, -h)
    special = np.array([[np.nan, 0.0, -0.0, 1e-30, np.inf, -np.inf]], np.float32)
    act.apply_activation(special, act.TANH)
    assert np.isnan(special[0, 0]) and special[0, 1] == 0 and np.signbit(special[0, 2])
    assert special[0, 3] == pytest.approx(1e-30, rel=2e-7)  # tanh x ~ x near 0, to the ulp
    assert special[0, 4] == -special[0, 5] > 0.9999997


def test_activation_derivatives_match_finite_differences(rng):
    z = rng.uniform(-3, 3, 200)
    z = z[np.abs(z) > 1e-3]  # relu and leaky_relu have a kink at 0
    h = 1e-6
    for name, f in ref.ACTIVATIONS.items():
        fd = (f(z + h) - f(z - h)) / (2 * h)
        np.testing.assert_allclose(ref.DERIVATIVES[name](f(z)), fd, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,C", [(1, 2), (7, 3), (33, 26), (257, 10)])
def test_softmax_xent_grad_matches_reference(rng, dtype, B, C):
    Z = (4 * rng.standard_normal((B, C))).astype(dtype)
    y = rng.integers(0, C, B).astype(np.int32)
    dZ = np.empty_like(Z)
    loss, correct = softmax.softmax_xent_grad(dZ, Z, y, NO_WEIGHTS, 1.0 / B)
    np.testing.assert_allclose(dZ, ref.xent_grad(Z, y), **tol(dtype))
    assert loss / B == pytest.approx(ref.xent_loss(Z, y), rel=1e-5 if dtype == np.float32 else 1e-12)
    assert correct == int((Z.argmax(axis=1) == y).sum())
    P = np.empty_like(Z)
    softmax.softmax(P, Z)
    np.testing.assert_allclose(P, ref.softmax(Z), **tol(dtype))


def test_softmax_jacobian_and_fused_gradient_match_finite_differences(rng):
    z = rng.standard_normal(7)
    h = 1e-6
    J = np.empty((7, 7))
    for k in range(7):
        e = np.zeros(7)
        e[k] = h
        J[:, k] = (ref.softmax((z + e)[None])[0] - ref.softmax((z - e)[None])[0]) / (2 * h)
    np.testing.assert_allclose(ref.softmax_jacobian(z), J, atol=1e-9)
    # the fused kernel's gradient against finite differences of the loss itself
    Z = rng.standard_normal((5, 7))
    y = rng.integers(0, 7, 5).astype(np.int32)
    dZ = np.empty_like(Z)
    softmax.softmax_xent_grad(dZ, Z, y, NO_WEIGHTS, 1.0 / 5)
    fd = np.empty_like(Z)
    for i, k in itertools.product(range(5), range(7)):
        E = np.zeros_like(Z)
        E[i, k] = h
        fd[i, k] = (ref.xent_loss(Z + E, y) - ref.xent_loss(Z - E, y)) / (2 * h)
    np.testing.assert_allclose(dZ, fd, atol=1e-8)
    # and the chain rule through the Jacobian gives the same: dL/dz = J^T (-1/S_y e_y) / B
    for i in range(5):
        s = ref.softmax(Z[i][None])[0]
        dS = np.zeros(7)
        dS[y[i]] = -1.0 / s[y[i]]
        np.testing.assert_allclose(ref.softmax_jacobian(Z[i]).T @ dS / 5, dZ[i], atol=1e-12)


@nb.njit(error_model="numpy")
def _exps(x, shifted):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = softmax.exp_of_shifted(x[i]) if shifted else math.exp(x[i])
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_of_shifted_gives_math_exp_bit_for_bit(dtype):
    # it skips exp where exp underflows to +0 (glibc's slow error path): the same bits for
    # every x <= 0, around both dtypes' bounds, -inf and NaN
    x = np.concatenate([-np.linspace(0, 800, 400001),
                        np.nextafter(np.array([-103.972, -104.0, -745.133, -746.0]), 0),
                        [-103.972, -104.0, -745.133, -746.0, -np.inf, np.nan, -0.0]]).astype(dtype)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    got, want = _exps(x, True), _exps(x, False)
    assert got.dtype == dtype
    assert np.array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_stability(dtype):
    cases = {
        "huge positive": np.array([[1e4, 0.0, -1e4]]),
        "huge negative": np.array([[-1e4, -1e4 + 1, -1e4 + 2]]),
        "all equal": np.full((1, 5), 3.0),
        "dominant": np.array([[50.0, 0.0, 0.0, 0.0]]),
    }
    for name, Z in cases.items():
        Z = Z.astype(dtype)
        for t in range(Z.shape[1]):
            y = np.array([t], np.int32)
            dZ = np.empty_like(Z)
            loss, _ = softmax.softmax_xent_grad(dZ, Z, y, NO_WEIGHTS, 1.0)
            assert np.isfinite(loss) and np.isfinite(dZ).all(), name
            assert loss == pytest.approx(ref.xent_loss(Z, y), rel=1e-5, abs=1e-6), name
            np.testing.assert_allclose(dZ, ref.xent_grad(Z, y), atol=1e-6, err_msg=name)
    dZ = np.empty((1, 5), dtype)
    loss, _ = softmax.softmax_xent_grad(dZ, np.full((1, 5), 3.0, dtype), np.array([2], np.int32),
                                        NO_WEIGHTS, 1.0)
    assert loss == pytest.approx(np.log(5), rel=1e-6)
    loss, _ = softmax.softmax_xent_grad(dZ[:, :3], np.array([[1e4, 0, -1e4]], dtype),
                                        np.array([2], np.int32), NO_WEIGHTS, 1.0)
    assert loss == pytest.approx(2e4, rel=1e-6)  # log-sum-exp, not log(0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_grad(rng, dtype):
    Z = rng.standard_normal((33, 3)).astype(dtype)
    Y = rng.standard_normal((33, 3)).astype(dtype)
    dZ = np.empty_like(Z)
    loss = softmax.squared_error_grad(dZ, Z, Y, NO_WEIGHTS, 1.0 / 33)
    assert loss / 33 == pytest.approx(ref.squared_loss(Z, Y), rel=1e-5)
    np.testing.assert_allclose(dZ, ref.squared_grad(Z, Y), **tol(dtype))


def _output_problem(rng, output, B, C, dtype, spread=3.0):
    """Logits Z (B, C) and targets of output code `output`: class indices (softmax), 0/1
    labels (logistic), counts with zeros (exp), reals (identity)."""
    Z = (spread * rng.standard_normal((B, C))).astype(dtype)
    if output == softmax.OUT_SOFTMAX:
        return Z, rng.integers(0, C, B).astype(np.int32)
    if output == softmax.OUT_LOGISTIC:
        return Z, (rng.random((B, C)) < 0.5).astype(dtype)
    if output == softmax.OUT_EXP:
        return Z, rng.poisson(2.0, (B, C)).astype(dtype)
    return Z, rng.standard_normal((B, C)).astype(dtype)


def _fused(output, dZ, Z, target, w, scale):
    """(summed loss, rows right) from the fused kernel of an output code."""
    if output == softmax.OUT_SOFTMAX:
        return softmax.softmax_xent_grad(dZ, Z, target, w, scale)
    if output == softmax.OUT_LOGISTIC:
        return softmax.logistic_xent_grad(dZ, Z, target, w, scale)
    if output == softmax.OUT_EXP:
        return softmax.poisson_grad(dZ, Z, target, w, scale), 0
    return softmax.squared_error_grad(dZ, Z, target, w, scale), 0


def _rows_right(output, Z, target):
    if output == softmax.OUT_SOFTMAX:
        return int((Z.argmax(axis=1) == target).sum())
    if output == softmax.OUT_LOGISTIC:
        return int(((Z > 0) == (target > 0.5)).all(axis=1).sum())
    return 0


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", sorted(OUTPUT_NAMES), ids=OUTPUT_NAMES.get)
@pytest.mark.parametrize("B", ODD)
@pytest.mark.parametrize("C", [1, 3, 33])
def test_fused_output_kernels_match_reference(rng, output, dtype, weighted, B, C):
    if output == softmax.OUT_SOFTMAX and C == 1:
        C = 2
    Z, target = _output_problem(rng, output, B, C, dtype)
    loss_fn, grad_fn, _ = ref.OUTPUTS[output]
    # weights with zeros among them, as scikit-learn allows
    w = rng.uniform(0, 3, B) * (rng.random(B) > 0.2) if weighted else None
    if weighted and w.sum() == 0:
        w[0] = 1.0
    sw = w.sum() if weighted else B
    dZ = np.full_like(Z, np.nan)
    loss, right = _fused(output, dZ, Z, target, w if weighted else NO_WEIGHTS, 1.0 / sw)
    np.testing.assert_allclose(dZ, grad_fn(Z, target, w), **tol(dtype))
    rel = 1e-5 if dtype == np.float32 else 1e-12
    assert loss / sw == pytest.approx(loss_fn(Z, target, w), rel=rel, abs=1e-12)
    assert right == _rows_right(output, Z, target)
    # in place (dZ is Z), as the kernels allow
    Zc = Z.copy()
    _fused(output, Zc, Zc, target, w if weighted else NO_WEIGHTS, 1.0 / sw)
    assert np.array_equal(Zc, dZ)


@pytest.mark.parametrize("output", [softmax.OUT_LOGISTIC, softmax.OUT_EXP],
                         ids=["logistic", "exp"])
def test_new_fused_gradients_match_finite_differences(rng, output):
    # the kernels' dZ against central differences of the reference loss, weights included
    Z, target = _output_problem(rng, output, 5, 3, np.float64, spread=1.0)
    w = rng.uniform(0.1, 2, 5)
    dZ = np.empty_like(Z)
    _fused(output, dZ, Z, target, w, 1.0 / w.sum())
    loss_fn = ref.OUTPUTS[output][0]
    h = 1e-6
    fd = np.empty_like(Z)
    for i, k in itertools.product(range(5), range(3)):
        E = np.zeros_like(Z)
        E[i, k] = h
        fd[i, k] = (loss_fn(Z + E, target, w) - loss_fn(Z - E, target, w)) / (2 * h)
    np.testing.assert_allclose(dZ, fd, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_and_poisson_stability(dtype):
    # logits far beyond exp's range: finite loss and gradient where log(sigmoid) would be -inf
    Z = np.array([[1e4, -1e4, 0.0, 800.0, -800.0, 40.0]], dtype)
    for labels in ([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]):
        Y = np.array([labels], dtype)
        dZ = np.empty_like(Z)
        loss, right = softmax.logistic_xent_grad(dZ, Z, Y, NO_WEIGHTS, 1.0)
        assert np.isfinite(loss) and np.isfinite(dZ).all()
        assert loss == pytest.approx(ref.binary_xent_loss(Z, Y), rel=1e-6)
        np.testing.assert_allclose(dZ, ref.binary_xent_grad(Z, Y), atol=1e-7)
    # a wrong label on z = 1e4 costs 1e4, not inf
    dZ = np.empty((1, 1), dtype)
    loss, right = softmax.logistic_xent_grad(dZ, np.array([[1e4]], dtype), np.zeros((1, 1), dtype),
                                             NO_WEIGHTS, 1.0)
    assert loss == pytest.approx(1e4, rel=1e-6) and right == 0 and dZ[0, 0] == 1
    # Poisson: y log y is 0 at y = 0, mu rounding to 0 is no log(0)
    Z = np.array([[-800.0, 0.0, 3.0, -50.0]], dtype)
    Y = np.array([[0.0, 0.0, 5.0, 2.0]], dtype)
    dZ = np.empty_like(Z)
    loss = softmax.poisson_grad(dZ, Z, Y, NO_WEIGHTS, 1.0)
    assert np.isfinite(loss) and np.isfinite(dZ).all()
    assert loss == pytest.approx(ref.poisson_loss(Z, Y), rel=1e-6)
    np.testing.assert_allclose(dZ, ref.poisson_grad(Z, Y), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", sorted(OUTPUT_NAMES), ids=OUTPUT_NAMES.get)
def test_output_activation_matches_reference(rng, dtype, output):
    for B, C in [(1, 1), (7, 3), (33, 26), (257, 2)]:
        Z = (4 * rng.standard_normal((B, C))).astype(dtype)
        P = np.full_like(Z, np.nan)
        softmax.output_activation(P, Z, output)
        np.testing.assert_allclose(P, ref.OUTPUTS[output][2](Z), **tol(dtype))
    # extreme logits: the sigmoid saturates without overflow
    Z = np.array([[1e4, -1e4, 0.0]], dtype)
    P = np.empty_like(Z)
    softmax.output_activation(P, Z, softmax.OUT_LOGISTIC)
    assert np.array_equal(P, np.array([[1.0, 0.0, 0.5]], dtype))


def test_bias_grad_and_l2(rng):
    dZ = rng.standard_normal((257, 7))
    db = np.empty(7)
    optim.bias_grad(db, dZ)
    np.testing.assert_allclose(db, dZ.sum(axis=0))
    layout = np.array([[0, 6, 2, 3], [9, 12, 3, 1]], np.int64)
    theta = rng.standard_normal(13)
    grad = np.zeros(13)
    sq = optim.add_l2(grad, theta, layout, 0.5)
    weights = np.r_[0:6, 9:12]
    assert sq == pytest.approx((theta[weights] ** 2).sum())
    expect = np.zeros(13)
    expect[weights] = 0.5 * theta[weights]
    np.testing.assert_allclose(grad, expect)  # biases carry no L2


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_step_matches_reference(rng, nesterov):
    theta, g = rng.standard_normal(33), rng.standard_normal(33)
    vel = rng.standard_normal(33)
    ref_vel = vel.copy()
    expect = ref.sgd_step([theta.copy()], [g], [ref_vel], 0.1, 0.9, nesterov)[0]
    optim.sgd_step(theta, g, vel, 0.1, 0.9, nesterov)
    np.testing.assert_allclose(theta, expect, rtol=1e-12)
    np.testing.assert_allclose(vel, ref_vel, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_steps_match_reference(rng, dtype):
    theta = rng.standard_normal(257).astype(dtype)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    rp, rm, rv = theta.astype(np.float64), np.zeros(257), np.zeros(257)
    for t in range(1, 4):
        g = rng.standard_normal(257).astype(dtype)
        optim.adam_step(theta, g, m, v, t, 1e-3, 0.9, 0.999, 1e-8)
        rp = ref.adam_step([rp], [g.astype(np.float64)], [rm], [rv], t, 1e-3)[0]
    np.testing.assert_allclose(theta, rp, **tol(dtype))


def test_generator_shuffle_and_dropout_are_seeded(rng):
    a, b = np.arange(100), np.arange(100)
    s1, s2 = np.array([7], np.uint64), np.array([7], np.uint64)
    random.shuffle(a, s1)
    random.shuffle(b, s2)
    assert np.array_equal(a, b) and not np.array_equal(a, np.arange(100))
    assert sorted(a) == list(range(100))
    H = np.ones((200, 50))
    mask = np.empty_like(H)
    random.dropout_mask(mask, H, 0.25, np.array([3], np.uint64))
    kept = mask != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(mask[kept], 1 / 0.75)
    np.testing.assert_allclose(H, mask)


def test_dropout_backward(rng):
    Z = rng.standard_normal((7, 33))
    for name, code in ACTIVATIONS.items():
        H = ref.ACTIVATIONS[name](Z)
        mask = np.where(rng.random(Z.shape) < 0.3, 0.0, 1 / 0.7)
        G = rng.standard_normal(Z.shape)
        dH = G.copy()
        act.dropout_backward(dH, H * mask, mask, code)
        np.testing.assert_allclose(dH, G * mask * ref.DERIVATIVES[name](H), atol=1e-12, err_msg=name)


@nb.njit
def _through_borrowed(a, i, value):
    # a[i] = value, and the sum of a[i + 1:], through buffers.borrowed(a) and a view of it
    b = buffers.borrowed(a)
    b[i] = value
    total = 0.0
    for x in b[i + 1:]:
        total += x
    return total


@nb.njit
def _borrowed_strided(a):
    # a view of a borrowed strided view: same elements, written back through it
    b = buffers.borrowed(a)
    v = b[1:, ::2]
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            v[i, j] += 1
    return b.shape[0], b.shape[1], b.strides[0], b.strides[1]


def test_borrowed_arrays_are_the_same_memory_shape_and_strides(rng):
    a = rng.standard_normal(10)
    want = a[4:].sum()
    assert np.isclose(_through_borrowed(a, 3, 7.0), want)
    assert a[3] == 7.0
    base = rng.standard_normal((6, 9)).astype(np.float32)
    view = base[::2, 1:]  # not contiguous: its strides must come through as they are
    before = base.copy()
    assert _borrowed_strided(view) == (view.shape[0], view.shape[1]) + view.strides
    expect = before.copy()
    expect[::2, 1:][1:, ::2] += 1
    assert np.array_equal(base, expect)
    assert _borrowed_strided(np.zeros((0, 3)))[:2] == (0, 3)  # an empty array: no elements


# ---- calls through an address (kernels.addresses): what train_batches' and full_gradient's
# parallel loops do with chunk_gradient

@nb.njit
def _scaled_rows(out, X, i, s):
    for j in range(X.shape[1]):
        out[i, j] = X[i, j] * s + i


@nb.njit
def _raises(a):
    if a[0] < 0:
        raise ValueError("negative first element")


@nb.njit
def _returns(a):
    return a[0]


@nb.njit(parallel=True)
def _rows_by_address(fn, out, X, s):
    for i in nb.prange(X.shape[0]):
        addresses.call_at(fn, (out, X, np.int64(i), s))


@nb.njit
def _call_once(fn, a):
    addresses.call_at(fn, (a,))


@nb.njit
def _call_with_wrong_types(fn, a):
    addresses.call_at(fn, (a, 1.5))


def test_a_call_through_an_address_computes_what_a_direct_call_does(rng):
    for dtype, shape in itertools.product(DTYPES, [(1, 1), (7, 3), (13, 17)]):
        X = rng.standard_normal(shape).astype(dtype)
        got, want = np.zeros_like(X), np.zeros_like(X)
        fn = addresses.address_of(_scaled_rows, (nb.typeof(got), nb.typeof(X), nb.types.int64,
                                                 nb.types.float64))
        _rows_by_address(fn, got, X, 0.5)
        for i in range(shape[0]):
            _scaled_rows(want, X, i, 0.5)
        assert np.array_equal(got, want)
        assert np.array_equal(want, (X * 0.5 + np.arange(shape[0])[:, None]).astype(dtype))
        # the same function and types: the same Address (compiled once)
        assert addresses.address_of(_scaled_rows, fn.argtypes) is fn


def test_a_call_through_an_address_checks_its_types_and_passes_exceptions_on():
    a = np.ones(3)
    fn = addresses.address_of(_raises, (nb.typeof(a),))
    _call_once(fn, a)  # no exception
    a[0] = -1.0
    with pytest.raises(ValueError, match="negative first element"):
        _call_once(fn, a)
    # arguments of other types than the function's: no compilation, never a wrong call
    with pytest.raises(nb.core.errors.TypingError, match="compiled for"):
        _call_with_wrong_types(fn, a)
    with pytest.raises(nb.core.errors.TypingError, match="compiled for"):
        _call_once(fn, a.astype(np.float32))
    with pytest.raises(TypeError, match="return nothing"):
        addresses.address_of(_returns, (nb.typeof(a),))
