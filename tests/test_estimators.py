"""The estimators: exact steps against the reference, trajectories against scikit-learn,
determinism, the scikit-learn protocol (Pipeline, clone, GridSearchCV, check_estimator)."""
import pickle
import warnings

import numpy as np
import pytest

from mlpfast import DeviceError, MLPClassifier, MLPRegressor, params
from mlpfast import reference as ref
from mlpfast.errors import ConvergenceWarning

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network as sknn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore::mlpfast.errors.ConvergenceWarning")


def _blobs(rng, n=120, d=5, k=3):
    centers = 2.5 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def test_partial_fit_full_batch_sgd_moves_each_weight_by_minus_lr_gradient(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(6, 4), activation="tanh", solver="sgd",
                        momentum=0.0, learning_rate_init=0.05, alpha=0.01, batch_size=len(X),
                        shuffle=False, random_state=3, dtype="float64")
    clf.partial_fit(X, y, classes=[0, 1, 2])
    # the same initial weights, drawn as the estimator draws them
    theta0 = np.zeros_like(clf._theta)
    params.glorot_init(theta0, clf._layout, np.random.RandomState(3), "tanh")
    loss, dW, db = ref.gradient(params.coefs(theta0, clf._layout),
                                params.intercepts(theta0, clf._layout), X, y, "tanh", True, 0.01)
    for W1, W0, g in zip(clf.coefs_, params.coefs(theta0, clf._layout), dW):
        np.testing.assert_allclose(W1 - W0, -0.05 * g, rtol=1e-9, atol=1e-14)
    for b1, b0, g in zip(clf.intercepts_, params.intercepts(theta0, clf._layout), db):
        np.testing.assert_allclose(b1 - b0, -0.05 * g, rtol=1e-9, atol=1e-14)
    assert clf.loss_ == pytest.approx(loss, rel=1e-12)
    assert clf.n_iter_ == 1 and clf.t_ == len(X)


@pytest.mark.parametrize("solver,extra", [
    ("adam", {}),
    ("sgd", {"momentum": 0.9, "nesterovs_momentum": True, "learning_rate": "invscaling"}),
    ("sgd", {"momentum": 0.5, "nesterovs_momentum": False}),
])
def test_classifier_follows_sklearn_step_for_step(rng, solver, extra):
    # Same init (sklearn's draws), no shuffling, float64: the two libraries must take the same
    # steps, so loss curves and weights agree to rounding.
    X, y = _blobs(rng, n=150, k=4)
    common = dict(hidden_layer_sizes=(9, 5), activation="relu", solver=solver, alpha=1e-3,
                  batch_size=32, learning_rate_init=0.01, max_iter=6, shuffle=False,
                  random_state=7, tol=0.0, **extra)
    ours = MLPClassifier(dtype="float64", **common).fit(X, y)
    theirs = sknn.MLPClassifier(**common).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8, atol=1e-12)


def test_regressor_follows_sklearn_step_for_step(rng):
    X = rng.standard_normal((100, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(100)
    common = dict(hidden_layer_sizes=(8,), activation="tanh", batch_size=25, max_iter=5,
                  shuffle=False, random_state=1, tol=0.0, alpha=0.01)
    ours = MLPRegressor(dtype="float64", **common).fit(X, y)
    theirs = sknn.MLPRegressor(**common).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-12)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-9)


def test_same_seed_same_model_with_shuffle_and_dropout(rng):
    X, y = _blobs(rng, n=300)
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=5, random_state=11, dropout=0.2)
    a = MLPClassifier(**kw).fit(X, y)
    b = MLPClassifier(**kw).fit(X, y)
    assert np.array_equal(a._theta, b._theta)
    c = MLPClassifier(**{**kw, "random_state": 12}).fit(X, y)
    assert not np.array_equal(a._theta, c._theta)


def test_fitted_attributes_follow_sklearn(rng):
    X, y = _blobs(rng)
    labels = np.array(["ant", "bee", "cat"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["ant", "bee", "cat"]
    assert [c.shape for c in clf.coefs_] == [(5, 7), (7, 3)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (3,)]
    assert clf.n_layers_ == 3 and clf.n_outputs_ == 3 and clf.n_features_in_ == 5
    assert clf.out_activation_ == "softmax" and clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.validation_scores_ is None
    assert set(clf.predict(X)) <= set(clf.classes_)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-5)
    # coefs_ are views of the flat buffer: editing one changes the model
    clf.coefs_[0][0, 0] += 1.0
    assert clf._theta[params.make_layout(clf._widths)[0][0, 0]] == pytest.approx(clf.coefs_[0][0, 0])


def test_binary_classification_uses_one_logistic_output(rng):
    # as scikit-learn: one output, binary cross-entropy; predict_proba still gives both columns
    X, y = _blobs(rng, k=2)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=100, learning_rate_init=0.01,
                        random_state=0).fit(X, y == 1)
    assert clf.n_outputs_ == 1 and clf.out_activation_ == "logistic"
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert clf.score(X, y == 1) > 0.9


def test_early_stopping_keeps_the_best_validation_model(rng):
    X, y = _blobs(rng, n=400)
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, max_iter=60,
                        n_iter_no_change=3, random_state=0, learning_rate_init=0.05).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.n_iter_ < 60


