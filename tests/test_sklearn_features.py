"""What the scikit-learn drop-in adds, each against scikit-learn step for step in float64 (same
initial draws, no shuffling): sample_weight, the logistic output (binary and multilabel), the
Poisson loss, solver='lbfgs'; and sparse X against dense X, bit for bit."""
import warnings

import numpy as np
import pytest

from mlpfast import MLPClassifier, MLPRegressor

sklearn = pytest.importorskip("sklearn")
scipy_sparse = pytest.importorskip("scipy.sparse")
from sklearn import neural_network as sknn  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore::mlpfast.errors.ConvergenceWarning")


def _blobs(rng, n=150, d=5, k=3):
    centers = 2.5 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def _same_fit(ours, theirs, X, *, curve=True, rtol=1e-9):
    if curve:
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    else:
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e3 * rtol, atol=1e-11)


STEP = dict(hidden_layer_sizes=(9, 5), activation="tanh", alpha=1e-3, batch_size=32,
            learning_rate_init=0.01, max_iter=6, shuffle=False, random_state=7, tol=0.0)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_sample_weight_follows_sklearn_step_for_step(rng, solver):
    X, y = _blobs(rng, k=4)
    w = rng.uniform(0.0, 3.0, len(y))
    w[::7] = 0.0
    ours = MLPClassifier(dtype="float64", solver=solver, **STEP).fit(X, y, sample_weight=w)
    theirs = sknn.MLPClassifier(solver=solver, **STEP).fit(X, y, sample_weight=w)
    _same_fit(ours, theirs, X)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
    Xr = rng.standard_normal((120, 4))
    yr = Xr @ [1.0, -2.0, 0.5, 0.0] + 0.1 * rng.standard_normal(120)
    ours = MLPRegressor(dtype="float64", solver=solver, **STEP).fit(Xr, yr, sample_weight=w[:120])
    theirs = sknn.MLPRegressor(solver=solver, **STEP).fit(Xr, yr, sample_weight=w[:120])
    _same_fit(ours, theirs, Xr)


def test_weight_two_equals_the_row_repeated(rng):
    X, y = _blobs(rng, n=40)
    w = np.ones(len(y))
    w[:5] = 2.0
    full = dict(STEP, batch_size="auto", solver="sgd", momentum=0.0)  # n < 200: full batch
    a = MLPClassifier(dtype="float64", **full).fit(X, y, sample_weight=w)
    b = MLPClassifier(dtype="float64", **full).fit(np.vstack([X, X[:5]]), np.r_[y, y[:5]])
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)


def test_class_weight_balanced_is_the_sample_weight_of_its_formula(rng):
    X, y = _blobs(rng, n=90)
    y[:60] = 0
    counts = np.bincount(y)
    w = (len(y) / (len(counts) * counts))[y]
    a = MLPClassifier(class_weight="balanced", **STEP).fit(X, y)
    b = MLPClassifier(**STEP).fit(X, y, sample_weight=w)
    assert np.array_equal(a._theta, b._theta)
    c = MLPClassifier(class_weight={0: 0.5, 2: 3.0}, **STEP).fit(X, y)
    d = MLPClassifier(**STEP).fit(X, y, sample_weight=np.array([0.5, 1.0, 3.0])[y])
    assert np.array_equal(c._theta, d._theta)
    with pytest.raises(ValueError, match="7"):
        MLPClassifier(class_weight={7: 1.0}).fit(X, y)


@pytest.mark.parametrize("bad,match", [
    (lambda n: -np.ones(n), "negative"),
    (lambda n: np.full(n, np.nan), "NaN|finite"),
    (lambda n: np.zeros(n), "zero|0"),
    (lambda n: np.ones(n - 1), "sample_weight"),
])
def test_bad_sample_weights_are_refused(rng, bad, match):
    X, y = _blobs(rng, n=30)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=bad(len(y)))


