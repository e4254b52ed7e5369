"""What a training engine does. The CPU engine (engine.cpu) and the CUDA engine implement it.

An engine runs the numeric work of one estimator on one device. The estimator owns the host
copies of the flat buffers (theta, optimizer state) and the bookkeeping (epochs, early stopping,
learning-rate schedules); the engine owns whatever lives on the device and the scratch buffers.

    engine = Engine(spec)                       # NetSpec below
    engine.start(theta, opt1, opt2, X, y, Y)    # once per fit: bind or upload
    totals = engine.train_epoch(perm_rng, shuffle, hyper, counters, progress)
    engine.sync()                               # device -> host theta/opt state (no-op on CPU)
    out = engine.predict(theta, X)              # probabilities or regression values
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NetSpec:
    widths: tuple          # (n_features, hidden..., n_outputs)
    hidden: int            # activation code of the hidden layers
    classify: bool         # softmax + cross-entropy, else identity + squared error
    dtype: type            # np.float32 or np.float64
    solver: int            # network.SGD or network.ADAM
    batch_size: int

    @property
    def widths_array(self):
        return np.asarray(self.widths, dtype=np.int64)


class Engine:
    name = "abstract"

    def __init__(self, spec):
        self.spec = spec

    def start(self, theta, opt1, opt2, X, y, Y):
        raise NotImplementedError

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None):
        """One pass over the data bound by start(). Returns float64 totals
        (summed loss, rows predicted right, rows)."""
        raise NotImplementedError

    def sync(self):
        """Bring parameters and optimizer state back into the arrays given to start()."""

    def predict(self, theta, X):
        raise NotImplementedError
