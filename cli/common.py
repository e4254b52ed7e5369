"""Pieces the commands share: option decorators, notes and warnings on stderr, CSV rows, the
notice while kernels compile."""
import contextlib
import io
import logging
import sys
import warnings

import click

from mlpfast.errors import ConvergenceWarning


def csv_options(f=None, *, model=False):
    """--sep, --encoding, --decimal and --thousands: how the CSV files are written. With
    model=True (predict, evaluate) each defaults to what the model was trained with."""
    if f is None:
        return lambda g: csv_options(g, model=model)
    same = " [default: as in training]"
    f = click.option("--thousands", help="Thousands separator inside numbers (e.g. ',')." +
                     (same if model else ""))(f)
    f = click.option("--decimal", default=None if model else ".", show_default=not model,
                     help="Decimal mark of numbers ('.' or ',')." + (same if model else ""))(f)
    f = click.option("--encoding", default=None if model else "utf-8", show_default=not model,
                     help="Text encoding of the CSV files." + (same if model else ""))(f)
    f = click.option("--sep", help="Field separator: a character, or tab, semicolon, pipe. " +
                     ("[default: as in training, else the one the header uses]" if model else
                      "[default: ',', or the one the header uses]"))(f)
    return f


def csv_format(opts, base=None):
    """The CSVFormat of the csv_options in a command's keyword arguments (popped), each option
    not given taken from `base` (the model's training format) when there is one."""
    from mlpfast.tabular import CSVFormat
    given = {k: opts.pop(k) for k in ("sep", "encoding", "decimal", "thousands")}
    if base is not None:
        given = {k: (v if v is not None else getattr(base, k)) for k, v in given.items()}
    return CSVFormat(**given)


def comma_list(ctx, param, value):
    """'a,b , c' -> ['a', 'b', 'c']; None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


@contextlib.contextmanager
def notes_to_stderr():
    """Print the library's notes ('note: ...') and warnings ('Warning: ...') on stderr as they
    happen, once each. --quiet keeps them: they say what was done to the data."""
    from mlpfast.errors import DataNote
    seen = set()

    def show(message, category, *args, **kwargs):
        if issubclass(category, (DeprecationWarning, PendingDeprecationWarning, ResourceWarning,
                                 ConvergenceWarning)):
            return
        text = str(message)
        if text in seen:
            return
        seen.add(text)
        prefix = "note" if issubclass(category, DataNote) else "Warning"
        click.echo(f"{prefix}: {text}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def write_csv_rows(path, header, rows):
    from mlpfast.tabular.folder import write_text
    import csv
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    write_text(path, buf.getvalue())


class Ticker:
    """A moving elapsed time on a terminal: show(seconds) every `every` seconds from a thread
    until stop()."""

    def __init__(self, show, every=0.5):
        import threading
        import time
        self._show, self._every, self._t0 = show, every, time.perf_counter()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlpfast-ticker", daemon=True)
        self._thread.start()

    def _run(self):
        import time
        while not self._stopped.wait(self._every):
            self._show(time.perf_counter() - self._t0)

    def stop(self):
        self._stopped.set()
        self._thread.join()


class CompileNotice(logging.Filter):
    """The library's "compiling the kernels" record (mlpfast.compiling.announce), shown the
    command line's way: one line on stderr instead of the log line, then, on a terminal, a
    moving elapsed time until stop() (the first progress report, or the command's end).
    Installed on the `mlpfast` logger for every command; train sets `quiet` and `bar` (its
    progress bar, which then carries the time)."""

    def __init__(self, every=0.5):
        super().__init__()
        self.quiet, self.bar, self.every, self._ticker = False, None, every, None

    def filter(self, record):
        if getattr(record, "mlpfast_compiled", None) is not None:
            self.stop()  # the compiled call returned (predict: before its rows are written)
            return False
        if getattr(record, "mlpfast_compiling", None) is None:
            return True
        if not self.quiet:
            text = record.getMessage().removeprefix("mlpfast: ")
            if self.bar is not None:
                type(self.bar).write(text, file=sys.stderr)  # above the bar, not into it
            else:
                click.echo(text, err=True)
            if sys.stderr.isatty() and self._ticker is None:
                self._ticker = Ticker(self._show, self.every)
        return False

    def _show(self, seconds):
        text = f"compiling, {seconds:.0f} s"
        bar = self.bar
        if bar is not None:
            bar.set_postfix_str(text, refresh=True)
        else:
            sys.stderr.write(f"\r{text}\033[K")
            sys.stderr.flush()

    def stop(self):
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
            if self.bar is None:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()


COMPILE_NOTICE = CompileNotice()


@contextlib.contextmanager
def compile_notices():
    """COMPILE_NOTICE on the `mlpfast` logger meanwhile (fresh for each command)."""
    COMPILE_NOTICE.__init__()
    logger = logging.getLogger("mlpfast")
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        # the INFO record that compiling ended reaches the filter (no handler prints INFO:
        # Python's last-resort handler shows WARNING and above)
        logger.setLevel(logging.INFO)
    logger.addFilter(COMPILE_NOTICE)
    try:
        yield COMPILE_NOTICE
    finally:
        COMPILE_NOTICE.stop()
        logger.removeFilter(COMPILE_NOTICE)
        logger.setLevel(level)
