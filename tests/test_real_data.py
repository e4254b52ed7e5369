"""Training on real data against scikit-learn, same hidden sizes, solver and epochs."""
import numpy as np
import pandas as pd
import pytest
from conftest import DATASETS

from mlpfast import MLPClassifier

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                         "ignore::mlpfast.errors.ConvergenceWarning")]


def test_letter_recognition_matches_sklearn_accuracy():
    df = pd.read_csv(DATASETS / "letter-recognition.csv")
    y = df.pop("Letter").to_numpy()
    X = df.to_numpy(np.float64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    mu, sd = X_tr.mean(axis=0), X_tr.std(axis=0)
    X_tr, X_te = (X_tr - mu) / sd, (X_te - mu) / sd
    kw = dict(hidden_layer_sizes=(128,), max_iter=40, random_state=0)
    theirs = SkMLPClassifier(**kw).fit(X_tr, y_tr).score(X_te, y_te)
    ours = MLPClassifier(**kw).fit(X_tr, y_tr).score(X_te, y_te)
    assert ours >= theirs - 0.01, (ours, theirs)
    assert ours > 0.90
