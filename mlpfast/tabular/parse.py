"""Text fields to values: numbers, booleans, date-times and canonical category keys.

Every function takes a pyarrow string array (one column of one record batch, nulls allowed)
and returns NumPy arrays, so the schema's scan (training) and its encoder (every file) parse a
field by exactly the same rules.
"""
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# what a number looks like once the decimal mark is '.' and thousands separators are gone;
# RE2's \d is ASCII only, so '٣' or '1_000' stay text
NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$"
# (decimal mark, thousands separator) pairs that files are written in
NUMBER_FORMATS = ((".", None), (",", None), (".", ","), (",", "."), (".", " "), (",", " "),
                  (".", "'"), (".", "\u00a0"), (",", "\u00a0"), (".", "\u202f"), (",", "\u202f"))
# ISO 8601 dates and date-times, with an optional zone; other date layouts stay text
DATETIME = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?"
            r"(Z|[+-]\d{2}:?\d{2})?$")
TRUE_TOKENS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_TOKENS = ("false", "f", "no", "n", "0", "0.0")
WORD_TOKENS = ("true", "false", "t", "f", "yes", "no", "y", "n")
_NULL = pa.scalar(None, pa.string())


def strip(arr):
    return pc.utf8_trim_whitespace(arr)


class Missing:
    """Which fields are missing: nulls, empty fields, and the NA markers (compared as text
    after stripping, and as numbers when a marker is one, so '-999' also catches '-999.0').

    markers: the strings given with --na-values; default: pandas' default markers as well.
    """

    def __init__(self, markers=(), default=True):
        from .reader import DEFAULT_NA
        self.extra = tuple(str(m) for m in markers)
        self.markers = tuple(dict.fromkeys(self.extra + (DEFAULT_NA if default else ("",))))
        self.default = bool(default)
        self._set = pa.array(self.markers, pa.string())
        nums = [float(m) for m in markers if _float_or_none(m) is not None]
        self._numbers = np.array([v for v in nums if not np.isnan(v)], np.float64)

    def mask(self, stripped, fmt):
        m = pc.or_kleene(pc.is_in(stripped, value_set=self._set), pc.is_null(stripped))
        out = np.array(m.fill_null(True), bool)
        if len(self._numbers):
            out |= np.isin(numbers(stripped, fmt), self._numbers)
        return out


def _float_or_none(text):
    try:
        return float(text)
    except ValueError:
        return None


def numbers(stripped, fmt):
    """float64 values; NaN where the field is not a number (and where it is missing)."""
    text = stripped
    if fmt.thousands:
        # a separator only between groups of three digits: '1,5' is no number in thousands
        t, d = re.escape(fmt.thousands), re.escape(fmt.decimal)
        grouped = pc.match_substring_regex(text, rf"^[+-]?\d{{1,3}}({t}\d{{3}})+({d}\d*)?([eE][+-]?\d+)?$")
        plain = pc.invert(pc.match_substring(text, fmt.thousands))
        text = pc.if_else(pc.or_(grouped, plain), text, _NULL)
        text = pc.replace_substring(text, fmt.thousands, "")
    if fmt.decimal != ".":
        # a '.' beside a decimal comma is not a decimal point: keep such fields non-numeric
        text = pc.if_else(pc.match_substring(text, "."), _NULL, text)
        text = pc.replace_substring(text, fmt.decimal, ".")
    try:
        # most columns are all numbers: one cast, and the slower regex only when it fails
        values = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        ok = pc.match_substring_regex(text, NUMBER, ignore_case=True)
        values = pc.cast(pc.if_else(ok, text, _NULL), pa.float64())
    return np.array(values.fill_null(np.nan), np.float64)


