"""Short SIMD vectors for Numba kernels: a vector type and the few operations a GEMM needs.

Numba has no vector types and leaves LLVM's SLP vectoriser off, so a register-blocked matmul
written with scalars either keeps its accumulators in memory or reduces along K with a
horizontal sum per output. These intrinsics hand LLVM vector values directly; LLVM keeps them
in registers and emits one instruction per operation (vmovups, vbroadcastss, vfmadd231ps on
x86; split into narrower registers on targets without them, still correct).

A vector is VEC_BYTES wide: 64 bytes (`<16 x float>`, `<8 x double>`, one AVX-512 register)
when the CPU Numba compiles for has AVX-512F and is one where that was measured faster
(WIDE_CPUS), else 32 (`<8 x float>`, `<4 x double>`, one AVX register). The width is a function
of the target CPU and features Numba keys its cache on, so a cached kernel is never loaded into
a process that chose the other width; NUMBA_CPU_NAME and NUMBA_CPU_FEATURES (Numba's own
settings) change both together. Results do not depend on it: the GEMM gives every element
of C the same FMAs in the same order at either width (matmul.py).

Legend: L lanes per vector (16 float32, 8 float64 at 64 bytes; 8 and 4 at 32). Arrays are
2-D with unit stride along their second axis wherever a vector is loaded or stored; (i, j) is
the first element.
"""
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model



# the CPUs (LLVM's names) where 64-byte vectors were measured faster than 32-byte ones
WIDE_CPUS = frozenset({"znver5"})


def target_vector_bytes(features=None, cpu=None):
    """64 when the target CPU is in WIDE_CPUS and its features include +avx512f, else 32.
    Both come from Numba's target, the key it files cached kernels under (magic_tuple: the
    CPU's LLVM name, NUMBA_CPU_NAME else the host's, e.g. "znver5"; the features,
    NUMBA_CPU_FEATURES else the host's, a string like "+avx2,-avx512f,..."), so that the
    width compiled into a cached kernel is always the width of the process that loads it.

    Measured on a 2-core Zen 5 (benchmarks/RESULTS.md, "the GEMM at AVX-512 width"): W1 and
    W2 steps took 0.70x and 0.63x the time of the 32-byte GEMM's: each FMA does twice the
    work, and the 32-byte GEMM had reached the speed of 32-byte FMAs. Other CPUs with
    AVX-512 keep 32 bytes until measured: Zen 4 and Intel parts with one 512-bit FMA unit do
    no more FMA work a cycle at 64 bytes than at 32, and older Intel parts lower their clock
    while running 512-bit instructions."""
    if features is None or cpu is None:
        from numba.core.registry import cpu_target
        _, target_cpu, target_features = cpu_target.target_context.codegen().magic_tuple()
        features = target_features if features is None else features
        cpu = target_cpu if cpu is None else cpu
    return 64 if cpu in WIDE_CPUS and "+avx512f" in features.split(",") else 32


VEC_BYTES = target_vector_bytes()


def lanes_of(dtype):
    """L for a NumPy dtype (the Python-side twin of vlanes)."""
    return VEC_BYTES // np.dtype(dtype).itemsize


