"""The schema: what training learnt about each column, stored in the model, applied to every file.

Each used column has a role (numeric, boolean, categorical, date-time) and what encodes it:
- numeric and date-time columns are standardised in two float steps that training and every
  later file run identically, p = x / s0 - c0 / s0 and then (p - m) / s, each rounded to the
  model's dtype: c0, s0 come from the whole training file (overflow-safe, so every p is finite
  and within sqrt(rows) of 0), m, s from the training rows' p; a missing value takes `fill`,
  the training rows' median, already encoded;
- booleans are 0/1, a missing value the more frequent one;
- categories are one-hot over canonical levels (text stripped of surrounding blanks; numbers by
  value, so '101' and '101.0' are one level); a missing value has its own level when training
  saw one, and an unseen value encodes as all zeros (counted, and said once).
The target is described by its task, its classes (labels as written) and, for regression, the
affine map of a standardised target. A weight column (training's --sample-weight) is named too:
it is no feature, so predict ignores it; evaluate weighs its metrics by it when a file has it.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from . import parse
from .reader import CSVFormat
from .scan import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC

ROLES = (NUMERIC, BOOLEAN, CATEGORICAL, DATETIME)
MISSING_LEVEL = "<missing>"


class Column:
    """One feature column of the schema (see the module docstring for the fields)."""

    def __init__(self, name, role, c0=0.0, s0=1.0, m=0.0, s=1.0, fill=0.0, levels=(),
                 numeric_levels=False):
        self.name, self.role = name, role
        self.c0, self.s0, self.m, self.s, self.fill = c0, s0, m, s, fill
        self.levels = list(levels)
        self.numeric_levels = bool(numeric_levels)
        self._index = None

    @property
    def width(self):
        return len(self.levels) if self.role == CATEGORICAL else 1

    @property
    def center(self):
        """The raw value that encodes as 0 (numeric and date-time columns)."""
        return self.c0 + self.m * self.s0

    @property
    def scale(self):
        return self.s0 * self.s

    def level_index(self):
        if self._index is None:
            keys = [v for v in self.levels if v != MISSING_LEVEL]
            if self.numeric_levels:
                self._index = pa.array([float(v) for v in keys], pa.float64())
            else:
                self._index = pa.array(keys, pa.string())
        return self._index


class Schema:
    """Feature columns in order, the target, and the missing-value markers.

    Every file (training, validation, test, one to predict) goes through `Encoder`; the model
    file holds `to_arrays()`.
    """

    def __init__(self, columns, target, task, classes=None, class_numbers=None,
                 target_center=0.0, target_scale=1.0, missing=None, dropped=(), csv=None,
                 weight=None):
        self.columns = list(columns)
        self.target, self.task = target, task
        self.classes = None if classes is None else list(classes)
        self.class_numbers = None if class_numbers is None else np.asarray(class_numbers, np.float64)
        self.target_center, self.target_scale = float(target_center), float(target_scale)
        self.missing = missing if missing is not None else parse.Missing()
        self.dropped = list(dropped)
        # how the training file was written: later files are read the same way unless told
        self.csv = csv if csv is not None else CSVFormat()
        # the column of per-row weights training read (--sample-weight), or None
        self.weight = weight

    @property
    def n_features(self):
        return sum(c.width for c in self.columns)

    @property
    def names(self):
        return [c.name for c in self.columns]

    def describe(self):
        counts = {}
        for c in self.columns:
            counts[c.role] = counts.get(c.role, 0) + 1
        text = ", ".join(f"{counts[r]} {r}" for r in ROLES if r in counts)
        return text + (f"; {len(self.dropped)} left out" if self.dropped else "")

    def scale_y(self, y):
        """A regression target as the network learns it: standardised by the training rows'
        mean and deviation (target_center, target_scale: 0 and 1 when not scaled), in the
        overflow-free order of the features' first step."""
        return y / self.target_scale - self.target_center / self.target_scale

    def class_index(self, label, fmt=None):
        """The class index of `label` matched as a file's target is matched (text stripped of
        surrounding blanks; numeric labels by value, so 1, '1' and '1.0' are one class), or
        None when the model has no such class."""
        if self.classes is None:
            return None
        if self.class_numbers is not None:
            if isinstance(label, (int, float, np.integer, np.floating)) and not isinstance(label, bool):
                value = float(label)
            else:
                value = parse.numbers(parse.strip(pa.array([str(label)], pa.string())),
                                      fmt or self.csv)[0]
            hits = np.flatnonzero(self.class_numbers == value)
        else:
            text = parse.strip(pa.array([str(label)], pa.string()))[0].as_py()
            hits = [k for k, c in enumerate(self.classes) if c == text]
        return int(hits[0]) if len(hits) else None

    def label_values(self):
        """The classes as values: numbers for numeric labels (ints when whole), else text."""
        if self.class_numbers is None:
            return np.array(self.classes, dtype=object)
        return np.array([int(v) if float(v).is_integer() else float(v) for v in self.class_numbers],
                        dtype=object)

    # ---- the model file: plain arrays, no pickle, strings packed as UTF-8 bytes

    def to_arrays(self):
        import json
        cols = [{"name": c.name, "role": c.role, "numeric_levels": c.numeric_levels,
                 "n_levels": len(c.levels)} for c in self.columns]
        levels = [v for c in self.columns for v in c.levels]
        out = {"columns": np.array(json.dumps(cols)),
               "affine": np.array([[c.c0, c.s0, c.m, c.s, c.fill] for c in self.columns],
                                  np.float64).reshape(-1, 5),
               "target": np.array(json.dumps({
                   "name": self.target, "task": self.task, "center": self.target_center,
                   "scale": self.target_scale, "na_values": list(self.missing.extra),
                   "weight": self.weight,
                   "default_na": self.missing.default, "dropped": self.dropped,
                   "csv": {"sep": self.csv.sep, "encoding": self.csv.encoding,
                           "decimal": self.csv.decimal, "thousands": self.csv.thousands}}))}
        out["level_bytes"], out["level_offsets"] = pack_strings(levels)
        if self.classes is not None:
            out["class_bytes"], out["class_offsets"] = pack_strings(self.classes)
        if self.class_numbers is not None:
            out["class_numbers"] = self.class_numbers
        return out

    @classmethod
    def from_arrays(cls, a):
        import json
        cols = json.loads(a["columns"].item())
        affine = np.asarray(a["affine"], np.float64).reshape(-1, 5)
        if not isinstance(cols, list) or not cols or len(affine) != len(cols):
            raise ValueError(f"{len(affine)} rows of scaling for the columns {cols!r}")
        if not np.isfinite(affine).all() or (affine[:, [1, 3]] <= 0).any():
            raise ValueError("column scaling that is not finite and positive")
        levels = unpack_strings(a["level_bytes"], a["level_offsets"])
        columns, k = [], 0
        for spec, (c0, s0, m, s, fill) in zip(cols, affine):
            if spec["role"] not in ROLES:
                raise ValueError(f"unknown column role {spec['role']!r}")
            n = int(spec["n_levels"])
            columns.append(Column(str(spec["name"]), spec["role"], c0, s0, m, s, fill,
                                  levels[k:k + n], spec["numeric_levels"]))
            k += n
        t = json.loads(a["target"].item())
        classes = unpack_strings(a["class_bytes"], a["class_offsets"]) if "class_bytes" in a else None
        if t["task"] not in ("classification", "regression"):
            raise ValueError(f"unknown task {t['task']!r}")
        if t["task"] == "classification" and (classes is None or len(classes) < 2):
            raise ValueError("a classifier with fewer than 2 classes")
        numbers = a.get("class_numbers")
        if numbers is not None and (numbers.dtype.kind != "f" or numbers.shape != (len(classes),)
                                    or not np.isfinite(numbers).all()):
            raise ValueError(f"class numbers of shape {numbers.shape} for {len(classes)} classes")
        if not (np.isfinite(t["center"]) and np.isfinite(t["scale"]) and t["scale"] > 0):
            raise ValueError("a target scaling that is not finite and positive")
        weight = t.get("weight")  # models written before --sample-weight have none
        if weight is not None and not isinstance(weight, str):
            raise ValueError(f"a weight column named {weight!r}")
        return cls(columns, t["name"], t["task"], classes, a.get("class_numbers"),
                   t["center"], t["scale"], parse.Missing(t["na_values"], t["default_na"]),
                   t.get("dropped", ()), CSVFormat(**t["csv"]) if "csv" in t else None,
                   weight)

    @classmethod
    def from_v1_arrays(cls, a):
        """A schema from a format-1 model file (mlpfast before the one reader)."""
        names = a["columns"].tolist()
        roles = {0: NUMERIC, 1: BOOLEAN, 2: CATEGORICAL}
        offsets = a["cat_offsets"]
        values = a["cat_values"].tolist()
        columns = []
        for k, (name, role) in enumerate(zip(names, a["roles"].tolist())):
            center, scale, fill = float(a["center"][k]), float(a["scale"][k]), float(a["fill"][k])
            levels = values[offsets[k]: offsets[k + 1]]
            if roles[role] == NUMERIC:
                columns.append(Column(name, NUMERIC, center, scale, 0.0, 1.0, (fill - center) / scale))
            else:
                columns.append(Column(name, roles[role], fill=fill, levels=levels))
        task = str(a["task"])
        classes = numbers = None
        if "classes" in a:
            raw = a["classes"]
            if raw.dtype.kind in "biuf":
                numbers = raw.astype(np.float64)
                classes = [parse.format_number(v) for v in numbers]
            else:
                classes = [str(v) for v in raw]
        return cls(columns, str(a["target"]), task, classes, numbers)


