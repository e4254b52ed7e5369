"""The seeded validation split, stratified by class, with every class kept in training."""
import numpy as np

from ..errors import DataError


def split(n, fraction, seed, classes=None, name="data"):
    """(train_index, val_index, small) for n rows: ceil(fraction * n) validation rows drawn with
    `seed`; with `classes` (int class index per row) each class gives its share, rounded by
    largest remainder, but never its last row: a class with a single row stays in training,
    whatever the seed, and is listed in `small` (class indices)."""
    n_val = int(np.ceil(fraction * n))
    if n_val < 1 or n - n_val < 2:
        raise DataError(f"{name}: {n} row(s) are too few to hold out --val-fraction {fraction:g} "
                        "(it needs at least 1 validation row and 2 training rows); give more "
                        "rows, a --val file, or --val-fraction 0")
    rng = np.random.RandomState(seed)
    order = rng.permutation(n)
    if classes is None:
        return np.sort(order[n_val:]), np.sort(order[:n_val]), []
    codes = np.asarray(classes, np.int64)
    by_class = order[np.argsort(codes[order], kind="stable")]
    counts = np.bincount(codes)
    share = counts * n_val / n
    take = np.floor(share).astype(np.int64)
    take[np.argsort(-(share - take), kind="stable")[: n_val - take.sum()]] += 1
    take = np.minimum(take, np.maximum(counts - 1, 0))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    val = np.concatenate([by_class[s: s + t] for s, t in zip(starts, take)])
    if len(val) == 0:
        raise DataError(f"{name}: {n} row(s) are too few to hold out --val-fraction {fraction:g} "
                        "while every class keeps a training row; give more rows, a --val file, "
                        "or --val-fraction 0")
    mask = np.zeros(n, bool)
    mask[val] = True
    small = [int(k) for k in np.flatnonzero(counts == 1)]
    return np.flatnonzero(~mask), np.flatnonzero(mask), small