class Vec(types.Type):
    """L lanes of a float dtype, held as one LLVM vector value."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = VEC_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vec({dtype}x{self.lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        elt = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(elt, fe_type.lanes))


def _is_float_array(t):
    return isinstance(t, types.Array) and t.ndim == 2 and isinstance(t.dtype, types.Float)


def _suffix(t):
    # LLVM's overload suffix of a vector type: v8f32, v4f64
    return f"v{t.count}{t.element.intrinsic_name}"


def _index(context, builder, sig, args, k):
    """Argument k as an intp value."""
    return context.cast(builder, args[k], sig.args[k], types.intp)


# MLPFAST_CHECK_VECTORS=1 (a debugging switch; use a NUMBA_CACHE_DIR of its own, the cache key
# does not see it): every vector load and store checks that its row is in the array and its
# lanes within the row, and otherwise prints the array's shape and the index and aborts
CHECK = os.environ.get("MLPFAST_CHECK_VECTORS", "") == "1"


def _check(context, builder, arr, i, j, width, what):
    """Abort (printing what, the shape, i, j and width) unless 0 <= i < shape[0] and
    0 <= j and j + width <= shape[1], or width <= 0 (width: the lanes touched, intp)."""
    rows, cols = cgutils.unpack_tuple(builder, arr.shape, 2)
    zero = ir.Constant(i.type, 0)
    bad = builder.or_(builder.icmp_signed("<", i, zero), builder.icmp_signed(">=", i, rows))
    bad = builder.or_(bad, builder.icmp_signed("<", j, zero))
    bad = builder.or_(bad, builder.icmp_signed(">", builder.add(j, width), cols))
    # an access with no lanes on touches no memory
    bad = builder.and_(bad, builder.icmp_signed(">", width, zero))
    with cgutils.if_unlikely(builder, bad):
        cgutils.printf(builder, f"mlpfast: vector {what} out of bounds: shape (%zd, %zd), "
                       "i %zd, j %zd, lanes %zd\n", rows, cols, i, j, width)
        fn = cgutils.get_or_insert_function(builder.module,
                                            ir.FunctionType(ir.VoidType(), []), "abort")
        builder.call(fn, [])
        builder.unreachable()


def _ptr(context, builder, arrty, arr, i, j, vty, width=None, what="access"):
    """Pointer (to a vector of type vty) at arr[i, j]; i, j intp values. Uses the array's
    byte strides, so any view with unit stride along its second axis works. width: the lanes
    the access touches (an intp value; None: all of vty's), checked under CHECK."""
    arr = context.make_array(arrty)(context, builder, value=arr)
    if CHECK:
        lanes = ir.Constant(i.type, vty.count)
        if width is None:
            width = lanes
        width = builder.select(builder.icmp_signed("<", width, lanes), width, lanes)
        _check(context, builder, arr, i, j, width, what)
    stride_i = cgutils.unpack_tuple(builder, arr.strides, 2)[0]
    itemsize = ir.Constant(stride_i.type, arrty.dtype.bitwidth // 8)
    offset = builder.add(builder.mul(i, stride_i), builder.mul(j, itemsize))
    base = builder.ptrtoint(arr.data, offset.type)
    return builder.inttoptr(builder.add(base, offset), vty.as_pointer())


def _address(context, builder, sig, args, vty, width=None, what="access"):
    """Pointer at arr[i, j] for an intrinsic whose first three arguments are arr, i, j."""
    return _ptr(context, builder, sig.args[0], args[0], _index(context, builder, sig, args, 1),
                _index(context, builder, sig, args, 2), vty, width, what)


def _lane_mask(builder, n, lanes):
    """<lanes x i1>: lane k is on when k < n (n may be <= 0 or >= lanes)."""
    i32 = ir.IntType(32)
    vty = ir.VectorType(i32, lanes)
    n = builder.trunc(n, i32) if n.type.width > 32 else n
    n = builder.insert_element(ir.Constant(vty, ir.Undefined), n, ir.Constant(i32, 0))
    n = builder.shuffle_vector(n, n, ir.Constant(vty, [0] * lanes))
    return builder.icmp_signed("<", ir.Constant(vty, list(range(lanes))), n)


def _masked_fn(builder, name, vty):
    i32 = ir.IntType(32)
    mty = ir.VectorType(ir.IntType(1), vty.count)
    ptr = vty.as_pointer()
    if name == "load":
        fnty = ir.FunctionType(vty, [ptr, i32, mty, vty])
    else:
        fnty = ir.FunctionType(ir.VoidType(), [vty, ptr, i32, mty])
    return cgutils.get_or_insert_function(builder.module, fnty,
                                          f"llvm.masked.{name}.{_suffix(vty)}.p0")


@intrinsic
def vload(typingctx, arr, i, j):
    """arr[i, j:j+L] as a vector."""
    if not _is_float_array(arr):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        ptr = _address(context, builder, sig, args, vty, what="load")
        return builder.load(ptr, align=vt.dtype.bitwidth // 8)
    return vt(arr, i, j), codegen


@intrinsic
def vload_part(typingctx, arr, i, j, n):
    """arr[i, j:j+n] in the first n lanes (n < L), zeros after; touches nothing past j+n."""
    if not _is_float_array(arr):
        return None
    vt = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        n = _index(context, builder, sig, args, 3)
        ptr = _address(context, builder, sig, args, vty, n, "partial load")
        align = ir.Constant(ir.IntType(32), vt.dtype.bitwidth // 8)
        return builder.call(_masked_fn(builder, "load", vty),
                            [ptr, align, _lane_mask(builder, n, vt.lanes), ir.Constant(vty, None)])
    return vt(arr, i, j, n), codegen


@intrinsic
def vstore(typingctx, arr, i, j, v):
    """arr[i, j:j+L] = v."""
    if not (_is_float_array(arr) and isinstance(v, Vec) and v.dtype == arr.dtype):
        return None

    def codegen(context, builder, sig, args):
        ptr = _address(context, builder, sig, args, args[3].type, what="store")
        builder.store(args[3], ptr, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(arr, i, j, v), codegen


@intrinsic
def vstore_part(typingctx, arr, i, j, v, n):
    """arr[i, j:j+n] = the first n lanes of v (n < L); touches nothing past j+n."""
    if not (_is_float_array(arr) and isinstance(v, Vec) and v.dtype == arr.dtype):
        return None

    def codegen(context, builder, sig, args):
        vty = args[3].type
        n = _index(context, builder, sig, args, 4)
        ptr = _address(context, builder, sig, args, vty, n, "partial store")
        align = ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8)
        builder.call(_masked_fn(builder, "store", vty),
                     [args[3], ptr, align, _lane_mask(builder, n, vty.count)])
        return context.get_dummy_value()
    return types.none(arr, i, j, v, n), codegen


@intrinsic
def vsplat(typingctx, x, like):
    """x in every lane of a vector of like's dtype (like: an array)."""
    if not _is_float_array(like):
        return None
    vt = Vec(like.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        i32 = ir.IntType(32)
        x = context.cast(builder, args[0], sig.args[0], vt.dtype)
        v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(i32, 0))
        return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, vt.lanes),
                                                        [0] * vt.lanes))
    return vt(x, like), codegen


@intrinsic
def vzero(typingctx, like):
    """A vector of zeros of like's dtype (like: an array)."""
    if not _is_float_array(like):
        return None
    vt = Vec(like.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vt), None)
    return vt(like), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c per lane, fused where the target has FMA (llvm.fmuladd)."""
    if not (isinstance(a, Vec) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                            f"llvm.fmuladd.{_suffix(vty)}")
        return builder.call(fn, args)
    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """a + b per lane."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return a(a, b), codegen