def test_binary_uses_one_logistic_output_as_sklearn(rng):
    X, y = _blobs(rng, k=2)
    labels = np.array(["no", "yes"])[y]
    ours = MLPClassifier(dtype="float64", solver="adam", **STEP).fit(X, labels)
    theirs = sknn.MLPClassifier(solver="adam", **STEP).fit(X, labels)
    assert ours.n_outputs_ == 1 and ours.out_activation_ == "logistic"
    _same_fit(ours, theirs, X)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
    assert (ours.predict(X) == theirs.predict(X)).all()


def test_multilabel_follows_sklearn_step_for_step(rng):
    X = rng.standard_normal((120, 6))
    Y = (X[:, :3] + 0.3 * rng.standard_normal((120, 3)) > 0).astype(int)
    ours = MLPClassifier(dtype="float64", solver="adam", **STEP).fit(X, Y)
    theirs = sknn.MLPClassifier(solver="adam", **STEP).fit(X, Y)
    _same_fit(ours, theirs, X)
    proba = ours.predict_proba(X)
    np.testing.assert_allclose(proba, theirs.predict_proba(X), rtol=1e-8)
    assert ours.predict(X).shape == Y.shape and set(np.unique(ours.predict(X))) <= {0, 1}
    assert ours.score(X, Y) == pytest.approx(theirs.score(X, Y))


