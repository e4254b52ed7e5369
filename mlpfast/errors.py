"""Exceptions raised by mlpfast. The CLI turns each into one `Error: ...` line."""


class MLPFastError(Exception):
    """Base class of every error mlpfast raises on purpose."""


class DataError(MLPFastError, ValueError):
    """The input data cannot be used as given (bad file, column, value)."""


class ModelFileError(MLPFastError):
    """A model file is missing, corrupt, or not an mlpfast model."""


class DeviceError(MLPFastError, RuntimeError):
    """The requested compute device cannot be used here."""


class NotFittedError(MLPFastError, AttributeError, ValueError):
    """An estimator was used before fit (subclasses ValueError and AttributeError, as scikit-learn's does)."""


class DataConversionWarning(UserWarning):
    """Input data had to be converted (named as scikit-learn names its warning)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at max_iter before the loss settled."""
