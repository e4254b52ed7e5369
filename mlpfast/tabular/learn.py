"""From a training file to a schema and an encoded feature matrix, in two streaming passes.

Pass one (learn_schema) reads every row to decide the columns' roles, levels and the target's
classes; the split is then drawn; pass two (encode_file) writes each row straight into its place
in one preallocated matrix, training rows first, so that the training and validation matrices
are views, never copies. Peak memory is the matrix plus one block of text.
"""
import datetime
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from . import parse
from .reader import CSVFormat, Table
from .scan import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC, ColumnScan, decide
from .schema import (MISSING_LEVEL, Column, Encoder, Schema, _short, _short_list, parse_weights,
                     weight_note)

# an integer target with at most this many distinct values is taken as class labels
MAX_INFERRED_CLASSES = 50
MAX_CLASSES = 100_000


class TargetScan:
    """Pass one's record of the target column: one number and one text code per row."""

    def __init__(self, name, missing, fmt):
        self.name, self.missing, self.fmt = name, missing, fmt
        self.numbers, self.codes = [], []
        self.keys = {}
        self.first_missing = None
        self.first_marker = None       # the text of the first missing value ('' when empty)
        self.n_missing = 0
        self.first_text = None
        self.text_sample = []

    def add(self, first_row, arr):
        s = parse.strip(arr)
        miss = self.missing.mask(s, self.fmt)
        if miss.any():
            self.n_missing += int(miss.sum())
            if self.first_missing is None:
                k = int(np.argmax(miss))
                self.first_missing = first_row + k
                self.first_marker = s[k].as_py()
        nums = parse.numbers(s, self.fmt)
        nums[miss] = np.nan
        text = np.isnan(nums) & ~miss
        if text.any():
            if self.first_text is None:
                k = int(np.argmax(text))
                self.first_text = (s[k].as_py(), first_row + k)
            if len(self.text_sample) < 200:
                self.text_sample += pc.filter(s, pa.array(text)).to_pylist()[:200 - len(self.text_sample)]
        self.numbers.append(nums)
        enc = pc.dictionary_encode(s)
        local = np.array(enc.indices.fill_null(-1), np.int64)
        mapping = np.array([self.keys.setdefault(v, len(self.keys))
                            for v in enc.dictionary.to_pylist()], np.int64)
        if len(self.keys) > MAX_CLASSES and self.first_text is not None:
            raise DataError(f"target column {self.name!r} has more than {MAX_CLASSES} distinct "
                            "text labels; is it the right column? (--target)")
        codes = mapping[local] if len(mapping) else local
        codes[miss] = -1
        self.codes.append(codes.astype(np.int32))


def learn_schema(source, fmt, target=None, features=None, drop=None, categorical=(),
                 task=None, max_categories=100, missing=None, block_bytes=None,
                 refuse_missing=False, weight=None):
    """Pass one. Returns (schema, targets, notes, table_info) where targets is the int64 class
    index or float64 target of every row, in file order (unscaled for regression), and
    table_info holds the separator, the row count and, with `weight` (the column of row
    weights, --sample-weight), 'weights': every row's weight in file order (float64, checked:
    finite and >= 0, never imputed).

    The schema's numeric scaling is the whole file's provisional one (c0, s0); finish_numeric
    completes it from the training rows. Raises DataError for columns or targets that cannot be
    used, naming the column, the file line and what to pass."""
    missing = missing or parse.Missing()
    kw = {} if block_bytes is None else {"block_bytes": block_bytes}
    with Table(source, fmt, **kw) as table:
        return _learn(table, source, fmt, target, features, drop, categorical, task,
                      max_categories, missing, refuse_missing, weight)