def test_poisson_follows_sklearn_step_for_step(rng):
    X = rng.uniform(0, 1, (150, 3))
    y = rng.poisson(np.exp(X @ [1.0, -0.5, 0.3]))
    ours = MLPRegressor(dtype="float64", loss="poisson", solver="adam", **STEP).fit(X, y)
    theirs = sknn.MLPRegressor(loss="poisson", solver="adam", **STEP).fit(X, y)
    assert ours.out_activation_ == "exp"
    _same_fit(ours, theirs, X)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-8)
    with pytest.raises(ValueError, match="negative|>= 0"):
        MLPRegressor(loss="poisson").fit(X, y - 5.0)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_lbfgs_follows_sklearn(rng, task):
    if task == "regression":
        X = rng.standard_normal((80, 4))
        y = np.tanh(X @ [1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.standard_normal(80)
        make_ours, make_theirs = MLPRegressor, sknn.MLPRegressor
    else:
        X, y = _blobs(rng, n=80, k=3 if task == "multiclass" else 2)
        make_ours, make_theirs = MLPClassifier, sknn.MLPClassifier
    kw = dict(hidden_layer_sizes=(7,), activation="tanh", solver="lbfgs", alpha=1e-3,
              max_iter=15, random_state=3, tol=1e-12)
    ours = make_ours(dtype="float64", **kw).fit(X, y)
    theirs = make_theirs(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    _same_fit(ours, theirs, X, curve=False, rtol=1e-9)
    # scikit-learn keeps no loss curve for lbfgs: its fits stopped after k iterations give it
    theirs_curve = [make_theirs(**{**kw, "max_iter": k}).fit(X, y).loss_ for k in (1, 5, 10)]
    np.testing.assert_allclose([ours.loss_curve_[k - 1] for k in (1, 5, 10)], theirs_curve,
                               rtol=1e-9)


def test_lbfgs_limits_and_warnings(rng):
    X, y = _blobs(rng, n=60)
    with pytest.warns(Warning, match="lbfgs"):
        clf = MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert clf.n_iter_ <= 3
    with pytest.warns(Warning, match="lbfgs"):
        clf = MLPClassifier(solver="lbfgs", max_fun=5, random_state=0).fit(X, y)
    assert clf.n_iter_ <= 5
    assert not hasattr(clf, "partial_fit")


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_X_trains_as_dense_bit_for_bit(rng, solver):
    X, y = _blobs(rng, n=120, d=12)
    X[np.abs(X) < 1.5] = 0.0
    for make in (scipy_sparse.csr_matrix, scipy_sparse.csc_matrix):
        kw = dict(hidden_layer_sizes=(8,), max_iter=4, random_state=0, solver=solver)
        dense = MLPClassifier(**kw).fit(X, y)
        sparse = MLPClassifier(**kw).fit(make(X), y)
        assert np.array_equal(dense._theta, sparse._theta)
        assert np.array_equal(dense.predict_proba(X), sparse.predict_proba(make(X)))


def test_sparse_X_is_never_densified_whole(rng, monkeypatch):
    X = scipy_sparse.random(2000, 300, density=0.01, format="csr", random_state=0)
    y = rng.integers(0, 2, 2000)

    def refuse(*a, **k):
        raise AssertionError("the whole sparse matrix was densified")
    for cls in (scipy_sparse.csr_matrix, scipy_sparse.csr_array):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    clf.predict(X)


def test_loss_grad_lbfgs_matches_finite_differences(rng):
    # scikit-learn's private hook, which its own gradient test calls
    X, y = _blobs(rng, n=12, k=3)
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=1,
                        random_state=0).fit(X, y)
    Y = np.eye(3)[y]
    theta = np.hstack([a.ravel() for a in clf.coefs_ + clf.intercepts_]).astype(np.float64)
    loss, grad = clf._loss_grad_lbfgs(theta, X, Y, None)
    eps = 1e-6
    for i in rng.choice(len(theta), 8, replace=False):
        d = np.zeros_like(theta)
        d[i] = eps
        num = (clf._loss_grad_lbfgs(theta + d, X, Y, None)[0]
               - clf._loss_grad_lbfgs(theta - d, X, Y, None)[0]) / (2 * eps)
        assert num == pytest.approx(grad[i], rel=1e-5, abs=1e-9)


def test_verbose_prints_sklearn_lines(capsys, rng):
    X, y = _blobs(rng, n=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(max_iter=2, verbose=True, random_state=0).fit(X, y)
    assert "Iteration 1, loss = " in capsys.readouterr().out


def test_lbfgs_without_scipy_names_the_extra(rng, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    X, y = _blobs(rng, n=30)
    with pytest.raises(ImportError, match=r"pip install 'mlpfast\[lbfgs\]'"):
        MLPClassifier(solver="lbfgs", max_iter=2).fit(X, y)


# ---- hostile inputs (found by trying the drop-in as a user would): a clear error, never a
# silent answer or a crash in compiled code

def test_score_checks_its_targets_and_weights(rng):
    X = rng.standard_normal((40, 3))
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        reg.score(X, np.r_[np.nan, X[1:, 0]])
    with pytest.raises(ValueError, match="output"):
        reg.score(X, np.c_[X[:, 0], X[:, 0]])
    for bad in (np.r_[np.nan, np.ones(39)], np.zeros(40), np.ones(39)):
        with pytest.raises(ValueError, match="sample_weight"):
            reg.score(X, X[:, 0], sample_weight=bad)
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    for bad in (np.r_[np.nan, np.ones(39)], np.zeros(40), np.ones(39)):
        with pytest.raises(ValueError, match="sample_weight"):
            clf.score(X, y, sample_weight=bad)
    assert clf.score(X, y, sample_weight=2.0) == clf.score(X, y)


def test_early_stopping_split_leaving_no_weight_is_refused(rng):
    X = rng.standard_normal((100, 3))
    w = np.zeros(100)
    w[0] = 1.0  # one row of weight: one side of the split has none
    for est, y in ((MLPRegressor(early_stopping=True, validation_fraction=0.9, max_iter=3,
                                 random_state=0), X[:, 0]),
                   (MLPClassifier(early_stopping=True, max_iter=3, random_state=0),
                    (X[:, 0] > 0).astype(int))):
        with pytest.raises(ValueError, match="split left every (training|validation) row"):
            est.fit(X, y, sample_weight=w)


def test_eval_set_is_checked_as_y_is(rng):
    X = rng.standard_normal((60, 3))
    y = rng.integers(0, 3, 60)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="not classes"):
        clf.fit(X, y, eval_set=(X, y.astype(str)))
    with pytest.raises(ValueError, match="not classes"):
        clf.fit(X, y, eval_set=(X, np.r_[7, y[1:]]))
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="NaN"):
        reg.fit(X, X[:, 0], eval_set=(X, np.r_[np.nan, X[1:, 0]]))
    with pytest.raises(ValueError, match="output"):
        reg.fit(X, X[:, 0], eval_set=(X, np.c_[X[:, 0], X[:, 0]]))
    Y = (X > 0).astype(int)
    with pytest.raises(ValueError, match="indicator"):
        clf.fit(X, Y, eval_set=(X, Y[:, :2]))


def test_a_fit_that_cannot_start_leaves_the_estimator_unfitted(rng, monkeypatch):
    import sys

    from mlpfast.errors import NotFittedError
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    X, y = _blobs(rng, n=30)
    clf = MLPClassifier(solver="lbfgs")
    with pytest.raises(ImportError):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_impossible_combinations_are_refused(rng):
    X, y = _blobs(rng, n=60)
    with pytest.raises(ValueError, match="sums to more than float64"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=np.full(60, 1e307))
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(solver="lbfgs", dropout=0.5).fit(X, y)
    with pytest.raises(ValueError, match="no epochs"):
        MLPClassifier(solver="lbfgs").fit(X, y, eval_set=(X, y))
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="twice"):
        MLPClassifier(class_weight={1: 5.0, "1": 1.0}, max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="complex"):
        MLPClassifier(max_iter=1).fit(X, y, sample_weight=np.ones(60) + 1j)
    with pytest.raises(ValueError, match="float64"):
        MLPRegressor(max_iter=1).fit(X, X[:, 0] * 1e39)


def test_a_malformed_sparse_matrix_is_an_error_not_a_crash(rng):
    idx = np.tile(np.arange(5), 8)
    idx[3] = 10 ** 6
    X = scipy_sparse.csr_matrix((np.ones(40), idx, np.arange(41)), shape=(40, 5))
    with pytest.raises(ValueError, match="malformed sparse"):
        MLPClassifier(max_iter=1).fit(X, rng.integers(0, 2, 40))


def test_sparse_multilabel_y_and_sparse_prediction_after_a_gpu_fit(rng):
    X = rng.standard_normal((60, 4))
    Y = (X[:, :3] > 0).astype(int)
    a = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, Y)
    b = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(
        X, scipy_sparse.csr_matrix(Y))
    assert np.array_equal(a._theta, b._theta)
    # the CUDA engine takes dense X only: a GPU-trained model predicts sparse X on the CPU
    # (the CUDA simulator stands in for the GPU in the tests)
    gpu = MLPClassifier(hidden_layer_sizes=(5,), max_iter=1, random_state=0,
                        device="cuda").fit(X, Y[:, 0])
    np.testing.assert_allclose(gpu.predict_proba(scipy_sparse.csr_matrix(X)),
                               gpu.predict_proba(X), rtol=1e-5, atol=1e-7)


def test_a_pickle_of_an_older_version_gets_the_new_parameters(rng):
    import pickle
    X = rng.standard_normal((40, 3))
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, X[:, 0])
    state = reg.__getstate__()
    for added in ("loss", "max_fun"):
        state.pop(added)
    old = MLPRegressor.__new__(MLPRegressor)
    old.__setstate__(state)
    back = pickle.loads(pickle.dumps(old))
    assert back.loss == "squared_error" and back.max_fun == 15000
    assert "MLPRegressor" in repr(back)
    back.partial_fit(X, X[:, 0])


def test_a_refit_refused_for_its_data_keeps_the_old_classes(rng):
    X = rng.standard_normal((60, 3))
    y = np.array(list("abc"))[rng.integers(0, 3, 60)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    before = clf.predict(X)
    with pytest.raises(ValueError, match="negative"):
        clf.fit(X, np.array(list("xyz"))[rng.integers(0, 3, 60)], sample_weight=-np.ones(60))
    assert list(clf.classes_) == ["a", "b", "c"]
    assert (clf.predict(X) == before).all()
