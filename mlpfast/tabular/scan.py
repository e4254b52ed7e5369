"""Pass one over a training file: what each column holds, learnt from every row before the split.

A ColumnScan reads one column batch by batch with bounded memory (counts, a capped set of
distinct values, overflow-safe moments and a fixed-size sample of the numbers), and `decide`
turns it into the column's role. Decisions never depend on which rows later land in
validation, on the block size or on the order of the blocks' arrival.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from . import parse

NUMERIC, BOOLEAN, CATEGORICAL, DATETIME = "numeric", "boolean", "categorical", "datetime"
# distinct values remembered exactly per column, beyond --max-categories (a forced categorical
# column keeps up to this many); past that, distinct values are estimated
DISTINCT_CAP = 65536
KMV = 1024               # hashes kept for the distinct-count estimate
SAMPLE = 2048            # numbers kept per column (bottom-k by a seeded key) for quartiles
# a column whose standard deviation is this many times its interquartile range has its bulk
# squeezed into a sliver of the scale after standardising (a sentinel such as 1e300)
EXTREME_RATIO = 1e3
IDENTIFIER_SHARE = 0.9   # distinct values per row above which a text column is an identifier
LONG_TEXT = 50           # mean characters per value above which text is free text
# distinct non-numbers ('?', 'unknown', '-', a typo ...) in a column of mostly numbers that make
# it a numeric column to fix rather than text to one-hot
TEXT_AMONG_NUMBERS = 10
FORMAT_SAMPLE = 200      # non-numeric texts tried against the other number formats


class Moments:
    """Count, mean and variance of float64 values that cannot overflow: values are held
    divided by a power of two at least as large as the largest magnitude seen (Chan et al.'s
    pairwise update, 'Updating formulae and a pairwise algorithm for computing sample
    variances', 1979)."""

    def __init__(self):
        self.n, self.mean, self.m2, self.unit = 0, 0.0, 0.0, 1.0

    def add(self, v):
        if len(v) == 0:
            return
        top = float(np.max(np.abs(v)))
        if top > self.unit:
            # 2**1023 at most: 2**1024 is already inf, and 1.8e308 / 2**1023 < 2 keeps squares finite
            unit = 2.0 ** min(np.ceil(np.log2(top)), 1023)
            ratio = self.unit / unit
            self.mean *= ratio
            self.m2 *= ratio * ratio
            self.unit = unit
        x = v / self.unit
        nb, mb = len(x), float(x.mean())
        m2b = float(((x - mb) ** 2).sum())
        n = self.n + nb
        delta = mb - self.mean
        self.mean += delta * nb / n
        self.m2 += m2b + delta * delta * self.n * nb / n
        self.n = n

    def result(self):
        """(mean, standard deviation) in the values' units (population deviation)."""
        if self.n == 0:
            return 0.0, 0.0
        return self.mean * self.unit, np.sqrt(max(self.m2, 0.0) / self.n) * self.unit


class ColumnScan:
    """What pass one learns of one column."""

    def __init__(self, name, na, fmt, seed, max_levels, forced=False):
        self.name, self.na, self.fmt = name, na, fmt
        self.max_levels = DISTINCT_CAP if forced else max_levels
        self.forced = forced
        self.hashes = np.empty(0, np.uint64)
        self.rows = 0
        self.missing = 0
        self.first_missing = None
        self.markers = {}              # NA marker (not '') -> count, for the note
        self.non_numbers = {}          # the first distinct non-numeric texts -> (count, first row)
        self.n_non_numbers = 0
        self.all_bool, self.word_bool = True, False
        self.all_datetime = True
        self.text_sample = []          # the first non-numeric texts, to guess a number format
        self.distinct = {}             # text -> (count, first row), capped
        self.overflow = False
        self.text_chars = 0
        self.moments = Moments()
        self.time_moments = Moments()  # of seconds since 1970, while every value is a date-time
        self.low = self.high = None    # (value, row) of the extremes
        self.first_inf = None
        self.sample_keys = np.empty(0)
        self.sample = np.empty(0)
        self._rng = np.random.default_rng(seed)
        self.number_values = set()     # distinct numbers, for numeric categories (capped)

    def add(self, first_row, arr):
        s = parse.strip(arr)
        miss = self.na.mask(s, self.fmt)
        n = len(s)
        self.rows += n
        if miss.any():
            k = int(miss.sum())
            if self.first_missing is None:
                self.first_missing = first_row + int(np.argmax(miss))
            self.missing += k
            raw = pc.filter(s, pa.array(miss))
            for v, c in zip(*_counts(raw)):
                if v:
                    self.markers[v] = self.markers.get(v, 0) + c
        present = ~miss
        if not present.any():
            return
        rows = first_row + np.flatnonzero(present)
        vals = pc.filter(s, pa.array(present))
        nums = parse.numbers(vals, self.fmt)
        isnum = parse.is_number(vals, nums)
        self._numbers(nums[isnum], rows[isnum])
        bad = ~isnum
        if bad.any():
            texts = pc.filter(vals, pa.array(bad))
            self.n_non_numbers += int(bad.sum())
            for v, c, r in zip(*_counts(texts, rows[bad])):
                if v in self.non_numbers:
                    c0, r0 = self.non_numbers[v]
                    self.non_numbers[v] = (c0 + c, r0)
                elif len(self.non_numbers) <= TEXT_AMONG_NUMBERS:
                    self.non_numbers[v] = (c, r)
            if len(self.text_sample) < FORMAT_SAMPLE:
                self.text_sample += texts.to_pylist()[:FORMAT_SAMPLE - len(self.text_sample)]
        if self.all_bool:
            b = parse.booleans(vals)
            self.all_bool = not np.isnan(b).any()
            self.word_bool = self.word_bool or (self.all_bool and parse.has_word_token(vals))
        if self.all_datetime:
            self.all_datetime = bool(parse.looks_like_datetime(vals).all())
            if self.all_datetime:
                seconds = parse.datetimes(vals)
                self.time_moments.add(seconds[~np.isnan(seconds)])
        self.text_chars += int(pc.sum(pc.utf8_length(vals)).as_py() or 0)
        if self.n_non_numbers or self.forced:
            # the count matters only for a column that is not all numbers
            self._estimate(pc.unique(vals))
        if not self.overflow:
            for v, c, r in zip(*_counts(vals, rows)):
                if v in self.distinct:
                    c0, r0 = self.distinct[v]
                    self.distinct[v] = (c0 + c, r0)
                elif len(self.distinct) <= self.max_levels:
                    self.distinct[v] = (c, r)
                else:
                    self.overflow = True
                    break
        if self.forced and len(self.number_values) <= DISTINCT_CAP:
            self.number_values.update(np.unique(nums[isnum & ~np.isnan(nums)]).tolist())

    def _estimate(self, uniques):
        """Keep the KMV smallest 64-bit hashes of the values seen: the distinct count of a
        high-cardinality column is then (KMV - 1) / (largest kept hash / 2**64), within a few
        percent (Bar-Yossef et al., 'Counting distinct elements in a data stream', 2002)."""
        import pandas as pd
        h = pd.util.hash_array(np.asarray(uniques.to_numpy(zero_copy_only=False), dtype=object))
        h = np.union1d(self.hashes, h.astype(np.uint64))
        self.hashes = h[:KMV]

    def _numbers(self, nums, rows):
        finite = np.isfinite(nums)
        if (~finite & ~np.isnan(nums)).any() and self.first_inf is None:
            k = int(np.argmax(~finite & ~np.isnan(nums)))
            self.first_inf = (float(nums[k]), int(rows[k]))
        v, r = nums[finite], rows[finite]
        if len(v) == 0:
            return
        self.moments.add(v)
        lo, hi = int(np.argmin(v)), int(np.argmax(v))
        if self.low is None or v[lo] < self.low[0]:
            self.low = (float(v[lo]), int(r[lo]))
        if self.high is None or v[hi] > self.high[0]:
            self.high = (float(v[hi]), int(r[hi]))
        keys = self._rng.random(len(v))
        keys = np.concatenate([self.sample_keys, keys])
        vals = np.concatenate([self.sample, v])
        if len(keys) > SAMPLE:
            keep = np.argpartition(keys, SAMPLE)[:SAMPLE]
            keys, vals = keys[keep], vals[keep]
        self.sample_keys, self.sample = keys, vals

    @property
    def present(self):
        return self.rows - self.missing

    @property
    def n_distinct(self):
        """Exact below the level cap, estimated above it."""
        if not self.overflow:
            return len(self.distinct)
        if len(self.hashes) < KMV:
            return len(self.hashes)
        estimate = int(round((KMV - 1) / (float(self.hashes[-1]) / 2.0 ** 64)))
        return min(estimate, self.present)


def _counts(arr, rows=None):
    """(values, counts[, first rows]) of a string array, in first-appearance order."""
    enc = pc.dictionary_encode(arr)
    codes = np.asarray(enc.indices.fill_null(-1), np.int64)
    values = enc.dictionary.to_pylist()
    counts = np.bincount(codes[codes >= 0], minlength=len(values))
    if rows is None:
        return values, counts.tolist()
    first = np.full(len(values), -1, np.int64)
    order = np.flatnonzero(codes >= 0)[::-1]
    first[codes[order]] = rows[order]
    return values, counts.tolist(), first.tolist()


def decide(scan, forced_categorical, max_categories, where, line):
    """(role, notes) for a feature column. `where` names it in messages; line(row) gives the
    file line of a 0-based data row. Raises DataError for a column that cannot be used as is."""
    notes = []
    name = scan.name
    if scan.present == 0:
        raise DataError(f"{where} is entirely empty; leave it out with --drop {name!r}")
    if forced_categorical:
        if scan.overflow or scan.n_distinct > max_categories:
            raise DataError(f"{where} has {_many(scan)} distinct values, more than "
                            f"--max-categories {max_categories} one-hot features; pass "
                            f"--max-categories {_enough(scan)} to encode them all")
        return CATEGORICAL, notes
    if scan.n_non_numbers == 0:
        if scan.first_inf is not None:
            value, row = scan.first_inf
            raise DataError(f"{where} has an infinite value ({value:g}) at line {line(row)}; "
                            "fix it, or pass --na-values with it if it marks a missing value")
        return NUMERIC, notes + _extreme_note(scan, where, line) + _numeric_id_note(scan, where)
    if scan.all_bool and scan.word_bool:
        return BOOLEAN, notes
    if scan.all_datetime:
        notes.append(f"{where} holds date-times: encoded as one numeric feature, seconds since "
                     "1970-01-01 (UTC; fields without a zone are taken as UTC)")
        return DATETIME, notes
    first_text, (count, row) = next(iter(scan.non_numbers.items()))
    if name in scan.non_numbers:
        raise DataError(f"{where}: line {line(scan.non_numbers[name][1])} repeats the header "
                        "(files joined with their headers?); remove the repeated header lines")
    text_share = scan.n_non_numbers / scan.present
    hint = parse.other_number_format(scan.text_sample, scan.fmt)
    if hint:
        raise DataError(f"{where} holds numbers written in another format ({first_text!r} at "
                        f"line {line(row)}); pass {hint}")
    few_texts = len(scan.non_numbers) <= TEXT_AMONG_NUMBERS and scan.n_non_numbers == sum(
        c for c, _ in scan.non_numbers.values())
    if text_share <= 0.5 and (few_texts or text_share <= 0.05):
        shown = ", ".join(f"{v!r} at line {line(r)}" for v, (c, r) in list(scan.non_numbers.items())[:3])
        markers = ",".join(scan.non_numbers)
        raise DataError(f"{where} is numeric but for {scan.n_non_numbers} value(s) ({shown}); if "
                        f"they mark missing values pass --na-values {markers!r}, otherwise fix "
                        f"them, or pass --categorical {name!r} to treat the column as categories")
    distinct = scan.n_distinct
    many = distinct > max_categories
    seen = scan.present
    if many and scan.text_chars / scan.present > LONG_TEXT:
        notes.append(f"{where} holds free text ({_many(scan)} distinct values, "
                     f"{scan.text_chars / scan.present:.0f} characters on average): left out")
        return None, notes
    if many and distinct >= IDENTIFIER_SHARE * seen:
        notes.append(f"{where} looks like an identifier ({_many(scan)} distinct values in "
                     f"{seen} rows): left out; pass --categorical {name!r} to one-hot encode it")
        return None, notes
    if many:
        raise DataError(f"{where} has {_many(scan)} distinct values, more than --max-categories "
                        f"{max_categories} one-hot features; pass --categorical {name!r} "
                        f"--max-categories {_enough(scan)} to encode them all, or --drop {name!r}")
    return CATEGORICAL, notes


def _estimated(scan):
    return scan.overflow and len(scan.hashes) >= KMV


def _many(scan):
    return f"about {scan.n_distinct}" if _estimated(scan) else f"{scan.n_distinct}"


def _enough(scan):
    """A --max-categories that surely covers the column: the exact count, or an estimate's
    count plus three times its standard error (1/sqrt(KMV)), rounded up to a hundred."""
    if not _estimated(scan):
        return scan.n_distinct
    return int(np.ceil(scan.n_distinct * (1 + 3 / np.sqrt(KMV)) / 100) * 100)


def _numeric_id_note(scan, where):
    """A note for a whole-number column named like an identifier whose values never repeat:
    it is used as a number, which is rarely what an id means."""
    import re
    v = scan.sample
    if scan.present < 100 or not re.search(r"(^|[_\W])(id|key|index)$|^(id|index)($|[_\W])|Id$",
                                           scan.name, re.IGNORECASE):
        return []
    if not (v == np.round(v)).all() or len(np.unique(v)) < len(v):
        return []
    return [f"{where} looks like a numeric identifier (whole numbers, none repeated): it is "
            f"used as a number; pass --drop {scan.name!r} to leave it out"]


def _extreme_note(scan, where, line):
    mean, sd = scan.moments.result()
    if len(scan.sample) < 4 or sd == 0:
        return []
    q1, q3 = np.quantile(scan.sample, [0.25, 0.75])
    spread = q3 - q1
    if spread <= 0 or sd / spread < EXTREME_RATIO:
        return []
    median = float(np.median(scan.sample))
    value, row = max((scan.low, scan.high), key=lambda e: abs(e[0] - median))
    return [f"{where} spans extreme magnitudes: {value:g} at line {line(row)} against a middle "
            f"half within {q1:g}..{q3:g}, so after standardising most of its values are nearly "
            f"equal; if such values mark missing data pass --na-values {value:g}, otherwise "
            "transform the column (a logarithm) or clip it"]
