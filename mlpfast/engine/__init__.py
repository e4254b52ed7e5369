"""Training engines and the choice between them."""
from ..errors import DeviceError
from .base import Engine, NetSpec
from .cpu import CPUEngine

__all__ = ["Engine", "NetSpec", "CPUEngine", "resolve_device", "make_engine", "cuda_status"]


def cuda_status():
    """(usable, reason): whether numba.cuda can run kernels here, and if not, why not."""
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


def resolve_device(device):
    """'cpu' or 'cuda' for a requested 'cpu' | 'cuda' | 'auto'."""
    if device == "cpu":
        return "cpu"
    if device not in ("cuda", "auto"):
        raise DeviceError(f"unknown device {device!r}; choose one of 'cpu', 'cuda', 'auto'")
    usable, why = cuda_status()
    if usable and _cuda_engine_class() is not None:
        return "cuda"
    if device == "auto":
        return "cpu"
    if usable:
        why = "this build of mlpfast has no CUDA engine yet"
    raise DeviceError(f"device 'cuda' is not usable: {why}; use --device cpu (or 'auto')")


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
