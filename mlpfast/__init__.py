"""mlpfast: multi-layer perceptrons for tabular data on Numba kernels (CPU) and numba.cuda (GPU).

    from mlpfast import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=40).fit(X, y)
"""
from ._version import __version__
from .errors import (DataError, DataNote, DeviceError, DivergenceError, MLPFastError,
                     ModelFileError, NotFittedError)


def __getattr__(name):
    # the estimators (and Numba with them) load on first use, so that `mlpfast --version` and
    # the command line's signal handling start before the compiler is imported
    if name in ("MLPClassifier", "MLPRegressor"):
        from . import estimators
        return getattr(estimators, name)
    if name == "sweep":  # runs on dask.distributed (the dask extra)
        from .sweeps import sweep
        return sweep
    if name == "compile_kernels":  # the kernels into Numba's cache ahead of a first run
        from .compiling import compile_kernels
        return compile_kernels
    if name == "to_onnx":  # needs the onnx extra: imported only when asked for
        from .export import to_onnx
        return to_onnx
    raise AttributeError(f"module 'mlpfast' has no attribute {name!r}")


def load(path):
    """The Run saved in a run folder (or its model.npz) by `mlpfast train` or
    mlpfast.tabular.train: run.predict(data), run.predict_proba(data), run.evaluate(data),
    run.transform(data), where data is a CSV path or a DataFrame of raw columns.
    Raises ModelFileError for a missing, damaged or foreign model file."""
    from .tabular import load as _load
    return _load(path)


__all__ = ["MLPClassifier", "MLPRegressor", "compile_kernels", "load", "sweep", "to_onnx", "MLPFastError", "DataError", "DataNote",
           "DeviceError", "DivergenceError", "ModelFileError", "NotFittedError", "__version__"]
