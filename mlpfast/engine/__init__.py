"""Training engines and the choice between them."""
from ..errors import DeviceError
from .base import Engine, NetSpec
from .cpu import CPUEngine

__all__ = ["Engine", "NetSpec", "CPUEngine", "resolve_device", "make_engine", "cuda_status",
           "cuda_device", "simulator_enabled"]


def simulator_enabled():
    """Whether NUMBA_ENABLE_CUDASIM=1 made numba.cuda the CPU simulator (tests use it)."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def cuda_status():
    """(usable, reason): whether a real CUDA GPU can run kernels here, and if not, why not."""
    if simulator_enabled():
        return False, "NUMBA_ENABLE_CUDASIM=1: numba.cuda is the CPU simulator, not a GPU"
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken
        return False, f"numba.cuda cannot be imported ({exc})"
    try:
        if cuda.is_available():
            return True, "ok"
    except Exception as exc:
        return False, f"CUDA driver error ({exc})"
    return False, "no CUDA GPU or driver was found"


def cuda_device():
    """(name, (major, minor) compute capability, total bytes, free bytes) of the current GPU."""
    from numba import cuda
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
    free, total = cuda.current_context().get_memory_info()
    return name, tuple(dev.compute_capability), total, free


def resolve_device(device):
    """'cpu' or 'cuda' for a requested 'cpu' | 'cuda' | 'auto'.

    'auto' takes a real GPU when there is one; 'cuda' also runs on the CUDA simulator when the
    user asked for it with NUMBA_ENABLE_CUDASIM=1 (slow: for tests)."""
    if device == "cpu":
        return "cpu"
    if device not in ("cuda", "auto"):
        raise DeviceError(f"unknown device {device!r}; choose one of 'cpu', 'cuda', 'auto'")
    usable, why = cuda_status()
    if device == "cuda" and simulator_enabled():
        usable = True
    if usable and _cuda_engine_class() is not None:
        return "cuda"
    if device == "auto":
        return "cpu"
    if usable:
        why = "the CUDA engine could not be imported"
    raise DeviceError(f"device 'cuda' is not usable: {why}; use device='cpu' or 'auto' (--device cpu)")


def _cuda_engine_class():
    try:
        from .cuda import CUDAEngine
    except ImportError:
        return None
    return CUDAEngine


def make_engine(device, spec):
    """An engine for a resolved device name."""
    if device == "cuda":
        return _cuda_engine_class()(spec)
    return CPUEngine(spec)
