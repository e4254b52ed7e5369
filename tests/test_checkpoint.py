"""Estimator checkpoints: a fit stopped after a progress chunk or an epoch and resumed from
checkpoint() ends bit-identical (weights and every epoch's loss) to one that never stopped, on
one and on two threads; the state survives numpy.savez and pickle."""
import io
import json
import pickle

import numba
import numpy as np
import pytest

from mlpfast import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::mlpfast.errors.ConvergenceWarning")


class Stop(Exception):
    pass


def data(n=900):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int), X[:, 0] * 2.0 - X[:, 2]


def stop_at(epoch, mid):
    """A callback that takes a checkpoint and stops the fit: after the first progress chunk
    past a third of `epoch` (mid) or at its end."""
    saved = {}

    def callback(est, event):
        if "state" in saved:
            return False
        if mid and event["kind"] == "chunk" and event["epoch"] == epoch and \
                event["rows_done"] > event["rows_total"] // 3:
            saved["state"] = est.checkpoint()
            raise Stop
        if event["kind"] == "epoch" and event["record"]["epoch"] == epoch:
            saved["state"] = est.checkpoint()
            raise Stop
        return False
    return callback, saved


def through_savez(state):
    buf = io.BytesIO()
    np.savez(buf, **state)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


CASES = [
    (MLPClassifier, dict(solver="adam")),
    (MLPClassifier, dict(solver="sgd", dropout=0.2, learning_rate="invscaling")),
    (MLPClassifier, dict(early_stopping=True, n_iter_no_change=50)),
    (MLPRegressor, dict(solver="sgd", learning_rate="adaptive")),
    (MLPRegressor, dict(early_stopping=True, n_iter_no_change=50)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mid", [False, True], ids=["epoch-end", "mid-epoch"])
@pytest.mark.parametrize("cls,kw", CASES, ids=[f"{c.__name__}-{'-'.join(k)}" for c, k in CASES])
def test_resume_is_bit_identical(cls, kw, mid, threads):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("one core")
    X, y_class, y_reg = data()
    y = y_class if cls is MLPClassifier else y_reg
    numba.set_num_threads(threads)
    try:
        make = lambda: cls(hidden_layer_sizes=(16,), max_iter=9, random_state=3, batch_size=16, **kw)  # noqa: E731
        whole = make().fit(X, y)
        callback, saved = stop_at(4, mid)
        with pytest.raises(Stop):
            make().fit(X, y, callback=callback)
        state = through_savez(saved["state"])
        resumed = make().resume(state, X, y)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(resumed._theta, whole._theta)
    assert resumed.loss_curve_ == whole.loss_curve_ and resumed.n_iter_ == whole.n_iter_
    if mid:
        assert json.loads(state["values"].item())["steps"] > 0


def test_the_pickled_estimator_carries_its_optimizer_state():
    X, y, _ = data()
    est = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    for a, b in zip(est.checkpoint().values(), copy.checkpoint().values()):
        assert np.array_equal(a, b)


def test_resume_refuses_other_parameters_and_a_finished_fit():
    X, y, _ = data()
    callback, saved = stop_at(2, False)
    with pytest.raises(Stop):
        MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y, callback=callback)
    with pytest.raises(ValueError, match=r"other parameters: alpha=0.5 \(checkpoint: 0.0001\)"):
        MLPClassifier((8,), max_iter=5, random_state=0, alpha=0.5).resume(saved["state"], X, y)
    done = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="finished after epoch 2; there is nothing to resume"):
        MLPClassifier((8,), max_iter=2, random_state=0).resume(done.checkpoint(), X, y)
    # more epochs than planned are allowed: max_iter may differ
    longer = MLPClassifier((8,), max_iter=7, random_state=0).resume(saved["state"], X, y)
    assert longer.n_iter_ == 7