# the largest row weight a file may give: weighted sums of squares (R^2's) stay finite for any
# float32-sized target over a billion rows
MAX_WEIGHT = 1e150


def parse_weights(arr, fmt, missing, at, where, first_row=0):
    """Row weights (float64) of one block of a weight column. A weight is a number as the
    file writes numbers (fmt's decimal mark and thousands separator), finite and >= 0; a
    missing, non-numeric, non-finite or negative one raises DataError naming it and its row
    (`where(row)`, e.g. 'line 7'); weights are never imputed. `at` starts the message
    ('data.csv: weight column 'w' (--sample-weight)')."""
    s = parse.strip(arr)
    miss = missing.mask(s, fmt)
    v = parse.numbers(s, fmt)
    with np.errstate(invalid="ignore"):
        bad = miss | ~np.isfinite(v) | (v < 0) | (v > MAX_WEIGHT)
    if not bad.any():
        return v
    k = int(np.argmax(bad))
    text, line = s[k].as_py(), where(first_row + k)
    rule = "weights must be finite numbers >= 0"
    if miss[k]:
        shown = "an empty field" if not text else repr(text)
        raise DataError(f"{at} has a missing value ({shown}) at {line}; weights are not "
                        "imputed: give every row a weight (0 counts it for nothing), or remove "
                        "the row")
    if np.isnan(v[k]) and not parse.is_nan_text(s[k:k + 1])[0]:
        hint = parse.other_number_format([text], fmt)
        raise DataError(f"{at} has {text!r} at {line}, which is not a number; {rule}" +
                        (f" (or pass {hint})" if hint else ""))
    if not np.isfinite(v[k]):
        raise DataError(f"{at} has {text!r} at {line}, which is not a finite number; {rule}")
    if v[k] > MAX_WEIGHT:
        raise DataError(f"{at} has {text!r} at {line}, above {MAX_WEIGHT:g}: the weighted sums "
                        "of the loss and metrics would overflow; scale the column down")
    raise DataError(f"{at} has the negative weight {text!r} at {line}; {rule}")


