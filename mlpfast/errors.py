"""Exceptions raised by mlpfast. The CLI turns each into one `Error: ...` line."""
import sys


class MLPFastError(Exception):
    """Base class of every error mlpfast raises on purpose."""


class DataError(MLPFastError, ValueError):
    """The input data cannot be used as given (bad file, column, value)."""


class ModelFileError(MLPFastError):
    """A model file is missing, corrupt, or not an mlpfast model."""


class DeviceError(MLPFastError, RuntimeError):
    """The requested compute device cannot be used here."""


class NotFittedError(MLPFastError, ValueError, AttributeError):
    """An estimator was used before fit (subclasses ValueError and AttributeError, as scikit-learn's does)."""


_sklearn_not_fitted = None


def not_fitted(message):
    """A NotFittedError that is also scikit-learn's NotFittedError when scikit-learn is loaded,
    so that sklearn.utils.validation and its checks recognise it; scikit-learn is not imported
    here for that."""
    global _sklearn_not_fitted
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError(message)
    if _sklearn_not_fitted is None:
        _sklearn_not_fitted = type("NotFittedError", (NotFittedError, sk.NotFittedError), {})
    return _sklearn_not_fitted(message)


class DataConversionWarning(UserWarning):
    """Input data had to be converted (named as scikit-learn names its warning)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at max_iter before the loss settled."""


class DataNote(UserWarning):
    """Something the CSV flow did to the data that the user should know: a column left out,
    values imputed, a separator or a task guessed. The CLI prints these on stderr."""
