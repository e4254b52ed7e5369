import os
import pathlib

# The CUDA kernels are tested on the CUDA simulator here (tests/test_cuda_sim.py). numba reads
# this when it is first imported, so it is set before any test module imports mlpfast. The
# simulator never serves device='auto'; on a GPU machine run the real-GPU module with
# NUMBA_ENABLE_CUDASIM=0 (see tests/test_cuda_gpu.py).
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATASETS = ROOT / "datasets"

# Shapes that do not divide the register blocks (6 rows, 16 or 8 columns): 1, 7, 33, 257.
ODD = (1, 7, 33, 257)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def tol(dtype):
    """rtol/atol for comparing a kernel in `dtype` with the float64 reference."""
    return dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def fit_on_threads(threads, **kw):
    """A small MLPClassifier fit (1500 x 20, 3 epochs, random_state 0) on `threads` Numba
    threads, the count restored after: the thread-count tests' common fit."""
    import numba

    from mlpfast import MLPClassifier
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1500, 20)).astype(np.float32)
    y = (X[:, :3] @ rng.standard_normal(3) > 0).astype(int) + (X[:, 3] > 1)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return MLPClassifier(random_state=0, max_iter=3, tol=0, **kw).fit(X, y)
    finally:
        numba.set_num_threads(before)
