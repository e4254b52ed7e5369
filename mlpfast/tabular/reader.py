"""Reading CSV text: the one reader behind every command (train, predict, evaluate, bench).

Every field comes out as text (pyarrow string arrays, record batch by record batch); nothing is
typed by inference here. The schema (schema.py) decides each column's role once, on the whole
training file, and parses every later file by that decision, so a value encodes the same way
whatever file, chunk or engine it arrives in.

pyarrow's streaming CSV reader was chosen by measurement (benchmarks/csv_read.py): it reads text
columns several times faster than pandas' C engine and its memory stays bounded by one block.

Inputs: a path, `-` for standard input, pipes and FIFOs; gzip, bz2, xz and zip files are
recognised by their first bytes, not by their names. A source that is not a regular file is
copied to a temporary file when it must be read twice (training reads its file twice: once to
learn the schema, once to encode it).
"""
import bz2
import codecs
import csv
import gzip
import io
import lzma
import os
import stat
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import DataError

# pandas' default missing-value markers (pandas._libs.parsers.STR_NA_VALUES), so that a file
# reads the way pandas users expect; --no-default-na turns them off, --na-values adds more
DEFAULT_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
              "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
                   "space": " "}
# the other separators a header is checked for when the chosen one splits nothing
SNIFFED = (";", "\t", "|")
BLOCK_BYTES = 4 << 20
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"),
          (b"PK\x03\x04", "zip"))


@dataclass(frozen=True)
class CSVFormat:
    """How a CSV file is written: separator, text encoding, decimal mark, thousands separator.

    sep: one character, or a name ('tab', 'semicolon', 'pipe', 'comma', 'space', or the two
    characters backslash-t); None (the default) means ',' unless the header holds no ',' but
    one of ';', tab, '|', which is then used (and said).
    """
    sep: str | None = None
    encoding: str = "utf-8"
    decimal: str = "."
    thousands: str | None = None

    def __post_init__(self):
        if self.sep is not None:
            sep = SEPARATOR_NAMES.get(self.sep.lower(), self.sep) if len(self.sep) > 1 else self.sep
            if len(sep) != 1 or sep in "\r\n\"":
                raise DataError(f"--sep must be one character (or tab, semicolon, pipe), not {self.sep!r}")
            object.__setattr__(self, "sep", sep)
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise DataError(f"unknown text encoding {self.encoding!r} (--encoding)") from None
        if len(self.decimal) != 1 or self.decimal.isalnum():
            raise DataError(f"--decimal must be one character such as '.' or ',', not {self.decimal!r}")
        if self.thousands is not None and (len(self.thousands) != 1 or self.thousands == self.decimal):
            raise DataError(f"--thousands must be one character other than the decimal mark, "
                            f"not {self.thousands!r}")