def _learn(table, source, fmt, target, features, drop, categorical, task, max_categories,
           missing, refuse_missing, weight=None):
    name = source.name
    columns = table.columns
    target = target or columns[-1]
    used = _select(columns, target, features, drop, categorical, name, weight)
    scans = {c: ColumnScan(c, missing, fmt, k, max_categories, c in (categorical or ()))
             for k, c in enumerate(used)}
    tscan = TargetScan(target, missing, fmt)
    weights = []
    at = f"{name}: weight column {weight!r} (--sample-weight)"
    where = lambda r: f"line {table.line_of_row(r)}"  # noqa: E731
    rows = 0
    budget = _memory_budget()
    for first, cols in table:
        for c, scan in scans.items():
            scan.add(first, cols[c])
        tscan.add(first, cols[target])
        if weight is not None:
            weights.append(parse_weights(cols[weight], fmt, missing, at, where, first))
        rows = first + len(cols[target])
        if budget and rows * max(len(used), 1) * 4 > budget:
            raise DataError(f"{name}: more than {rows:,} rows by line {table.line_of_row(rows - 1)}, "
                            f"whose features would not fit in the {budget / 2**30:.1f} GiB of "
                            "memory available; train on a sample of the file")
    if rows == 0:
        raise DataError(f"{name}: has a header but no data rows")
    notes = list(table.notes)
    line = table.line_of_row
    feature_columns, dropped = [], []
    for c in used:
        scan = scans[c]
        where = f"{name}: column {c!r}"
        role, col_notes = decide(scan, c in (categorical or ()), max_categories, where, line)
        notes += col_notes
        if role is None:
            dropped.append(c)
            continue
        feature_columns.append(_column(c, role, scan))
        notes += _missing_notes(scan, where, missing, line, role, refuse_missing)
    if not feature_columns:
        raise DataError(f"{name}: no feature columns left besides the target {_short(target)}")
    schema_task, y, classes, numbers, why = _target(tscan, task, name, line, notes)
    if task is None:
        notes.insert(0, f"task: {schema_task} (target {target!r} has {why}; override with --task)")
    # the separator actually used (given or read off the header) is the later files' default
    used_fmt = CSVFormat(table.sep, fmt.encoding, fmt.decimal, fmt.thousands)
    schema = Schema(feature_columns, target, schema_task, classes, numbers, missing=missing,
                    dropped=dropped, csv=used_fmt, weight=weight)
    info = {"sep": table.sep, "rows": rows}
    if weight is not None:
        info["weights"] = np.concatenate(weights)
        zeros = weight_note(name, weight, int((info["weights"] == 0).sum()), rows)
        if zeros:
            notes.append(zeros)
    return schema, y, notes, info


def _select(columns, target, features, drop, categorical, name, weight=None):
    if target not in columns:
        raise DataError(f"{name}: no target column {_short(target)}; columns are {_short_list(columns)}")
    if weight is not None and weight not in columns:
        raise DataError(f"{name}: no weight column {_short(weight)} (--sample-weight); columns "
                        f"are {_short_list(columns)}")
    for option, names in (("--features", features), ("--drop", drop),
                          ("--categorical", categorical)):
        unknown = [c for c in names or () if c not in columns]
        if unknown:
            raise DataError(f"{name}: {option} names unknown column(s) {unknown}; columns are "
                            f"{_short_list(columns)}")
    if drop and target in drop:
        raise DataError(f"{name}: --drop names the target column {target!r}")
    if weight is not None:
        if weight == target:
            raise DataError(f"{name}: --sample-weight names the target column {target!r}; the "
                            "weights are a column of their own")
        for option, names in (("--features", features), ("--categorical", categorical),
                              ("--drop", drop)):
            if weight in (names or ()):
                raise DataError(f"{name}: {option} names the weight column {weight!r} "
                                "(--sample-weight), which is no feature; leave it out of "
                                f"{option}")
    used = [c for c in columns if c != target and c != weight and (not features or c in features)
            and c not in (drop or ())]
    if not used:
        raise DataError(f"{name}: no feature columns left besides the target {_short(target)}")
    return used


def _column(name, role, scan):
    if role in (NUMERIC, DATETIME):
        # provisional scaling from the whole file; finish_numeric refines it on training rows
        mean, sd = (scan.time_moments if role == DATETIME else scan.moments).result()
        return Column(name, role, mean, sd if sd > 0 else 1.0)
    if role == BOOLEAN:
        return Column(name, role)
    numeric = scan.n_non_numbers == 0 and scan.present > 0
    if numeric:
        levels = [parse.format_number(v) for v in sorted(scan.number_values)]
    else:
        levels = sorted(scan.distinct)
    if scan.missing:
        levels.append(MISSING_LEVEL)
    return Column(name, CATEGORICAL, levels=levels, numeric_levels=numeric)


def _missing_notes(scan, where, missing, line, role, refuse):
    notes = []
    if scan.missing and refuse:
        raise DataError(f"{where} has {scan.missing} missing value(s), first at line "
                        f"{line(scan.first_missing)}; fill them, or leave --on-missing at impute")
    if scan.missing and role == CATEGORICAL:
        notes.append(f"{where}: {scan.missing} missing value(s) get a level of their own")
    from .reader import DEFAULT_NA
    defaults = {m: c for m, c in scan.markers.items() if m in DEFAULT_NA and m not in missing.extra}
    if defaults and missing.default:
        shown = ", ".join(f"{m!r} ({c})" for m, c in list(defaults.items())[:4])
        notes.append(f"{where}: {sum(defaults.values())} value(s) {shown} read as missing "
                     "(pandas' default missing-value markers); pass --no-default-na to keep "
                     "them as values")
    return notes


