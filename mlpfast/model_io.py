"""The model file: one .npz holding weights, preprocessing, classes, configuration and versions,
readable with allow_pickle=False. Written atomically (temporary file, then rename)."""
import contextlib
import json
import os
import stat
import tempfile
import zipfile

import numpy as np

from ._version import __version__
from .errors import ModelFileError
from .estimators import MLPClassifier, MLPRegressor

FORMAT = "mlpfast-model"
# 2: the stored schema of mlpfast.tabular (format 1 held the Preprocessor of mlpfast.data)
# 3: the output activation is stored (binary classifiers have one logistic output since 3;
#    files of format 1 and 2 hold softmax classifiers and identity regressors)
FORMAT_VERSION = 3
OUT_ACTIVATIONS = ("softmax", "logistic", "identity", "exp")


@contextlib.contextmanager
def replace_with(path):
    """A binary file object on a temporary file beside `path`, renamed onto `path` when the
    block ends without an error (and removed when it does not), so that a reader never sees a
    half-written file. A new file gets the permissions the umask gives, as open() would; a
    replaced one keeps its own. An existing device or FIFO is written through instead."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        # a device or a FIFO (/dev/null, a pipe): written through, as a stream; a rename would
        # replace the device itself with a regular file
        with open(path, "wb") as f:
            yield f
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            # a replaced file keeps its permissions (a private file stays private); a new one
            # gets the umask's
            mode = (stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path)
                    else 0o666 & ~_umask())
            os.fchmod(f.fileno(), mode)
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
        "out_activation": np.array(estimator.out_activation_),
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
        check_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
    except ModelFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a readable mlpfast model file ({_short(exc)})") from None
    if a.get("format", np.array("")).item() != FORMAT:
        raise ModelFileError(f"{path}: not an mlpfast model file")
    version = a.get("format_version")
    if version is None or version.dtype.kind not in "iu" or version.ndim != 0:
        raise ModelFileError(f"{path}: the model file is damaged (field 'format_version' is "
                             f"{getattr(version, 'dtype', None)})")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: written by a newer mlpfast (format "
                             f"{int(a['format_version'])}); upgrade mlpfast to read it")
    try:
        _check_fields(a)
        if int(a["format_version"]) == 1:
            pre = Schema.from_v1_arrays({k[4:]: v for k, v in a.items() if k.startswith("pre_")})
        else:
            pre = Schema.from_arrays({k[7:]: v for k, v in a.items() if k.startswith("schema_")})
        params = json.loads(a["params"].item())
        if isinstance(params.get("hidden_layer_sizes"), list):
            params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        cls = MLPClassifier if pre.task == "classification" else MLPRegressor
        out = (a["out_activation"].item() if "out_activation" in a else
               "softmax" if pre.task == "classification" else "identity")
        if out not in OUT_ACTIVATIONS:
            raise ValueError(f"output activation {out!r}")
        est = cls(**params)
        est._restore(a["theta"], [int(w) for w in a["widths"]],
                     classes=np.arange(len(pre.classes)) if pre.task == "classification" else None,
                     out_activation=out)
        if est.n_features_in_ != pre.n_features:
            raise ValueError(f"the network takes {est.n_features_in_} features, the schema "
                             f"encodes {pre.n_features}")
        if pre.task == "classification" and est.n_outputs_ != (
                1 if out == "logistic" else len(pre.classes)):
            raise ValueError(f"the network has {est.n_outputs_} outputs for "
                             f"{len(pre.classes)} classes")
        meta = json.loads(a["meta"].item())
    except (KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: the model file is damaged ({_short(exc)})") from None
    return est, pre, meta


# the most a model file may unpack to, whatever its members declare: far above any MLP this
# package trains (W3's 1024-wide layers take 12 MB), far below what would exhaust memory
MAX_MODEL_BYTES = 2 << 30


def check_sizes(path, limit=MAX_MODEL_BYTES):
    """Read each member's .npy header (not its data) and refuse a file whose arrays declare
    more bytes than the member holds or, together, more than `limit`: a small file cannot
    make load_model allocate gigabytes. Object arrays are refused too."""
    total = 0
    declared = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            with z.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(f, max_header_size=10000)
            if dtype.hasobject:
                raise ModelFileError(f"{path}: member {info.filename} holds Python objects; "
                                     "not an mlpfast model file")
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            declared[info.filename] = shape
            if size > info.file_size:
                raise ModelFileError(f"{path}: the model file is damaged (member "
                                     f"{info.filename} declares {size:,} bytes and holds "
                                     f"{info.file_size:,})")
            total += info.file_size
            if total > limit:
                raise ModelFileError(f"{path}: unpacks to more than {limit / 2**30:.0f} GiB; "
                                     "not an mlpfast model file")
        # the weights' size follows from the layer widths (a small array): check it before
        # the weights are read
        if "widths.npy" in declared and "theta.npy" in declared and len(declared["widths.npy"]) == 1:
            with z.open("widths.npy") as f:
                widths = np.lib.format.read_array(f, allow_pickle=False)
            if widths.dtype.kind in "iu" and len(widths) >= 2 and (widths >= 1).all() and \
                    widths.max() < 2 ** 31:
                from .params import make_layout
                need = make_layout([int(w) for w in widths])[1]
                if declared["theta.npy"] != (need,):
                    raise ModelFileError(f"{path}: the model file is damaged ({declared['theta.npy']} "
                                         f"weights declared for a network that needs {need})")


# name: (dtype kinds allowed, number of dimensions)
_FIELDS = {"theta": ("f", 1), "widths": ("iu", 1), "format_version": ("iu", 0),
           "params": ("U", 0), "meta": ("U", 0)}
# fields that files of older formats lack
_OPTIONAL_FIELDS = {"out_activation": ("U", 0)}


def _check_fields(a):
    """Every field the loader reads has its kind and shape, and the weights are finite."""
    for name, (kinds, ndim) in _FIELDS.items():
        if name not in a:
            raise ValueError(f"no field {name!r}")
        v = a[name]
        if v.dtype.kind not in kinds or v.ndim != ndim:
            raise ValueError(f"field {name!r} is {v.dtype} with {v.ndim} dimension(s)")
    for name, (kinds, ndim) in _OPTIONAL_FIELDS.items():
        v = a.get(name)
        if v is not None and (v.dtype.kind not in kinds or v.ndim != ndim):
            raise ValueError(f"field {name!r} is {v.dtype} with {v.ndim} dimension(s)")
    theta = a["theta"]
    if theta.dtype not in (np.float32, np.float64):
        raise ValueError(f"weights of dtype {theta.dtype}; mlpfast writes float32 or float64")
    if not np.isfinite(theta).all():
        raise ValueError("the weights hold non-finite values")
    widths = a["widths"]
    if len(widths) < 2 or (widths < 1).any():
        raise ValueError(f"layer widths {widths.tolist()}")


def _short(exc):
    return " ".join(str(exc).split())[:200] or type(exc).__name__