@intrinsic
def vrelu(typingctx, a):
    """a if a > 0 else 0, per lane: the same choice as activations.apply_activation's relu."""
    if not isinstance(a, Vec):
        return None

    def codegen(context, builder, sig, args):
        zero = ir.Constant(args[0].type, None)
        return builder.select(builder.fcmp_ordered(">", args[0], zero), args[0], zero)
    return a(a), codegen


@intrinsic
def vtranspose(typingctx, dst, di, dj, src, si, sj):
    """dst[di + c, dj + r] = src[si + r, sj + c] for r, c < L: an L x L block transposed in
    registers (L vector loads, log2(L) rounds of L interleaves, L vector stores)."""
    if not (_is_float_array(dst) and _is_float_array(src) and dst.dtype == src.dtype):
        return None
    vt = Vec(src.dtype)
    L = vt.lanes

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        itemsize = vt.dtype.bitwidth // 8
        di, dj, si, sj = (_index(context, builder, sig, args, k) for k in (1, 2, 4, 5))
        one = ir.Constant(di.type, 1)
        rows = []
        for r in range(L):
            ptr = _ptr(context, builder, sig.args[3], args[3], si, sj, vty, what="transpose load")
            rows.append(builder.load(ptr, align=itemsize))
            si = builder.add(si, one)
        # one round: new[2i] = interleave of the first halves of rows i and i + L/2, new[2i+1]
        # of their second halves; log2(L) rounds make the transpose
        half = L // 2
        i32 = ir.IntType(32)
        lo = ir.Constant(ir.VectorType(i32, L), [x for k in range(half) for x in (k, L + k)])
        hi = ir.Constant(ir.VectorType(i32, L),
                         [x for k in range(half, L) for x in (k, L + k)])
        for _ in range(L.bit_length() - 1):
            new = []
            for i in range(half):
                new.append(builder.shuffle_vector(rows[i], rows[i + half], lo))
                new.append(builder.shuffle_vector(rows[i], rows[i + half], hi))
            rows = new
        for c in range(L):
            ptr = _ptr(context, builder, sig.args[0], args[0], di, dj, vty, what="transpose store")
            builder.store(rows[c], ptr, align=itemsize)
            di = builder.add(di, one)
        return context.get_dummy_value()
    return types.none(dst, di, dj, src, si, sj), codegen


@intrinsic
def vlanes(typingctx, like):
    """L for like's dtype (like: an array), a compile-time constant."""
    if not _is_float_array(like):
        return None
    lanes = Vec(like.dtype).lanes

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(types.intp), lanes)
    return types.intp(like), codegen


@intrinsic
def prefetch(typingctx, arr, i):
    """A hint that arr[i] (1-D arr) will be read soon: LLVM's llvm.prefetch (read, into every
    cache level). It loads nothing into the program and changes no result."""
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(i, types.Integer)):
        return None
    sig = types.void(arr, i)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary,
                                       [_index(context, builder, sig, args, 1)],
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        # read (0), keep in every level (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return sig, codegen