def _target(tscan, task, name, line, notes):
    at = f"{name}: target column {tscan.name!r}"
    if tscan.n_missing:
        marker = tscan.first_marker
        hint = (f" ({marker!r} is one of pandas' default missing-value markers: pass "
                "--no-default-na if it is a label)" if marker and tscan.missing.default
                and marker not in tscan.missing.extra else "")
        raise DataError(f"{at} has {tscan.n_missing} missing value(s), first at line "
                        f"{line(tscan.first_missing)}; fill them or remove those rows{hint}")
    numbers = np.concatenate(tscan.numbers)
    codes = np.concatenate(tscan.codes).astype(np.int64)
    numeric = tscan.first_text is None
    if numeric and not np.isfinite(numbers).all():
        k = int(np.argmax(~np.isfinite(numbers)))
        raise DataError(f"{at} has an infinite value at line {line(k)}")
    if task == "regression" and not numeric:
        value, row = tscan.first_text
        raise DataError(f"{at} has {value!r} at line {line(row)}, which is not a number; a "
                        "regression target must be numeric")
    why = None
    n_text = int(np.isnan(numbers).sum())
    if not numeric and task != "classification" and n_text <= max(0.05 * len(numbers), 0):
        value, row = tscan.first_text
        raise DataError(f"{at} is numeric but for {n_text} value(s), first {value!r} at line "
                        f"{line(row)}; fix or remove those rows, or pass --task classification "
                        "if the values are labels")
    if not numeric and task != "classification":
        hint = parse.other_number_format(tscan.text_sample, tscan.fmt)
        if hint:
            value, row = tscan.first_text
            raise DataError(f"{at} holds numbers written in another format ({value!r} at line "
                            f"{line(row)}); pass {hint}, or --task classification if they "
                            "are labels")
    if task is None:
        if not numeric and len(tscan.keys) > max(MAX_INFERRED_CLASSES, 0.5 * len(codes)):
            value, row = tscan.first_text
            raise DataError(f"{at} has {len(tscan.keys)} distinct text labels in {len(codes)} "
                            f"rows ({value!r} at line {line(row)}): is it the right column? "
                            "(--target); pass --task classification to train on it anyway")
        if not numeric:
            task, why = "classification", f"{len(tscan.keys)} text labels"
        else:
            distinct = np.unique(numbers)
            whole = bool((distinct == np.round(distinct)).all())
            if whole and len(distinct) <= MAX_INFERRED_CLASSES:
                task, why = "classification", f"{len(distinct)} distinct integer values"
            else:
                task = "regression"
                why = f"{len(distinct)} distinct {'integer' if whole else 'numeric'} values"
    if task == "regression":
        return task, numbers, None, None, why
    if numeric:
        values, y = np.unique(numbers, return_inverse=True)
        classes = [parse.format_number(v) for v in values]
    else:
        keys = list(tscan.keys)
        order = sorted(range(len(keys)), key=lambda k: keys[k])
        folded = {}
        for k in keys:
            folded.setdefault(k.casefold(), []).append(k)
        same = [v for v in folded.values() if len(v) > 1]
        if same:
            notes.append(f"{at}: labels that differ only in case are separate classes: "
                         + "; ".join(" / ".join(map(repr, v)) for v in same[:5]))
        rank = np.empty(len(keys), np.int64)
        rank[order] = np.arange(len(keys))
        y, classes, values = rank[codes], [keys[k] for k in order], None
    if len(classes) < 2:
        raise DataError(f"{at} has a single class ({classes[0]!r}); a classifier needs at least 2")
    return task, y.astype(np.int64), classes, values, why


def allocate(rows, width, dtype, name):
    """An uninitialised rows x width matrix, or a DataError naming the shape when it cannot fit
    (checked against the memory available first: Linux would grant it and kill us later)."""
    size = rows * width * np.dtype(dtype).itemsize
    budget = _memory_budget()
    try:
        if budget is not None and size > budget:
            raise MemoryError
        return np.empty((rows, width), dtype)
    except (MemoryError, ValueError):
        raise DataError(f"{name}: the {rows:,} x {width:,} {np.dtype(dtype).name} feature matrix "
                        f"({size / 2**30:.1f} GiB) does not fit in the memory available; leave out wide "
                        "categorical columns (--drop, --max-categories) or train on fewer "
                        "rows") from None


