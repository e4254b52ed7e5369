"""Numba @njit kernels of the CPU engine. Each module opens with the legend of its dimensions.

Kernels only compute: they take preallocated arrays and write into them. Allocation, shape
checks and the choice of kernel live in mlpfast.engine.
"""
