"""Where results go: a file replaced only when complete, standard output written only on success,
devices and pipes written through, and never one of the command's own inputs."""
import contextlib
import os
import shutil
import stat
import sys
import tempfile

from ..errors import DataError
from ..model_io import replace_with


@contextlib.contextmanager
def _writing(name):
    """A failed write (a full disk, a closed pipe) as one DataError naming where."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"cannot write {name}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def text_output(path, inputs=()):
    """A text stream (UTF-8) for a command's results.

    path None or '-': standard output, spooled to a temporary file and copied out once the
    block ends without an error, so a failure leaves nothing half-printed. An existing
    non-regular file (/dev/null, /dev/stdout, a FIFO, a terminal) is written through. Anything
    else is a regular file, written to a temporary name beside it (a symlink's target, for a
    symlink) and renamed into place when the block ends without an error, with the permissions
    the umask gives. Raises DataError when path is one of `inputs` (the data file, the model),
    which it would otherwise replace, or cannot be written.
    """
    if path is None or path == "-":
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
            yield spool
            spool.seek(0)
            with _writing("standard output"):
                shutil.copyfileobj(spool, sys.stdout)
                sys.stdout.flush()
        return
    path = os.fspath(path)
    if path.startswith(("/dev/", "/proc/self/fd/")):
        # a stream of this process (/dev/stdout may be a file the shell opened to append to):
        # written through, appending, never replaced by a rename
        with _writing(path), open(path, "a", encoding="utf-8", newline="") as f:
            yield f
        return
    if os.path.exists(path):
        for other in inputs:
            if other is not None and os.path.exists(other) and os.path.samefile(path, other):
                raise DataError(f"--out {path} is the input {other}; write the results elsewhere")
        if os.path.isdir(path):
            raise DataError(f"--out {path} is a folder; name a file")
        if not stat.S_ISREG(os.stat(path).st_mode):
            with _writing(path), open(path, "w", encoding="utf-8", newline="") as f:
                yield f
            return
    target = os.path.realpath(path)
    try:
        with replace_with(target) as binary, open(binary.fileno(), "w", encoding="utf-8",
                                                  newline="", closefd=False) as f:
            yield f
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
