"""Where the estimators must behave as scikit-learn's own MLPs do: base classes and tags,
verbose output, n_iter_no_change=np.inf, the optimizer's learning rate, partial_fit's
availability, assigned weights, error messages, early stopping through a diverging loss, and
output dtypes. (scikit-learn's own test file, run against mlpfast, is the wider measure.)"""
import math
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from mlpfast import DivergenceError, MLPClassifier, MLPRegressor
from mlpfast import reference as ref
from mlpfast.errors import ConvergenceWarning

sklearn = pytest.importorskip("sklearn")
from sklearn import neural_network as sknn  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # noqa: E402
from sklearn.base import is_classifier, is_regressor  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blobs(rng, n=120, d=5, k=3):
    centers = 2.5 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


# ---- 1. scikit-learn's base classes where it imports, the hand-written protocol where not

def test_estimators_are_sklearn_estimators():
    clf, reg = MLPClassifier(), MLPRegressor()
    assert isinstance(clf, BaseEstimator) and isinstance(clf, ClassifierMixin)
    assert isinstance(reg, BaseEstimator) and isinstance(reg, RegressorMixin)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "does not inherit from BaseEstimator" warning
        assert is_classifier(clf) and is_regressor(reg)
        ctags, rtags = get_tags(clf), get_tags(reg)
    # our tags on top of the mixins' (built on super()'s)
    assert ctags.estimator_type == "classifier" and ctags.classifier_tags is not None
    assert rtags.estimator_type == "regressor" and rtags.regressor_tags is not None
    assert ctags.target_tags.required and not ctags.target_tags.multi_output
    assert rtags.target_tags.multi_output and rtags.target_tags.single_output
    assert "MLPClassifier" in clf._repr_html_()
    assert repr(MLPRegressor(alpha=0.5, dtype="float64")) == "MLPRegressor(alpha=0.5, dtype='float64')"


