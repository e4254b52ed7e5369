"""Scores and losses on predictions, in float64, shared by the estimators and the CLI."""
import numpy as np


def log_loss(proba, y_idx):
    """Mean cross-entropy of class probabilities (N, C) against class indices (N,)."""
    p = np.asarray(proba, np.float64)[np.arange(len(y_idx)), y_idx]
    return float(-np.log(np.clip(p, 1e-300, None)).mean())


def r2(y_true, y_pred, sample_weight=None):
    """Coefficient of determination, rows weighted by sample_weight (N,) when given, averaged
    uniformly over outputs (scikit-learn's r2_score default). A constant target scores 1 when
    predicted exactly, else 0."""
    yt = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    yp = np.asarray(y_pred, np.float64).reshape(len(y_true), -1)
    w = (np.ones(len(yt)) if sample_weight is None else
         np.asarray(sample_weight, np.float64)).reshape(-1, 1)
    ss_res = (w * (yt - yp) ** 2).sum(axis=0)
    mean = (w * yt).sum(axis=0) / w.sum()
    ss_tot = (w * (yt - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0),
                         np.where(ss_res > 0, 0.0, 1.0))
    return float(score.mean())


def confusion_matrix(y_idx, pred_idx, n_classes):
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (y_idx, pred_idx), 1)
    return cm


def classification_report(cm):
    """Per-class precision, recall, F1 and support from a confusion matrix (rows = truth),
    with macro and support-weighted averages. Classes never predicted get precision 0."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.where(support > 0, support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    total = support.sum()
    weights = support / total if total else support

    def avg(w):
        return {"precision": float(precision @ w), "recall": float(recall @ w),
                "f1": float(f1 @ w)}

    macro_w = np.full(len(tp), 1.0 / len(tp))
    return {"precision": precision, "recall": recall, "f1": f1, "support": support,
            "macro": avg(macro_w), "weighted": avg(weights)}