class Source:
    """A CSV input by name: a path, or '-' for standard input.

    `name` is what messages call it. open() gives a binary stream of the decompressed text;
    with rereadable=True a pipe, FIFO or standard input is first copied to a temporary file
    (removed by close()) so that it can be opened again.
    """

    def __init__(self, path, rereadable=False, name=None):
        self.path = os.fspath(path)
        self.name = name or ("<stdin>" if self.path == "-" else self.path)
        self._spool = None
        self._used = False
        if self.path != "-":
            if not os.path.exists(self.path):
                raise DataError(f"{self.name}: file not found")
            if os.path.isdir(self.path):
                raise DataError(f"{self.name}: is a folder, not a CSV file")
            if not os.access(self.path, os.R_OK):
                raise DataError(f"{self.name}: permission denied")
        regular = self.path != "-" and stat.S_ISREG(os.stat(self.path).st_mode)
        if not regular and rereadable:
            self._spool = self._copy_to_temporary()
        self.regular = regular or self._spool is not None

    def _copy_to_temporary(self):
        fd, tmp = tempfile.mkstemp(prefix="mlpfast-input-", suffix=".csv")
        limit = spool_limit(os.path.dirname(tmp))
        try:
            with os.fdopen(fd, "wb") as out, self._raw() as raw:
                copied = 0
                for block in iter(lambda: raw.read(1 << 20), b""):
                    out.write(block)
                    copied += len(block)
                    if copied > limit:
                        raise DataError(f"{self.name}: more than {limit / 2**30:.1f} GiB without an "
                                        "end; training holds the whole input, so write it to a "
                                        "file (or a sample of it) first")
        except OSError as exc:
            os.unlink(tmp)
            raise DataError(f"{self.name}: cannot copy the input to a temporary file "
                            f"({exc.strerror}); write it to a file first") from None
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    def _raw(self):
        if self._spool is not None:
            return open(self._spool, "rb")
        if self.path == "-":
            if self._used:
                raise DataError("<stdin> can be read only once")
            self._used = True
            return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
        return open(self.path, "rb")

    def open(self):
        """A buffered binary stream of the decompressed bytes, checked to be non-empty text."""
        raw = self._raw()
        try:
            buffered = io.BufferedReader(raw, 1 << 16) if not isinstance(raw, io.BufferedReader) else raw
            kind = next((k for magic, k in _MAGIC if buffered.peek(8)[:len(magic)] == magic), None)
            stream = _decompress(buffered, kind, self.name) if kind else buffered
            if kind:
                stream = io.BufferedReader(stream, 1 << 16)
            head = stream.peek(8192)[:8192]
        except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
            raw.close()
            raise DataError(f"{self.name}: cannot be read ({_one_line(exc)})") from None
        if not head.strip():
            stream.close()
            raise DataError(f"{self.name}: the file is empty")
        if b"\x00" in head and not _wide_encoding(head):
            stream.close()
            raise DataError(f"{self.name}: not a text CSV file (it holds binary data)")
        return stream

    def check_encoding(self, head, encoding):
        """A UTF-16 or UTF-32 file read as UTF-8 fails far from its cause: say so at once."""
        if encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "utf8sig"):
            return
        for bom, name in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                          (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
            if head.startswith(bom):
                raise DataError(f"{self.name}: starts with a {name.upper()} byte order mark; "
                                f"pass --encoding {name}")

    @property
    def file(self):
        """The path of the bytes as read (the temporary copy for standard input or a pipe),
        or None when the source can be read only once."""
        if self._spool is not None:
            return self._spool
        return self.path if self.regular else None

    def close(self):
        if self._spool is not None:
            try:
                os.unlink(self._spool)
            except OSError:
                pass
            self._spool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def spool_limit(folder):
    """Bytes of standard input training copies before giving up: what the disk has free, and
    no more than four times the memory available (a CSV's text is rarely four times larger
    than its feature matrix, which must fit in memory)."""
    from .learn import _memory_budget
    try:
        st = os.statvfs(folder)
        free = st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        free = None
    memory = _memory_budget()
    caps = [c for c in (free and free - (256 << 20), memory and 4 * memory) if c]
    return max(min(caps), 1 << 20) if caps else float("inf")


def _wide_encoding(head):
    return head[:2] in (b"\xff\xfe", b"\xfe\xff")


def _decompress(stream, kind, name):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(stream, "rb")
    if kind == "xz":
        return lzma.LZMAFile(stream, "rb")
    archive = zipfile.ZipFile(stream if stream.seekable() else io.BytesIO(stream.read()))
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) != 1:
        raise DataError(f"{name}: a zip archive must hold exactly one CSV file; it holds "
                        f"{len(members)}")
    return archive.open(members[0])