def test_without_sklearn_the_hand_written_protocol_works(tmp_path):
    code = textwrap.dedent("""
        import pickle, sys, warnings
        sys.modules["sklearn"] = None  # scikit-learn cannot be imported
        import numpy as np
        from mlpfast import estimators
        from mlpfast import MLPClassifier, MLPRegressor
        assert not estimators.HAVE_SKLEARN
        clf = MLPClassifier(hidden_layer_sizes=(4,), alpha=0.5, max_iter=3, random_state=0)
        assert repr(clf) == "MLPClassifier(alpha=0.5, hidden_layer_sizes=(4,), max_iter=3, random_state=0)", repr(clf)
        assert clf.get_params()["alpha"] == 0.5 and len(clf.get_params()) == 27
        assert clf.set_params(alpha=0.25) is clf and clf.alpha == 0.25
        try:
            clf.set_params(nope=1)
        except ValueError as exc:
            assert "Invalid parameter 'nope'" in str(exc)
        else:
            raise AssertionError("set_params took an unknown parameter")
        assert clf._estimator_type == "classifier"
        rng = np.random.default_rng(0)
        X = rng.standard_normal((60, 3))
        y = (X[:, 0] > 0).astype(int)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(X, y)
        assert [w.category.__name__ for w in caught] == ["ConvergenceWarning"]
        assert clf.predict_proba(X).shape == (60, 2) and clf.n_iter_ == 3
        clf.partial_fit(X, y)
        back = pickle.loads(pickle.dumps(clf))
        assert np.array_equal(back.predict(X), clf.predict(X))
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        assert repr(reg) == "MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)"
        reg.fit(X, X[:, 0])
        assert reg.predict(X.astype(np.float32)).dtype == np.float32
        assert sys.modules["sklearn"] is None
        print("no-sklearn ok")
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "no-sklearn ok"


# ---- 2. verbose: scikit-learn's lines on stdout, and the logger's records

def test_verbose_prints_sklearns_lines(rng, capsys, caplog):
    X, y = _blobs(rng)
    quiet = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        quiet.fit(X, y)
    assert capsys.readouterr().out == ""

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0, verbose=2,
                        tol=10.0, n_iter_no_change=2)
    with caplog.at_level("INFO", logger="mlpfast"):
        clf.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    # tol=10: no epoch improves, so the 4th (count 3 > 2) stops the fit
    assert lines == ["Iteration %d, loss = %.8f" % (i + 1, loss)
                     for i, loss in enumerate(clf.loss_curve_)] + [
        "Training loss did not improve more than tol=10.000000 for 2 consecutive epochs. "
        "Stopping."]
    assert clf.n_iter_ == 4
    assert [r.getMessage() for r in caplog.records if r.name == "mlpfast"] == lines


def test_verbose_early_stopping_and_adaptive_lines(rng, capsys):
    X, y = _blobs(rng, n=200)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0, verbose=True,
                        early_stopping=True, tol=10.0, n_iter_no_change=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    expected = []
    for i, (loss, score) in enumerate(zip(clf.loss_curve_, clf.validation_scores_)):
        expected += ["Iteration %d, loss = %.8f" % (i + 1, loss), "Validation score: %f" % score]
    expected.append("Validation score did not improve more than tol=10.000000 for 1 "
                    "consecutive epochs. Stopping.")
    assert lines == expected and clf.n_iter_ == 3  # the first epoch improves on -inf

    sgd = MLPClassifier(hidden_layer_sizes=(5,), max_iter=4, random_state=0, verbose=1,
                        solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                        tol=10.0, n_iter_no_change=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd.fit(X, y)
    out = capsys.readouterr().out
    assert ("Training loss did not improve more than tol=10.000000 for 1 consecutive epochs. "
            "Setting learning rate to 0.020000") in out.splitlines()
    assert sgd._optimizer.learning_rate == pytest.approx(0.1 / 5)


# ---- 3. n_iter_no_change: any real > 0, np.inf included

def test_n_iter_no_change_inf_never_stops_on_a_plateau(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=6, tol=1e9, random_state=0,
                        n_iter_no_change=np.inf)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        clf.fit(X, y)
    assert clf.n_iter_ == 6 and clf._no_improvement_count == 5
    for bad in (0, -1, np.nan, "10", None):
        with pytest.raises(ValueError, match="n_iter_no_change must be"):
            MLPClassifier(n_iter_no_change=bad).fit(X, y)


# ---- 5. the optimizer's learning rate

def test_optimizer_learning_rate_as_sklearn(rng):
    X = [[3, 2], [1, 6], [5, 6], [-2, -4]]
    y = [1, 1, 1, 0]
    assert not hasattr(MLPClassifier(), "_optimizer")
    for schedule in ("invscaling", "constant"):
        mlp = MLPClassifier(solver="sgd", hidden_layer_sizes=4, learning_rate=schedule,
                            max_iter=1, power_t=0.25, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, y)
            first = mlp._optimizer.learning_rate
            mlp.fit(X, y)
        expected = 0.001 / (8 + 1) ** 0.25 if schedule == "invscaling" else 0.001
        assert mlp._optimizer.learning_rate == pytest.approx(expected, rel=1e-15)
        assert first == pytest.approx(0.001 / (4 + 1) ** 0.25 if schedule == "invscaling"
                                      else 0.001, rel=1e-15)
    with pytest.raises(AttributeError):
        mlp._optimizer.learning_rate = 1.0
    # Adam's: the bias-corrected step size after t steps, as sklearn's AdamOptimizer reports
    Xb, yb = _blobs(rng, n=90)
    common = dict(hidden_layer_sizes=(4,), batch_size=20, max_iter=3, random_state=0,
                  learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPClassifier(**common).fit(Xb, yb)
        theirs = sknn.MLPClassifier(**common).fit(Xb, yb)
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate,
                                                          rel=1e-12)


# ---- 6. partial_fit: not an attribute with lbfgs, refused with early stopping

def test_partial_fit_availability_and_early_stopping(rng):
    for Est in (MLPClassifier, MLPRegressor):
        assert not hasattr(Est(solver="lbfgs"), "partial_fit")
        assert hasattr(Est(solver="sgd"), "partial_fit") and hasattr(Est(), "partial_fit")
        assert not hasattr(Est().set_params(solver="lbfgs"), "partial_fit")
        assert callable(Est.partial_fit)  # the class keeps it (for docs and introspection)
    X, y = _blobs(rng)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    reg = MLPRegressor(early_stopping=True, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X[:, 0])
    before = reg._theta.copy()
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        reg.partial_fit(X, X[:, 0])
    assert np.array_equal(before, reg._theta)


# ---- 7. assigned coefs_ / intercepts_

def test_assigned_weights_are_trained_from(rng):
    # sklearn's test_fit pattern, on a 3-class softmax network worked out with the reference
    X = np.array([[0.6, 0.8, 0.7], [0.1, -0.5, 0.3], [-0.2, 0.4, 0.9], [0.3, 0.3, -0.6]])
    y = np.array([0, 2, 1, 2])
    W = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]),
         np.array([[0.1, -0.3, 0.2], [0.2, 0.4, -0.1]])]
    b = [np.array([0.1, 0.1]), np.array([1.0, -0.5, 0.0])]
    mlp = MLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
                        random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0,
                        dtype="float64", shuffle=False, batch_size=4)
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    held = mlp.coefs_
    for i in range(2):
        mlp.coefs_[i] = W[i].copy()
        mlp.intercepts_[i] = b[i].copy()
    mlp.n_features_in_ = 3
    mlp.n_iter_ = 0
    mlp.t_ = 0
    mlp.best_loss_ = np.inf
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp.partial_fit(X, y, classes=[0, 1, 2])
    loss, dW, db = ref.gradient(W, b, X, y, "logistic", True, 0.1)
    assert mlp.coefs_ is held  # the list assigned, now showing the trained weights
    for got, w0, g in zip(mlp.coefs_ + mlp.intercepts_, W + b, dW + db):
        np.testing.assert_allclose(got, w0 - 0.1 * g, rtol=1e-12, atol=1e-15)
    assert mlp.loss_curve_ == [pytest.approx(loss, rel=1e-12)] and mlp.n_iter_ == 1
    assert mlp.n_layers_ == 3 and mlp.n_outputs_ == 3 and mlp.out_activation_ == "softmax"
    proba = ref.softmax(ref.forward(mlp.coefs_, mlp.intercepts_, X, "logistic")[-1])
    np.testing.assert_allclose(mlp.predict_proba(X), proba, rtol=1e-12)

    # on a fitted model: an item replaced is what the model predicts with
    mlp.coefs_[1] = np.zeros((2, 3))
    mlp.intercepts_[1] = np.array([0.0, 5.0, 0.0])
    assert (mlp.predict(X) == 1).all()
    assert np.array_equal(pickle.loads(pickle.dumps(mlp)).predict(X), mlp.predict(X))
    # and a whole new list, then trained on with warm_start
    mlp.coefs_ = [w.copy() for w in W]
    mlp.intercepts_ = [c.copy() for c in b]
    np.testing.assert_allclose(mlp.predict_proba(X), ref.softmax(
        ref.forward(W, b, X, "logistic")[-1]), rtol=1e-12)
    mlp.set_params(warm_start=True, max_iter=2, n_iter_no_change=np.inf)
    with pytest.warns(ConvergenceWarning):
        mlp.fit(X, y)
    assert mlp.n_iter_ == 2 and len(mlp.loss_curve_) == 3
    assert mlp.loss_curve_[1] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("change,match", [
    (lambda m: m.coefs_.__setitem__(1, np.zeros((3, 3))),
     r"coefs_\[1\] has shape \(3, 3\): its 3 rows must match the 2 columns of coefs_\[0\]"),
    (lambda m: m.intercepts_.__setitem__(0, np.zeros(3)),
     r"intercepts_\[0\] has shape \(3,\); coefs_\[0\] \(shape \(3, 2\)\) needs \(2,\)"),
    (lambda m: m.coefs_.__setitem__(0, np.full((3, 2), np.nan)), r"coefs_\[0\] holds NaN"),
    (lambda m: m.coefs_.__setitem__(0, 0), r"coefs_\[0\] must be a 2-D array"),
    (lambda m: (m.coefs_.__setitem__(1, np.zeros((2, 1))),
                m.intercepts_.__setitem__(1, np.zeros(1))),
     r"coefs_\[1\] has 1 output\(s\); the output layer needs 3"),
    (lambda m: setattr(m, "n_features_in_", 4), r"coefs_\[0\] has 3 rows, but n_features_in_ is 4"),
    (lambda m: setattr(m, "intercepts_", [np.zeros(2)]), r"coefs_ has 2 layer\(s\) and intercepts_ 1"),
])
def test_assigned_weights_are_checked(change, match):
    X = np.zeros((4, 3))
    y = np.array([0, 1, 2, 0])
    mlp = MLPClassifier(solver="sgd", hidden_layer_sizes=2)
    mlp.coefs_ = [np.zeros((3, 2)), np.zeros((2, 3))]
    mlp.intercepts_ = [np.zeros(2), np.zeros(3)]
    change(mlp)
    with pytest.raises(ValueError, match=match):
        mlp.partial_fit(X, y, classes=[0, 1, 2])


def test_assigned_weights_with_classes_set_by_hand_and_a_retry():
    X = np.array([[0.6, 0.8, 0.7], [0.1, -0.5, 0.3], [-0.2, 0.4, 0.9], [0.3, 0.3, -0.6]])
    y = np.array(["a", "c", "b", "c"])
    mlp = MLPClassifier(solver="sgd", hidden_layer_sizes=2, dtype="float64")
    mlp.coefs_ = [np.full((3, 2), 0.1), np.full((2, 3), 0.2)]
    mlp.intercepts_ = [np.zeros(2), np.zeros(3)]
    with pytest.raises(ValueError, match="classes must be passed"):
        mlp.partial_fit(X, y)
    mlp.classes_ = ["a", "b", "c"]  # or by hand, as a list: then classes= is not needed
    mlp.partial_fit(X, y)
    assert list(mlp.classes_) == ["a", "b", "c"] and mlp.n_iter_ == 1
    assert set(mlp.predict(X)) <= {"a", "b", "c"} and len(mlp.loss_curve_) == 1


def test_assigned_weights_of_a_fitted_model_keep_its_shapes(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    before = clf._theta.copy()
    clf.coefs_[0], clf.intercepts_[0], clf.coefs_[1] = np.zeros((5, 6)), np.zeros(6), np.zeros((6, 3))
    with pytest.raises(ValueError, match=r"coefs_\[0\] has shape \(5, 6\), the fitted "
                                         r"network's layer 0 is \(5, 4\)"):
        clf.predict(X)
    clf.coefs_[0], clf.intercepts_[0], clf.coefs_[1] = np.zeros((5, 4)), np.zeros(4), np.zeros((4, 3))
    clf.predict(X)
    assert (clf._theta != before).any() and not clf.coefs_[0].any()
    # a cold fit starts over whatever was assigned
    clf.coefs_[0] = "junk"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.coefs_[0].shape == (5, 4)


# ---- 8. errors as scikit-learn's for the same misuse

def test_score_refuses_labels_of_another_kind(rng):
    X, y = _blobs(rng)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    with pytest.raises(ValueError, match=r"Mix of label input types \(string and number\)"):
        clf.score(X, np.array(["a", "b", "c"])[y])
    assert 0.0 <= clf.score(X, y) <= 1.0


def test_early_stopping_split_errors():
    X = [[1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]
    with pytest.raises(ValueError, match=re.escape(
            "The least populated classes in y have only 1 member, which is too few. The "
            "minimum number of members in any class cannot be less than 2. Classes with too "
            "few members are: ['b', 'c']")):
        MLPClassifier(early_stopping=True).fit(X, ["a", "a", "a", "b", "c"])
    with pytest.raises(ValueError, match=re.escape(
            "The validation set is too small. Increase 'validation_fraction' or the size of "
            "your dataset.")):
        MLPRegressor(early_stopping=True).fit(X, [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPClassifier(early_stopping=True).fit(X[:4], [0, 0, 1, 1])


# ---- 9. early stopping through a diverging loss

@pytest.mark.parametrize("watched", [False, True], ids=["epochs", "chunks"])
def test_early_stopping_survives_a_diverging_loss(watched):
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=100, activation="identity", solver="sgd",
              learning_rate_init=1, max_iter=20, early_stopping=True, random_state=0)
    callback = (lambda est, event: False) if watched else None
    with pytest.warns(ConvergenceWarning, match=r"Training diverged at epoch (\d+)") as caught:
        mlp = MLPRegressor(**kw).fit(X, y, callback=callback)
    epoch = int(re.search(r"epoch (\d+)", str(caught[0].message)).group(1))
    assert epoch == mlp.n_iter_ == len(mlp.validation_scores_) < 20
    last = mlp.validation_scores_[-1]
    assert type(last) is float and math.isnan(last) and str(last) == str(np.nan)
    assert mlp.best_validation_score_ == np.nanmax(mlp.validation_scores_)
    best = mlp.validation_scores_.index(mlp.best_validation_score_)
    assert np.isfinite(mlp.predict(X)).all()
    # the weights kept are those of the best epoch: a fit stopped there ends with the same
    again = MLPRegressor(**{**kw, "max_iter": best + 1, "n_iter_no_change": np.inf})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again.fit(X, y)
    assert np.array_equal(again._theta, mlp._theta)
    # without early stopping the divergence is an error
    with pytest.raises(DivergenceError):
        MLPRegressor(**{**kw, "early_stopping": False}).fit(X, y, callback=callback)


def test_a_diverged_epoch_is_recorded_like_any_other():
    # readers of history_ (the CLI's progress line) find every field in the diverged epoch
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier(hidden_layer_sizes=100, activation="identity", solver="sgd",
                        learning_rate_init=100, max_iter=20, early_stopping=True,
                        random_state=0)
    with pytest.warns(ConvergenceWarning, match="Training diverged at epoch"):
        clf.fit(X, y)
    assert clf.history_[-1].keys() == clf.history_[0].keys()
    assert math.isnan(clf.history_[-1]["val_score"]) and math.isnan(clf.loss_curve_[-1])
    assert len(clf.loss_curve_) == len(clf.validation_scores_) == clf.n_iter_ < 20


def test_early_stopping_raises_when_no_epoch_is_finite():
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    with pytest.raises(DivergenceError, match="training diverged at epoch"):
        MLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                     learning_rate_init=1, max_iter=20, early_stopping=True,
                     random_state=0).fit(X * 1e15, y)


# ---- 10. early stopping's scoring does not warn about feature names

@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_early_stopping_with_a_dataframe_does_not_warn(Est):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(40, 2), columns=["colname_a", "colname_b"])
    y = pd.Series((X["colname_a"] > 0).astype(int), name="colname_y")
    model = Est(early_stopping=True, validation_fraction=0.2, max_iter=5,
                n_iter_no_change=np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
        model.predict(X)
    assert list(model.feature_names_in_) == ["colname_a", "colname_b"]
    assert len(model.validation_scores_) == 5


# ---- 11. outputs as scikit-learn's

def test_probabilities_in_float64_and_regression_in_X_dtype(rng):
    X, y = _blobs(rng, n=150, k=4)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.05,
                        random_state=0)  # trains in float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    proba, log_proba = clf.predict_proba(X), clf.predict_log_proba(X)
    assert proba.dtype == log_proba.dtype == np.float64 and clf.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    # the softmax of the float32 network's scores, taken in float64
    scores = ref.forward(clf.coefs_, clf.intercepts_, X.astype(np.float32), "relu")[-1]
    np.testing.assert_allclose(proba, ref.softmax(scores), rtol=1e-5, atol=1e-7)

    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, X[:, 0])
    assert reg.predict(X.astype(np.float32)).dtype == np.float32
    assert reg.predict(X).dtype == np.float64
    assert reg.predict(np.round(X).astype(np.int64)).dtype == np.float64
    np.testing.assert_allclose(reg.predict(X.astype(np.float32)), reg.predict(X), rtol=1e-6)
    pd = pytest.importorskip("pandas")
    assert reg.predict(pd.DataFrame(X.astype(np.float32))).dtype == np.float32
