"""Names a user may choose, mapped to what the kernels understand.

The estimators validate against these dictionaries and the CLI builds its choices from their
keys, so a new activation or solver is added in one place.
"""
import numpy as np

from .kernels import activations as _act
from .kernels import network as _net

ACTIVATIONS = {
    "identity": _act.IDENTITY,
    "relu": _act.RELU,
    "tanh": _act.TANH,
    "logistic": _act.LOGISTIC,
    "leaky_relu": _act.LEAKY_RELU,
}

SOLVERS = {"sgd": _net.SGD, "adam": _net.ADAM}

LEARNING_RATES = ("constant", "invscaling", "adaptive")

DTYPES = {"float32": np.float32, "float64": np.float64}

DEVICES = ("cpu", "cuda", "auto")