class Table:
    """The open CSV: its header and its record batches of text columns.

    Iterating gives (first_row, {column: pyarrow StringArray}) pairs, first_row being the
    0-based index of the batch's first data row. Raises DataError naming the file and line for
    ragged rows, undecodable bytes and rows longer than a block.
    """

    def __init__(self, source, fmt=CSVFormat(), block_bytes=BLOCK_BYTES):
        self.source = source
        self.fmt = fmt
        self.notes = []
        self._stream = source.open()
        try:
            self.columns, self.sep = self._header(block_bytes)
        except BaseException:
            self._stream.close()
            raise
        self._ragged = []
        self._block_bytes = block_bytes
        self._arrow = None

    def _header(self, block_bytes):
        name = self.source.name
        head = self._stream.peek(min(block_bytes, 1 << 20))
        self.source.check_encoding(head, self.fmt.encoding)
        text = _decode_head(head, self.fmt.encoding)
        first = _first_record(text)
        sep = self.fmt.sep
        if sep is None:
            sep = ","
            if "," not in first:
                found = [s for s in SNIFFED if s in first]
                if len(found) == 1:
                    sep = found[0]
                    self.notes.append(f"{name}: reading with separator {_sep_name(sep)}, the "
                                      "one its header uses; pass --sep to choose another")
        try:
            names = next(csv.reader(io.StringIO(first), delimiter=sep))
        except (csv.Error, StopIteration):
            raise DataError(f"{name}: cannot read the header line") from None
        if len(names) == 1 and self.fmt.sep is not None:
            others = [s for s in SNIFFED + (",",) if s != sep and s in first]
            if others:
                raise DataError(f"{name}: the header is one column {first[:60]!r} when split at "
                                f"{_sep_name(sep)}; it looks separated by {_sep_name(others[0])}: "
                                f"pass --sep {_sep_option(others[0])}")
        empty = [k + 1 for k, c in enumerate(names) if not c.strip()]
        if empty:
            raise DataError(f"{name}: column {empty[0]} of the header has no name (a saved "
                            "pandas index?); name every column in the header line")
        seen, dupes = set(), []
        for c in names:
            if c in seen and c not in dupes:
                dupes.append(c)
            seen.add(c)
        if dupes:
            raise DataError(f"{name}: the header names column {dupes[0]!r} more than once; "
                            "rename the duplicates")
        return names, sep

    def _reader(self):
        # a source that cannot be read again cannot be rescanned for a line number: the serial
        # parser numbers its records instead
        read = pacsv.ReadOptions(block_size=self._block_bytes, use_threads=self.source.regular,
                                 encoding=self.fmt.encoding)

        def on_invalid(row):
            self._ragged.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "error"

        parse = pacsv.ParseOptions(delimiter=self.sep, newlines_in_values=True,
                                   invalid_row_handler=on_invalid)
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in self.columns},
                                       null_values=[], strings_can_be_null=False,
                                       quoted_strings_can_be_null=False)
        return pacsv.open_csv(self._stream, read_options=read, parse_options=parse,
                              convert_options=convert)

    def __iter__(self):
        try:
            reader = self._arrow = self._reader()
            row = 0
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                yield row, {c: batch.column(k) for k, c in enumerate(self.columns)}
                row += batch.num_rows
        except (pa.ArrowInvalid, UnicodeDecodeError, ValueError) as exc:
            raise self._explain(exc) from None
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            # a truncated or damaged gzip/xz/bz2 file ends here (EOFError would otherwise
            # reach Click as a bare 'Aborted!')
            raise DataError(f"{self.source.name}: cannot be read ({_one_line(exc) or type(exc).__name__}); "
                            "is the compressed file complete?") from None
        finally:
            self.close()

    def close(self):
        """Stop pyarrow's reading threads, then close the file: closing the file under a
        running reader can abort the process."""
        if self._arrow is not None:
            self._arrow.close()
            self._arrow = None
        self._stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _explain(self, exc):
        name, text = self.source.name, str(exc)
        if self._ragged:
            number, expected, actual, row = self._ragged[0]
            # the threaded parser does not number rows: find the line by reading again
            if self.source.regular:
                line = (line_of_record(self.source, self.fmt.encoding, self.sep, number) if number
                        else first_ragged_line(self.source, self.fmt.encoding, self.sep))
                where = f"line {line}" if line else "a row"
            else:
                where = f"record {number} (the header is record 1)" if number else "a row"
            hint = ""
            if actual == expected + 1 and row is not None and row.rstrip("\r\n").endswith(self.sep):
                hint = " (the row ends with a separator)"
            return DataError(f"{name}: {where} has {actual} fields, the header has "
                             f"{expected}{hint}; fix the file")
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "decode" in text.lower():
            return DataError(f"{name}: {self.undecodable()}; pass --encoding (for example "
                             "--encoding latin-1)")
        if "straddling" in text:
            return DataError(f"{name}: a row is longer than {self._block_bytes >> 20} MB, or a "
                             "quote is never closed")
        if "Empty CSV" in text:
            return DataError(f"{name}: the file is empty")
        return DataError(f"{name}: {_one_line(exc)}")

    def undecodable(self):
        """'cannot be decoded as E (... at byte N)' for the first bad byte of the source."""
        enc = self.fmt.encoding
        if not self.source.regular:
            return f"cannot be decoded as {enc}"
        decoder = codecs.getincrementaldecoder(enc)()
        offset = 0
        with self.source.open() as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    return (f"cannot be decoded as {enc} ({err.reason} at byte "
                            f"{offset + err.start})")
                offset += len(block)
        return f"cannot be decoded as {enc}"

    def line_of_row(self, row):
        """The file line of 0-based data row `row` (for messages)."""
        return line_of_record(self.source, self.fmt.encoding, self.sep, row + 2)


def line_of_record(source, encoding, sep, number):
    """The file line on which CSV record `number` (1-based, the header being record 1) starts;
    blank lines are skipped as the reader skips them, quoted newlines counted. Rescans the
    source, so it is for messages only; a source that cannot be reread gives `number`."""
    if not source.regular:
        return number
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=sep)
        seen, start = 0, 1
        try:
            for rec in reader:
                if rec:
                    seen += 1
                    if seen == number:
                        return start
                start = reader.line_num + 1
        except csv.Error:
            pass
    return number


def first_ragged_line(source, encoding, sep):
    """The line of the first record whose field count differs from the header's, or None."""
    if not source.regular:
        return None
    with source.open() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=sep)
        try:
            header = next(reader)
            start = reader.line_num + 1
            for rec in reader:
                if rec and len(rec) != len(header):
                    return start
                start = reader.line_num + 1
        except (csv.Error, StopIteration):
            pass
    return None


def _decode_head(head, encoding):
    text = head.decode(encoding, errors="ignore") if encoding.lower().replace("-", "") not in (
        "utf8", "utf8sig") else head.decode("utf-8", errors="ignore")
    return text.lstrip("\ufeff")


def _first_record(text):
    """The header line (the first CSV record, which may hold quoted newlines)."""
    quoted = False
    for k, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch in "\r\n" and not quoted:
            return text[:k]
    return text


def _sep_name(sep):
    return {"\t": "tab", ",": "','", ";": "';'", "|": "'|'", " ": "space"}.get(sep, repr(sep))


def _sep_option(sep):
    return {"\t": "tab", ";": "';'", "|": "'|'", ",": "','"}.get(sep, repr(sep))


def _one_line(exc):
    return " ".join(str(exc).split())[:300]