def encode_file(source, fmt, schema, out, positions=None, dtype=np.float32, provisional=False,
                block_bytes=None, targets=False, refuse_missing=False, weights=None):
    """Pass two (and every later file): encode `source` by `schema` into `out` (rows x
    n_features), row r going to out[positions[r]] when positions is given. Returns
    (rows, encoder, y) where y holds the targets when asked for; with weights='required' (a
    file without the schema's weight column is refused) or 'optional', (rows, encoder, y, w)
    where w holds the weights (None when an optional column is absent)."""
    kw = {} if block_bytes is None else {"block_bytes": block_bytes}
    with Table(source, fmt, **kw) as table:
        out = _encode(table, source, fmt, schema, out, positions, dtype, provisional, targets,
                      refuse_missing, weights)
    return out if weights else out[:3]


def _encode(table, source, fmt, schema, out, positions, dtype, provisional, targets,
            refuse_missing, weights=None):
    enc = Encoder(schema, fmt, source.name, lambda r: f"line {table.line_of_row(r)}", dtype,
                  provisional, refuse_missing)
    ys, ws, rows = [], [], 0
    weight = schema.weight if weights else None
    for first, block, y, w in encoded_blocks(table, enc, schema.target if targets else None,
                                             weight=weight, optional=weights == "optional"):
        n = len(block)
        if first + n > len(out):
            raise DataError(f"{source.name}: changed while it was read (more rows the second time)")
        if positions is None:
            out[first:first + n] = block
        else:
            out[positions[first:first + n]] = block
        if targets:
            ys.append(y)
        if w is not None:
            ws.append(w)
        rows = first + n
    return rows, enc, (np.concatenate(ys) if ys else None), (np.concatenate(ws) if ws else None)


def encoded_blocks(table, enc, target=None, hint="", weight=None, optional=False):
    """(first_row, X block, y block or None, w block or None) for each block of `table`,
    encoded by `enc`, w from the column `weight` when given (a file without it is refused,
    unless `optional`: then w is None). The target and weight columns are looked for once the
    first block has been read, so that a ragged file (a trailing separator, which shifts
    pandas' columns) is named for that, its deeper fault."""
    enc.check_columns(table.columns, table.sep)
    for first, cols in table:
        if target is not None and target not in table.columns:
            raise DataError(f"{enc.name}: no target column {target!r}; columns are "
                            f"{_short_list(table.columns)}{hint}")
        if weight is not None and weight not in table.columns:
            if not optional:
                raise DataError(f"{enc.name}: no weight column {weight!r}, which the training "
                                f"rows had (--sample-weight); columns are "
                                f"{_short_list(table.columns)}")
            weight = None
        X = np.empty((len(cols[table.columns[0]]), enc.schema.n_features), enc.dtype)
        enc.encode(first, cols, X)
        yield (first, X, (enc.target(first, cols[target], target) if target is not None else None),
               (enc.weights(first, cols[weight], weight) if weight is not None else None))


def finish_numeric(schema, X, n_train, dtype):
    """Second step of the numeric scaling and the fill values, from the training rows
    X[:n_train] (which pass two wrote with the provisional step and NaN for missing); applies
    it to every row of X in place. Returns {column: (missing count, what they became)}."""
    j, filled = 0, {}
    for col in schema.columns:
        if col.role == CATEGORICAL:
            j += col.width
            continue
        x = X[:, j]
        miss = np.isnan(x)
        train = x[:n_train][~miss[:n_train]].astype(np.float64)
        if col.role == BOOLEAN:
            col.fill = float(train.mean() >= 0.5) if len(train) else 0.0
            x[miss] = col.fill
            if miss.any():
                filled[col.name] = (int(miss.sum()), "set to " + ("true" if col.fill else "false") +
                                    ", the more frequent value in training")
            j += 1
            continue
        if len(train):
            col.m = float(train.mean())
            sd = float(train.std())
            col.s = sd if sd > 0 else 1.0
            median = float(np.median(train))
        else:
            median = 0.0
        col.fill = float(np.dtype(dtype).type((median - col.m) / col.s))
        X[:, j] = ((x.astype(np.float64) - col.m) / col.s).astype(dtype)
        X[miss, j] = col.fill
        if miss.any():
            raw = col.c0 + median * col.s0
            shown = (datetime.datetime.fromtimestamp(raw, datetime.timezone.utc).isoformat()
                     if col.role == DATETIME else f"{raw:.6g}")
            filled[col.name] = (int(miss.sum()), f"imputed with the training median {shown}")
        j += 1
    return filled


def _memory_budget():
    """Bytes of memory available now (Linux), or None where it cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for entry in f:
                if entry.startswith("MemAvailable:"):
                    return int(entry.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
