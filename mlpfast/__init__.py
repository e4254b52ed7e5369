"""mlpfast: multi-layer perceptrons for tabular data on Numba kernels (CPU) and numba.cuda (GPU).

    from mlpfast import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=40).fit(X, y)
"""
from ._version import __version__
from .errors import DataError, DeviceError, MLPFastError, ModelFileError, NotFittedError
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "MLPFastError", "DataError", "DeviceError",
           "ModelFileError", "NotFittedError", "__version__"]