def other_number_format(texts, fmt):
    """The options that read nearly all of `texts` as numbers when `fmt` reads them as text
    ('--decimal ','' ...), or None. A text that two formats read differently ('1,500': a
    thousand and a half, or one and a half) gets both, for the user to choose."""
    from .reader import CSVFormat
    if not texts:
        return None
    arr = strip(pa.array(texts, pa.string()))
    readings = []
    for decimal, thousands in NUMBER_FORMATS:
        if (decimal, thousands) == (fmt.decimal, fmt.thousands):
            continue
        other = CSVFormat(None, fmt.encoding, decimal, thousands)
        values = numbers(arr, other)
        if np.mean(~np.isnan(values)) >= 0.9:
            readings.append((decimal, thousands, values))
    if not readings:
        return None
    options = [" ".join(([f"--decimal '{d}'"] if d != fmt.decimal or not t else []) +
                        ([f"--thousands {_quote(t)}"] if t else [])) for d, t, _ in readings]
    distinct = [readings[0]] + [r for r in readings[1:]
                                if not np.allclose(r[2], readings[0][2], equal_nan=True)]
    if len(distinct) == 1:
        return min(options, key=len)
    return " or ".join(dict.fromkeys(options[readings.index(r)] for r in distinct[:2])) + \
        ", whichever the file means"


def _quote(sep):
    return {"\u00a0": "$'\\u00a0' (a no-break space)",
            "\u202f": "$'\\u202f' (a narrow no-break space)"}.get(sep, repr(sep))


def is_nan_text(stripped):
    """True where a field spells NaN ('nan', 'NaN', '-nan'): a missing number, always."""
    return np.asarray(pc.match_substring_regex(stripped, r"^[+-]?nan$", ignore_case=True)
                      .fill_null(False), bool)


def is_number(stripped, values):
    """True where a field is a number, given numbers(stripped) (a literal 'nan' is one)."""
    out = ~np.isnan(values)
    if not out.all():
        out |= is_nan_text(stripped)
    return out


def booleans(stripped):
    """1.0 for a true token, 0.0 for a false one, NaN otherwise (case-insensitive)."""
    low = pc.utf8_lower(stripped)
    out = np.full(len(stripped), np.nan)
    out[np.asarray(pc.is_in(low, value_set=pa.array(TRUE_TOKENS)).fill_null(False), bool)] = 1.0
    out[np.asarray(pc.is_in(low, value_set=pa.array(FALSE_TOKENS)).fill_null(False), bool)] = 0.0
    return out


def has_word_token(stripped):
    low = pc.utf8_lower(stripped)
    return bool(pc.any(pc.is_in(low, value_set=pa.array(WORD_TOKENS))).as_py() or False)


def looks_like_datetime(stripped):
    return np.asarray(pc.match_substring_regex(stripped, DATETIME).fill_null(False), bool)


def datetimes(stripped):
    """Seconds since 1970-01-01 UTC (float64; NaN where a field is not an ISO date-time).
    Fields without a zone are taken as UTC."""
    out = np.full(len(stripped), np.nan)
    ok = looks_like_datetime(stripped)
    if not ok.any():
        return out
    text = pc.if_else(pa.array(ok), stripped, _NULL)
    # microseconds are the unit: a nanosecond clock's extra digits are dropped, not refused
    text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")
    zoned = np.asarray(pc.match_substring_regex(text, r"(Z|[+-]\d{2}:?\d{2})$").fill_null(False), bool)
    for mask, typ in ((ok & ~zoned, pa.timestamp("us")), (ok & zoned, pa.timestamp("us", tz="UTC"))):
        if not mask.any():
            continue
        part = pc.if_else(pa.array(mask), text, _NULL)
        try:
            stamps = pc.cast(part, typ)
        except pa.ArrowInvalid:
            # one bad field (a 13th month) fails the whole cast: parse field by field
            stamps = pa.array([_one_datetime(v, typ) for v in part.to_pylist()], typ)
        us = np.asarray(pc.cast(stamps, pa.int64()).fill_null(np.iinfo(np.int64).min), np.int64)
        good = mask & (us != np.iinfo(np.int64).min)
        out[good] = us[good] / 1e6
    return out


def _one_datetime(value, typ):
    if value is None:
        return None
    try:
        return pc.cast(pa.array([value]), typ)[0].as_py()
    except pa.ArrowInvalid:
        return None


def format_number(v):
    v = float(v)
    if v.is_integer() and abs(v) < 2 ** 63:
        return str(int(v))
    return repr(v)
