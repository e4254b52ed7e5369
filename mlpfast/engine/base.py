"""What a training engine does. The CPU engine (engine.cpu) and the CUDA engine implement it.

An engine runs the numeric work of one estimator on one device. The estimator owns the host
copies of the flat buffers (theta, optimizer state) and the bookkeeping (epochs, early stopping,
learning-rate schedules); the engine owns whatever lives on the device and the scratch buffers.

    engine = Engine(spec)                       # NetSpec below
    engine.start(theta, opt1, opt2, X, y, Y, sample_weight=None)   # once per fit: bind/upload
    totals = engine.train_epoch(perm_rng, shuffle, hyper, counters, progress)
    f = engine.loss_gradient(theta, grad, alpha)  # L-BFGS: full-batch objective, grad filled
    engine.sync()                               # device -> host theta/opt state (no-op on CPU)
    out = engine.predict(theta, X)              # the output activation of spec.output

Data (start, predict, gradient):
    X              (N, F) C-contiguous array of spec.dtype, or (CPU engine) a scipy.sparse CSR
                   matrix or array, which the engine canonicalises (duplicates summed, indices
                   sorted, int64 indices; a copy only where needed) and never densifies whole
    y              (N,) int32 class indices for OUT_SOFTMAX, else empty
    Y              (N, n_outputs) spec.dtype targets for the other outputs, else (N, 0)
    sample_weight  None, or (N,) float64 >= 0 (not validated here: the estimator does)

Weights follow scikit-learn: the weighted mean loss, L2 over the sum of weights. A minibatch
whose weights sum to 0 is skipped (no update, no Adam step, nothing added to the loss; its rows
count as seen); a full batch whose weights sum to 0 gives loss 0 and a zero gradient.
"""
import time
from dataclasses import dataclass

import numpy as np

from .. import config
from ..params import make_layout


@dataclass(frozen=True)
class NetSpec:
    widths: tuple          # (n_features, hidden..., n_outputs)
    hidden: int            # activation code of the hidden layers
    output: int            # kernels.softmax.OUT_*: output activation + loss (True = softmax)
    dtype: type            # np.float32 or np.float64
    solver: int            # network.SGD or network.ADAM
    batch_size: int

    @property
    def classify(self):
        """Whether targets are class indices (softmax + categorical cross-entropy)."""
        return self.output == 1

    @property
    def widths_array(self):
        return np.asarray(self.widths, dtype=np.int64)


class Engine:
    name = "abstract"

    def __init__(self, spec):
        self.spec = spec

    def start(self, theta, opt1, opt2, X, y, Y, sample_weight=None):
        """Bind (or upload) the parameters, optimizer state and training data of one fit."""
        raise NotImplementedError

    def train_epoch(self, rng, shuffle, hyper, counters, progress=None, start=0, totals=None):
        """One pass over the data bound by start(). Returns float64 totals
        (summed loss, rows predicted right, rows). start > 0 continues an epoch that stopped
        after that many minibatches, with its totals so far (a checkpoint's resume): the
        permutation is the one it had, so there is no shuffle."""
        raise NotImplementedError

    def sync(self):
        """Bring parameters and optimizer state back into the arrays given to start()."""

    def order(self):
        """The row order of the current epoch (int64, the shuffled permutation), or None where
        the engine cannot give it (then its training cannot be checkpointed)."""
        return None

    def predict(self, theta, X):
        """(N, n_outputs) spec.dtype: the network's outputs through spec.output's activation
        (OUT_IDENTITY: raw scores; OUT_SOFTMAX: class probabilities; OUT_LOGISTIC: sigmoid;
        OUT_EXP: exp)."""
        raise NotImplementedError

    def gradient(self, theta, X, y, Y, alpha, sample_weight=None):
        """(loss, grad): scikit-learn's full-batch objective on the given data at theta and its
        gradient (flat, like theta), without an update."""
        raise NotImplementedError

    def loss_gradient(self, theta, grad, alpha):
        """scikit-learn's full-batch objective on the data bound by start() at theta (weighted
        mean loss + 0.5 * alpha * ||W||^2 / sum of weights), returned as a float, and its
        gradient written into grad (flat like theta); for L-BFGS."""
        raise NotImplementedError


def layout_of(theta, spec):
    """The (L, 4) layout of spec's network, checked against the flat buffer theta."""
    layout, size = make_layout(spec.widths)
    if size != theta.shape[0]:
        raise ValueError(f"parameter buffer has {theta.shape[0]} values, the network needs {size}")
    return layout


def run_in_chunks(n_batches, run, report, start=0):
    """run(first, last) over minibatches start..n_batches-1 in chunks, report(last) after each.

    Chunks are sized from the time the previous one took so that reports come about every
    config.PROGRESS_SECONDS without a Python round trip per minibatch (growing at most 4x)."""
    first, chunk = start, 1
    while first < n_batches:
        last = min(first + chunk, n_batches)
        t0 = time.perf_counter()
        run(first, last)
        took = time.perf_counter() - t0
        report(last)
        per_batch = took / (last - first)
        want = int(config.PROGRESS_SECONDS / max(per_batch, 1e-9))
        chunk = max(1, min(want, 4 * (last - first)))
        first = last