def test_warm_start_and_partial_fit_continue(rng):
    # as scikit-learn >= 1.3: each fit runs up to max_iter epochs and n_iter_ counts them,
    # loss_curve_ and t_ go on across warm-started fits; partial_fit leaves n_iter_ at 1
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(7,), max_iter=2, warm_start=True, random_state=0,
                        tol=0.0, n_iter_no_change=np.inf)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\)"):
        clf.fit(X, y)
    first = clf._theta.copy()
    clf.set_params(max_iter=3)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 5 and clf.t_ == 5 * len(X)
    assert not np.array_equal(first, clf._theta)
    # warm start goes on from the weights: the same as one 5-epoch fit would not be (the
    # optimizer restarts), but a cold fit starts over
    cold = MLPClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0).fit(X, y)
    assert cold.n_iter_ == 3 and len(cold.loss_curve_) == 3
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    inc = MLPClassifier(hidden_layer_sizes=(7,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # partial_fit never warns about max_iter
        for _ in range(3):
            inc.partial_fit(X, y, classes=[0, 1, 2])
    assert inc.n_iter_ == 1 and inc.t_ == 3 * len(X) and len(inc.loss_curve_) == 3


def test_regressor_multi_output_and_float64_outputs(rng):
    X = rng.standard_normal((200, 3))
    Y = np.c_[X[:, 0] * 2, X[:, 1] - X[:, 2]]
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0,
                       learning_rate_init=0.01).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.predict(X).dtype == np.float64
    assert reg.score(X, Y) > 0.95


def test_pickle_round_trip_keeps_views_bound(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.coefs_[0][:] = 0
    assert not np.array_equal(back.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("bad,match", [
    ({"activation": "swish"}, "activation must be one of"),
    ({"solver": "newton"}, "solver must be one of"),
    ({"max_fun": 0}, "max_fun must be"),
    ({"hidden_layer_sizes": (10, 0)}, "positive integers"),
    ({"alpha": -1}, "alpha must be in"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"dtype": "float16"}, "dtype must be one of"),
    ({"device": "tpu"}, "device must be one of"),
    ({"max_iter": 0}, "max_iter must be"),
])
def test_invalid_hyperparameters_are_refused(rng, bad, match):
    X, y = _blobs(rng)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**bad).fit(X, y)


def test_device_cuda_fails_clearly_without_gpu_and_auto_falls_back(rng, monkeypatch):
    from mlpfast import engine
    monkeypatch.setattr(engine, "cuda_status", lambda: (False, "no CUDA GPU or driver was found"))
    monkeypatch.setattr(engine, "simulator_enabled", lambda: False)
    X, y = _blobs(rng)
    with pytest.raises(DeviceError, match="device 'cuda' is not usable: no CUDA GPU"):
        MLPClassifier(device="cuda", max_iter=1).fit(X, y)
    clf = MLPClassifier(device="auto", max_iter=1).fit(X, y)
    assert clf.device_ == "cpu"


def test_input_errors(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(max_iter=1)
    # one class trains, as in scikit-learn: its logistic output learns that class
    assert (clf.fit(X, np.zeros(len(X))).predict(X) == 0).all()
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clf.fit(X, rng.random(len(X)))
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        clf.fit(Xn, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but MLPClassifier is expecting 5"):
        clf.predict(X[:, :4])


def test_pipeline_clone_and_grid_search(rng):
    X, y = _blobs(rng, n=200)
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=50,
                                                         learning_rate_init=0.05, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.9
    c = clone(MLPClassifier(hidden_layer_sizes=(3,), alpha=0.5))
    assert c.get_params()["alpha"] == 0.5 and not hasattr(c, "coefs_")
    search = GridSearchCV(MLPClassifier(max_iter=30, learning_rate_init=0.05, random_state=0),
                          {"hidden_layer_sizes": [(4,), (16,)]}, cv=3).fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in [(4,), (16,)]
    assert search.best_score_ > 0.8
    assert repr(MLPClassifier(alpha=0.5)) == "MLPClassifier(alpha=0.5)"


@pytest.mark.slow
@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_check_estimator(Estimator):
    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # minibatch training with weights is not training on repeated rows (the batches
        # differ): scikit-learn runs that check with solver='lbfgs' (full batch) for its MLP,
        # and so does the test below
        results = check_estimator(Estimator(random_state=0), on_fail=None, expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": "minibatches: see the next test",
            "check_sample_weight_equivalence_on_sparse_data": "minibatches: see the next test"})
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 50


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_sample_weight_equals_repeated_rows_with_lbfgs(Estimator):
    # scikit-learn's own check, with the configuration scikit-learn uses for its MLP
    from sklearn.utils import estimator_checks as checks
    for check in (checks.check_sample_weight_equivalence_on_dense_data,
                  checks.check_sample_weight_equivalence_on_sparse_data):
        check(Estimator.__name__, Estimator(solver="lbfgs", random_state=0))


# ---- field cases of the estimators (rebuilt from public bug reports)

def test_regressor_early_stopping_fits():
    # field case H7: MLPRegressor(early_stopping=True) raised IndexError on any data size
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 3))
    est = MLPRegressor(early_stopping=True, random_state=0, max_iter=30).fit(X, X @ [1.0, -2.0, 0.5])
    assert est.best_validation_score_ > 0.9 and len(est.validation_scores_) == est.n_iter_


def test_pandas_na_in_X_is_refused_as_nan():
    # field case H9: pd.NA in a convert_dtypes() frame gave a TypeError about NAType
    import pandas as pd
    X = np.random.default_rng(0).standard_normal((60, 6))
    y = (X[:, 0] > 0).astype(int)
    frame = pd.DataFrame(X).convert_dtypes()
    frame.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier((4,), max_iter=2).fit(frame, y)
