"""The model file: one .npz holding weights, preprocessing, classes, configuration and versions,
readable with allow_pickle=False. Written atomically (temporary file, then rename)."""
import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from ._version import __version__
from .errors import ModelFileError
from .estimators import MLPClassifier, MLPRegressor

FORMAT = "mlpfast-model"
# 2: the stored schema of mlpfast.tabular (format 1 held the Preprocessor of mlpfast.data)
FORMAT_VERSION = 2


@contextlib.contextmanager
def replace_with(path):
    """A binary file object on a temporary file beside `path`, renamed onto `path` when the
    block ends without an error (and removed when it does not), so that a reader never sees a
    half-written file. The file gets the permissions the umask gives, as open() would."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path, write):
    """Call write(file_object) on a temporary file beside `path`, then rename it into place
    (see replace_with)."""
    with replace_with(path) as f:
        write(f)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(path, estimator, schema, theta=None, meta=None):
    """Write `estimator` (or, with theta, the same network with those weights) and its
    schema (mlpfast.tabular.schema.Schema) to `path`."""
    arrays = {f"schema_{k}": v for k, v in schema.to_arrays().items()}
    arrays.update({
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "theta": estimator._theta if theta is None else theta,
        "widths": np.asarray(estimator._widths, np.int64),
        "params": np.array(json.dumps(estimator.get_params())),
        "meta": np.array(json.dumps(meta or {})),
        "versions": np.array(json.dumps({"mlpfast": __version__, "numpy": np.__version__})),
    })
    if schema.task == "regression":
        arrays["n_targets"] = np.array(estimator.n_outputs_)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_model(path):
    """(estimator, schema, meta) from a model file or a run folder holding model.npz."""
    from .tabular.schema import Schema
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: model file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if "pickle" in str(exc):  # numpy's text would invite loading it unsafely
            raise ModelFileError(f"{path}: not an mlpfast model file") from None
        raise ModelFileError(f"{path}: not a readable mlpfast model file ({_short(exc)})") from None
    if a.get("format", np.array("")).item() != FORMAT:
        raise ModelFileError(f"{path}: not an mlpfast model file")
    if int(a["format_version"]) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer mlpfast (format "
                             f"{int(a['format_version'])}); upgrade mlpfast to read it")
    try:
        if int(a["format_version"]) == 1:
            pre = Schema.from_v1_arrays({k[4:]: v for k, v in a.items() if k.startswith("pre_")})
        else:
            pre = Schema.from_arrays({k[7:]: v for k, v in a.items() if k.startswith("schema_")})
        params = json.loads(a["params"].item())
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        cls = MLPClassifier if pre.task == "classification" else MLPRegressor
        est = cls(**params)
        est._restore(a["theta"], [int(w) for w in a["widths"]],
                     classes=np.arange(len(pre.classes)) if pre.task == "classification" else None)
        if est.n_features_in_ != pre.n_features:
            raise ValueError(f"the network takes {est.n_features_in_} features, the schema "
                             f"encodes {pre.n_features}")
        meta = json.loads(a["meta"].item())
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: the model file is damaged ({_short(exc)})") from None
    return est, pre, meta


def _short(exc):
    return " ".join(str(exc).split())[:200] or type(exc).__name__
