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
    """Training stopped at max_iter before the loss settled, or early stopping stopped a
    diverging fit. The estimators warn with convergence_warning(), a subclass."""


_sklearn_twins = {}


def _twin(ours, name):
    """`ours`, made also scikit-learn's warning class of that name when scikit-learn is
    loaded, so that a filter or pytest.warns on either class catches it; scikit-learn is not
    imported here for that."""
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return ours
    if name not in _sklearn_twins:
        _sklearn_twins[name] = type(name, (ours, getattr(sk, name)), {"__module__": __name__})
    return _sklearn_twins[name]


def convergence_warning():
    """The category the estimators warn with for convergence (see _twin)."""
    return _twin(ConvergenceWarning, "ConvergenceWarning")


def data_conversion_warning():
    """The category of a column-vector y's warning (see _twin)."""
    return _twin(DataConversionWarning, "DataConversionWarning")


def one_line(exc):
    """An exception's message as one line (its type's name when it has none): for the rows and
    messages that report a failure among others (a sweep's trial, a file of many)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


class DataNote(UserWarning):
    """Something the CSV flow did to the data that the user should know: a column left out,
    values imputed, a separator or a task guessed. The CLI prints these on stderr."""


class DivergenceError(MLPFastError, ValueError):
    """The training loss became non-finite. Raised in the progress chunk (or epoch) where it
    happened: epoch (1-based), step (minibatches of that epoch done when it was seen, or None),
    loss and learning_rate. The estimator keeps the epochs before it in history_."""

    def __init__(self, epoch, step, loss, learning_rate):
        self.epoch, self.step, self.loss, self.learning_rate = epoch, step, loss, learning_rate
        self.run = self.folder = None  # the mlpfast.tabular flow's Run so far, and its folder
        where = f"epoch {epoch}" + (f", by step {step}" if step else "")
        super().__init__(f"training diverged at {where} (loss {loss}); lower the learning rate "
                         f"(learning_rate_init, now {learning_rate:g})")
