"""Numba @njit kernels of the CPU engine. Each module opens with the legend of its dimensions.

Kernels only compute: they take preallocated arrays and write into them. Allocation, shape
checks and the choice of kernel live in mlpfast.engine.

Every kernel is compiled with error_model="numpy": a float division by zero gives inf/nan as
IEEE says instead of Numba's default check-and-raise, whose branch in the loop body stops LLVM
from vectorising it (Adam's update ran 10x slower with the check).
"""
