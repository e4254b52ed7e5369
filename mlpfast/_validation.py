"""Input checks of the estimators, with scikit-learn's error wording (its checks look for it)."""
import numbers
import warnings

import numpy as np

from .errors import data_conversion_warning


def check_random_state(seed):
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")


def feature_names(X):
    """Column names of a DataFrame when they are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    names = np.asarray(cols, dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing scipy)."""
    import sys
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def check_X(X, dtype, n_features=None, what="X", owner="this model"):
    """A C-contiguous 2-D float array of `dtype`, finite, with at least one row and column;
    or, for scipy.sparse input, a CSR matrix of `dtype` (never densified: the engines gather
    the rows of each minibatch), its stored values finite."""
    if is_sparse(X):
        return _check_sparse(X, dtype, n_features, what, owner)
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):
        # pandas' nullable columns hold pd.NA, which numpy cannot turn into a float: it
        # becomes NaN here, and is refused as NaN below (field case H9)
        try:
            X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            X = X.to_numpy()
    arr = np.asarray(X)
    if np.iscomplexobj(arr):
        raise ValueError("Complex data not supported")
    if arr.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {'scalar' if arr.ndim == 0 else f'{arr.ndim}D'} array "
            f"instead: {what}.shape={arr.shape}. Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) "
            "if it contains a single sample."
        )
    if arr.dtype.kind not in "fiub":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # keep the kind: scikit-learn's checks expect TypeError for non-scalar objects
            raise type(exc)(f"{what} holds values that are not numbers: {exc}") from None
    if arr.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    wide = arr
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "infinity or a value too large for " + str(arr.dtype)
        hint = ""
        if wide.dtype.kind == "f" and wide.dtype.itemsize > arr.dtype.itemsize and \
                np.isfinite(wide).all():
            hint = " (finite in its own dtype: scale X, or train with dtype='float64')"
        raise ValueError(f"Input {what} contains {bad}{hint}.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {owner} is expecting {n_features} "
            "features as input."
        )
    return arr


def _check_sparse(X, dtype, n_features, what, owner):
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D sparse matrix, got {X.ndim}D: {what}.shape={X.shape}.")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{what} holds values that are not real numbers ({X.dtype})")
    X = X.tocsr()  # any sparse format (COO, DOK, LIL, ...); a CSR input is not copied
    try:
        # indices within the columns, row pointers in order: compiled code trusts them
        X.check_format(full_check=True)
    except ValueError as exc:
        raise ValueError(f"{what} is a malformed sparse matrix: {exc}") from None
    if X.dtype != dtype:
        X = X.astype(dtype)
    for axis, name in ((0, "sample"), (1, "feature")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {name}(s) (shape={X.shape}) while a minimum "
                             "of 1 is required.")
    if not np.isfinite(X.data).all():
        bad = "NaN" if np.isnan(X.data).any() else "infinity or a value too large for " + str(X.dtype)
        raise ValueError(f"Input {what} contains {bad}.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but {owner} is expecting {n_features} "
                         "features as input.")
    return X


def column_or_1d(y, warn=True):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        if warn:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples, ), for example using ravel().",
                data_conversion_warning(), stacklevel=3)
        return y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    return y


def check_classification_targets(y):
    """Refuse continuous targets, as scikit-learn's classifiers do."""
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
        if np.any(y != np.round(y)):
            raise ValueError(
                "Unknown label type: continuous. Maybe you are trying to fit a classifier, "
                "which expects discrete classes on a regression target with continuous values."
            )
    elif y.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise ValueError("Input y contains NaN or None.")


def dense_targets(y):
    """y as an array: a scipy.sparse y (a multilabel indicator, say; n_samples x n_labels,
    small) is made dense."""
    return y.toarray() if is_sparse(y) else y


def check_regression_targets(y, dtype):
    y = np.asarray(dense_targets(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim not in (1, 2):
        raise ValueError(f"y should be 1d or 2d, got shape {y.shape}.")
    try:
        y64 = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y holds values that are not numbers: {exc}") from None
    if not np.isfinite(y64).all():
        raise ValueError("Input y contains NaN or infinity.")
    with np.errstate(over="ignore"):
        y = y64.astype(dtype)
    if not np.isfinite(y).all():
        raise ValueError(f"y holds values too large for {np.dtype(dtype).name} (the largest "
                         f"{float(np.abs(y64).max()):.3g}): scale y, or train with "
                         "dtype='float64'")
    return y