def weight_note(name, column, zeros, rows):
    """The note that says a file's rows of weight 0, or None when it has none."""
    if not zeros:
        return None
    return (f"{name}: weight column {column!r}: {zeros} of {rows} row(s) have weight 0: kept, "
            "they count for nothing")


def _short(name, limit=60):
    """A name (repr) for a message, cut to about `limit` characters."""
    text = repr(name)
    return text if len(text) <= limit else text[:limit] + "...'"


def _short_list(names, limit=200):
    """A list of column names for a message, cut to about `limit` characters."""
    text = repr(list(names))
    return text if len(text) <= limit else text[:limit] + f"... ({len(names)} in all)"


def pack_strings(values):
    """(uint8 UTF-8 bytes, int64 offsets) of a list of strings: no padding to the longest."""
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.cumsum([0] + [len(b) for b in encoded]).astype(np.int64)
    return np.frombuffer(b"".join(encoded), np.uint8).copy(), offsets


def unpack_strings(blob, offsets):
    blob, offsets = np.asarray(blob), np.asarray(offsets)
    if blob.dtype != np.uint8 or blob.ndim != 1 or offsets.dtype.kind not in "iu":
        raise ValueError(f"strings stored as {blob.dtype} bytes and {offsets.dtype} offsets")
    data = blob.tobytes()
    offsets = offsets.astype(np.int64)
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(data) \
            or (np.diff(offsets) < 0).any():
        raise ValueError("string offsets do not match their bytes")
    return [data[offsets[k]:offsets[k + 1]].decode("utf-8") for k in range(len(offsets) - 1)]


