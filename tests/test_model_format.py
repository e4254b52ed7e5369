"""The model file's output layer: binary classifiers store one logistic output (format 3), and
files of format 2 (binary classifiers with two softmax outputs) still load and predict as
before."""
import warnings

import numpy as np
import pytest

import mlpfast
from mlpfast import tabular
from mlpfast.errors import ModelFileError


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    path = folder / "d.csv"
    with open(path, "w") as f:
        f.write("a,b,c,d,y\n")
        for row, label in zip(X, y):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tabular.train(str(path), target="y", hidden_layer_sizes=(8,), max_iter=5,
                      out=str(folder / "run"))
    return path, folder / "run"


def _arrays(model):
    with np.load(model, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_a_binary_model_stores_one_logistic_output(binary_run):
    path, run = binary_run
    a = _arrays(run / "model.npz")
    assert a["out_activation"].item() == "logistic" and int(a["widths"][-1]) == 1
    assert int(a["format_version"]) == 3
    loaded = mlpfast.load(str(run))
    proba = loaded.predict_proba(str(path))
    assert proba.shape == (300, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (loaded.predict(str(path)) == np.where(proba[:, 1] > 0.5, "yes", "no")).all()


def test_a_format_2_binary_model_with_two_softmax_outputs_still_predicts(binary_run, tmp_path):
    # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: the same model written as format 2 was
    path, run = binary_run
    a = _arrays(run / "model.npz")
    est = mlpfast.load(str(run)).estimator
    W, b = est.coefs_[-1], est.intercepts_[-1]          # (hidden, 1), (1,)
    coefs = est.coefs_[:-1] + [np.hstack([np.zeros_like(W), W])]
    inters = est.intercepts_[:-1] + [np.concatenate([np.zeros_like(b), b])]
    widths = list(est._widths[:-1]) + [2]
    layout, size = mlpfast.params.make_layout(widths)
    theta = np.zeros(size, est._theta.dtype)
    mlpfast.params.assign(theta, layout, coefs, inters)
    a.update(theta=theta, widths=np.asarray(widths, np.int64), format_version=np.array(2))
    a.pop("out_activation")
    (tmp_path / "old").mkdir()
    np.savez(tmp_path / "old" / "model.npz", **a)
    for name in ("schema.json", "run.json"):
        if (run / name).exists():
            (tmp_path / "old" / name).write_bytes((run / name).read_bytes())
    old = mlpfast.load(str(tmp_path / "old" / "model.npz"))
    assert old.estimator.out_activation_ == "softmax" and old.estimator.n_outputs_ == 2
    np.testing.assert_allclose(old.predict_proba(str(path)),
                               mlpfast.load(str(run)).predict_proba(str(path)), rtol=1e-5,
                               atol=1e-7)


def test_an_unknown_output_activation_is_a_damaged_file(binary_run, tmp_path):
    _, run = binary_run
    a = _arrays(run / "model.npz")
    a["out_activation"] = np.array("swish")
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(ModelFileError, match="output activation 'swish'"):
        mlpfast.load(str(tmp_path / "bad.npz"))
