"""Calling a compiled kernel through its address, so that its caller's compilation does not
contain it.

Numba compiles a call between @njit functions by linking the callee's whole tree of code into
the caller and optimising and generating machine code for the linked module again, at every
level. A parallel loop adds three levels of its own (the loop body's gufunc and two wrappers
around it), so chunk_gradient's tree (gather, forward, loss, backward and their products),
called in train_batches' parallel loop, went through LLVM five times in a first fit: about a
fifth of its compilation. Called through its address instead, it is compiled once, in its own
library (cached as any kernel), and the loop body holds one indirect call.

    fn = address_of(chunk_gradient, argtypes)     # Python: compiles for argtypes, its address
    call_at(fn, (ws, c, ...))                      # in a kernel: calls it with those arguments

The address is an argument of the calling kernel (a number that holds only in this process),
never a constant in its code, so the caller is cached as usual. The argument types are part of
the Address's Numba type: a call whose arguments do not have exactly those types does not
compile (a TypingError naming both), so the call can never pass what the function was not
compiled for.
"""
import hashlib

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import NativeValue, intrinsic, models, register_model, unbox


class Address:
    """A compiled Numba function's native entry point in this process (`address`, an int) and
    the argument types it was compiled for (`argtypes`, a tuple of Numba types). Made by
    address_of; passed to a kernel, which calls it with call_at."""

    __slots__ = ("address", "argtypes", "_numba_type_")

    def __init__(self, address, argtypes):
        self.address = int(address)
        self.argtypes = tuple(argtypes)
        # what Numba's typeof returns for it, made once: a kernel call types its arguments
        # on every call, and a type of a dozen arrays is slow to make (W4 lost 8 % a step)
        self._numba_type_ = AddressType(self.argtypes)

    def __repr__(self):
        return f"Address(0x{self.address:x}, {len(self.argtypes)} arguments)"


class AddressType(types.Type):
    """Numba's type of an Address: the argument types are its identity (two Addresses with
    the same argument types have one type, whatever their function)."""

    def __init__(self, argtypes):
        self.argtypes = tuple(argtypes)
        # a short, stable name (it is mangled into the callers' symbols and cache keys)
        digest = hashlib.sha1(repr(self.argtypes).encode()).hexdigest()[:12]
        super().__init__(name=f"Address[{len(self.argtypes)}:{digest}]")

    @property
    def key(self):
        return self.argtypes


@register_model(AddressType)
class _AddressModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.IntType(64))


@unbox(AddressType)
def _unbox_address(typ, obj, c):
    attr = c.pyapi.object_getattr_string(obj, "address")
    value = c.unbox(types.int64, attr)
    c.pyapi.decref(attr)
    return NativeValue(value.value, is_error=value.is_error)


@intrinsic
def call_at(typingctx, fn, args):
    """Call the function at Address fn with the tuple args (no return value: the kernels
    called so write their results into arrays). A TypingError when args' types are not
    exactly those fn was compiled for. An exception raised in the function propagates."""
    if not isinstance(fn, AddressType) or not isinstance(args, types.BaseTuple):
        return None
    if tuple(args) != fn.argtypes:
        raise TypingError(f"call_at: called with {tuple(args)} but the function was compiled "
                          f"for {fn.argtypes}")

    def codegen(context, builder, sig, llargs):
        address, packed = llargs
        argtypes = list(fn.argtypes)
        values = [builder.extract_value(packed, i) for i in range(len(argtypes))]
        conv = context.call_conv
        fnty = conv.get_function_type(types.none, argtypes)
        callee = builder.inttoptr(address, fnty.as_pointer())
        status, _ = conv.call_function(builder, callee, types.none, argtypes, values)
        with cgutils.if_unlikely(builder, status.is_error):
            conv.return_status_propagate(builder, status)
        return context.get_dummy_value()

    return types.none(fn, args), codegen


_addresses = {}


def address_of(dispatcher, argtypes):
    """The Address of `dispatcher` (an @njit function returning nothing) compiled for
    `argtypes` (a tuple of Numba types), compiling it (or loading it from Numba's cache) the
    first time. The compiled code lives as long as the dispatcher, that is the process."""
    argtypes = tuple(argtypes)
    key = (dispatcher, argtypes)
    found = _addresses.get(key)
    if found is None:
        dispatcher.compile(argtypes)
        result = dispatcher.overloads[argtypes]
        if result.signature.return_type != types.none:
            raise TypeError(f"{dispatcher.py_func.__name__} returns "
                            f"{result.signature.return_type}: call_at calls functions that "
                            "return nothing")
        found = _addresses[key] = Address(
            result.library.get_pointer_to_function(result.fndesc.llvm_func_name), argtypes)
    return found