class Encoder:
    """Turns batches of text columns into rows of the feature matrix by a schema.

    `where(row)` names a 0-based data row in messages ('line 17' for a file). Unseen categories
    are counted across batches; `notes()` says them once at the end.
    """

    def __init__(self, schema, fmt, name, where, dtype=np.float32, provisional=False,
                 refuse_missing=False):
        self.schema, self.fmt, self.name, self.where = schema, fmt, name, where
        self.dtype = np.dtype(dtype)
        # training's second pass writes the first step only; the second comes once the
        # training rows' statistics are known (see finish_numeric)
        self.provisional = provisional
        self.refuse_missing = refuse_missing
        self.unseen = {}
        self.missing_counts = {}
        self.rows = 0
        self.weight_counts = None   # (column, rows of weight 0, rows) once weights were read

    def check_columns(self, present, sep=None):
        missing = [c for c in self.schema.names if c not in present]
        if missing:
            hint = ""
            glued = [s for s in (";", "\t", "|", ",") if s != sep and any(s in c for c in present)]
            if glued:
                hint = f"; is it separated by {glued[0]!r}? pass --sep {glued[0]!r}"
            raise DataError(f"{self.name}: missing column(s) {_short_list(missing)}, which the "
                            f"model was trained on; columns present: {_short_list(present)}{hint}")

    def encode(self, first_row, cols, out):
        """Write the features of one batch into `out` (rows x n_features, self.dtype)."""
        self.rows += len(out)
        j = 0
        for col in self.schema.columns:
            s = parse.strip(cols[col.name])
            miss = self.schema.missing.mask(s, self.fmt)
            if miss.any():
                if self.refuse_missing:
                    raise DataError(f"{self.name}: column {col.name!r} has a missing value at "
                                    f"{self.where(first_row + int(np.argmax(miss)))}; fill it, "
                                    "or leave --on-missing at impute")
                self.missing_counts[col.name] = self.missing_counts.get(col.name, 0) + int(miss.sum())
            if col.role == CATEGORICAL:
                self._categorical(col, s, miss, first_row, out[:, j:j + col.width])
            else:
                out[:, j] = self._scalar(col, s, miss, first_row)
            j += col.width

    def _scalar(self, col, s, miss, first_row):
        at = f"{self.name}: column {col.name!r}"
        if col.role == BOOLEAN:
            v = parse.booleans(s)
            bad = np.isnan(v) & ~miss
            if bad.any():
                k = int(np.argmax(bad))
                raise DataError(f"{at} has {s[k].as_py()!r} at {self.where(first_row + k)}, which "
                                "is not a boolean (true/false, yes/no, 1/0) as in training")
            v[miss] = np.nan if self.provisional else col.fill
            return v
        if col.role == NUMERIC:
            miss = miss | parse.is_nan_text(s)  # as pass one took it: a number, not there
        if miss.any():
            s = pc.if_else(pa.array(miss), pa.scalar(None, pa.string()), s)  # markers are not numbers
        v = parse.datetimes(s) if col.role == DATETIME else parse.numbers(s, self.fmt)
        bad = np.isnan(v) & ~miss
        if bad.any():
            k = int(np.argmax(bad))
            kind = "an ISO date-time" if col.role == DATETIME else "a number"
            fix = ("fix it: ISO 8601 dates such as 2024-01-05 or 2024-01-05T10:30:00, with an "
                   "optional zone" if col.role == DATETIME else self._fix)
            raise DataError(f"{at} has {int(bad.sum())} value(s) that are not {kind}, first "
                            f"{s[k].as_py()!r} at {self.where(first_row + k)}; {fix}")
        inf = np.isinf(v)
        if inf.any():
            k = int(np.argmax(inf))
            raise DataError(f"{at} has an infinite value ({s[k].as_py()}) at "
                            f"{self.where(first_row + k)}; {self._fix}")
        # v / s0 - c0 / s0 rather than (v - c0) / s0: with values near 1.8e308 the difference
        # itself would overflow
        with np.errstate(over="ignore", invalid="ignore"):  # too-large values are named below
            p = (v / col.s0 - col.c0 / col.s0).astype(self.dtype)
            if self.provisional:
                p[miss] = np.nan
                return p
            f = ((p.astype(np.float64) - col.m) / col.s).astype(self.dtype)
        huge = ~np.isfinite(f) & ~miss
        if huge.any():
            k = int(np.argmax(huge))
            raise DataError(f"{at} has {s[k].as_py()} at {self.where(first_row + k)}, too far "
                            f"outside the training range (about {col.center:.4g} +- "
                            f"{col.scale:.4g}) to encode in {self.dtype}")
        f[miss] = col.fill
        return f

    def _categorical(self, col, s, miss, first_row, out):
        out[:] = 0
        if col.numeric_levels:
            keys = parse.numbers(s, self.fmt)
            idx = pc.index_in(pa.array(keys, pa.float64(), from_pandas=False), value_set=col.level_index())
        else:
            idx = pc.index_in(s, value_set=col.level_index())
        idx = np.array(idx.fill_null(-1), np.int64)
        if MISSING_LEVEL in col.levels:
            idx[miss] = col.levels.index(MISSING_LEVEL)
        else:
            idx[miss] = -1
        unseen = idx < 0
        if unseen.any():
            k = int(np.argmax(unseen))
            shown = MISSING_LEVEL if miss[k] else s[k].as_py()
            count, first = self.unseen.get(col.name, (0, None))
            self.unseen[col.name] = (count + int(unseen.sum()),
                                     first or (shown, self.where(first_row + k)))
        rows = np.flatnonzero(~unseen)
        out[rows, idx[rows]] = 1

    def notes(self):
        """What was imputed or could not be encoded, one line per column, and the rows of
        weight 0."""
        zeros = weight_note(self.name, *self.weight_counts) if self.weight_counts else None
        filled = ([zeros] if zeros else []) + [f"{self.name}: column {c.name!r}: {self._missing(c.name)} imputed as in training"
                  for c in self.schema.columns
                  if c.name in self.missing_counts and c.role != CATEGORICAL]
        return filled + [f"{self.name}: column {name!r} has {count} value(s) not seen in training "
                         f"(first {shown!r} at {at}), encoded as all zeros"
                         for name, (count, (shown, at)) in self.unseen.items()]

    @property
    def _fix(self):
        extra = self.schema.missing.extra
        markers = f" or {', '.join(map(repr, extra[:3]))}" if extra else ""
        return (f"fix it (a missing value is an empty field{markers}, as in training), or say "
                f"how numbers are written (read now with --decimal {self.fmt.decimal!r}" +
                (f" --thousands {self.fmt.thousands!r})" if self.fmt.thousands else ")"))

    def _missing(self, name):
        count = self.missing_counts[name]
        if count == self.rows:
            # a shifted frame (pandas taking a trailing separator's column as the index) shows
            # up as a column missing everywhere
            return f"missing in every one of its {count} rows (is the data shifted?), all"
        return f"{count} missing value(s)"

    # ---- the weights and the target

    def weights(self, first_row, arr, name):
        """Row weights (float64) from the column `name`, checked as training checked its own."""
        w = parse_weights(arr, self.fmt, self.schema.missing,
                          f"{self.name}: weight column {name!r}", self.where, first_row)
        _, zeros, rows = self.weight_counts or (name, 0, 0)
        self.weight_counts = (name, zeros + int((w == 0).sum()), rows + len(w))
        return w

    def target(self, first_row, arr, name=None):
        """Class indices (int64) or float targets in their own units, from the column `name`
        (default: the target's name in training)."""
        sc = self.schema
        s = parse.strip(arr)
        miss = sc.missing.mask(s, self.fmt)
        at = f"{self.name}: target column {(name or sc.target)!r}"
        if miss.any():
            k = int(np.argmax(miss))
            raise DataError(f"{at} has {int(miss.sum())} missing value(s), first at "
                            f"{self.where(first_row + k)}; rows to train or score need a target")
        if sc.task == "regression":
            v = parse.numbers(s, self.fmt)
            bad = ~np.isfinite(v)
            if bad.any():
                k = int(np.argmax(bad))
                raise DataError(f"{at} has {s[k].as_py()!r} at {self.where(first_row + k)}, which "
                                "is not a finite number")
            return v
        if sc.class_numbers is not None:
            keys = pa.array(parse.numbers(s, self.fmt), pa.float64())
            idx = pc.index_in(keys, value_set=pa.array(sc.class_numbers))
        else:
            idx = pc.index_in(s, value_set=pa.array(sc.classes, pa.string()))
        idx = np.array(idx.fill_null(-1), np.int64)
        if (idx < 0).any():
            bad = idx < 0
            k = int(np.argmax(bad))
            raise DataError(f"{at} has label {s[k].as_py()!r} at {self.where(first_row + k)} "
                            f"({int(bad.sum())} row(s) in this block), which the model was not "
                            f"trained on; its classes are {', '.join(sc.classes[:20])}")
        return idx
