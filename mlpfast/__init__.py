"""mlpfast: multi-layer perceptrons for tabular data on Numba kernels (CPU) and numba.cuda (GPU).

    from mlpfast import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=40).fit(X, y)
"""
from ._version import __version__
from .errors import (DataError, DataNote, DeviceError, MLPFastError, ModelFileError,
                     NotFittedError)
from .estimators import MLPClassifier, MLPRegressor


def load(path):
    """The Run saved in a run folder (or its model.npz) by `mlpfast train` or
    mlpfast.tabular.train: run.predict(data), run.predict_proba(data), run.evaluate(data),
    run.transform(data), where data is a CSV path or a DataFrame of raw columns.
    Raises ModelFileError for a missing, damaged or foreign model file."""
    from .tabular import load as _load
    return _load(path)


__all__ = ["MLPClassifier", "MLPRegressor", "load", "MLPFastError", "DataError", "DataNote",
           "DeviceError", "ModelFileError", "NotFittedError", "__version__"]
