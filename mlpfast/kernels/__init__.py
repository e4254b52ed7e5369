"""Numba @njit kernels of the CPU engine. Each module opens with the legend of its dimensions.

Kernels only compute: they take preallocated arrays and write into them. Allocation, shape
checks and the choice of kernel live in mlpfast.engine.

Every kernel is compiled with error_model="numpy": a float division by zero gives inf/nan as
IEEE says instead of Numba's default check-and-raise, whose branch in the loop body stops LLVM
from vectorising it (Adam's update ran 10x slower with the check).
"""

import logging as _logging
import os as _os
import tempfile as _tempfile

log = _logging.getLogger("mlpfast")


def _writable(folder):
    """Whether files can be made in `folder` (or in the nearest parent that exists)."""
    while not _os.path.exists(folder):
        parent = _os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return _os.access(folder, _os.W_OK | _os.X_OK)


def choose_cache_dir(package_dir, user_cache_dir):
    """Where Numba will cache the kernels: None when its own places work (beside the package
    in __pycache__, or the user's cache folder), else a folder in the temporary directory, or
    False when nothing is writable at all (the kernels then compile in every process). A
    read-only install with no writable home (a container run as another user) otherwise fails
    at import with Numba's 'cannot cache function ...: no locator available'."""
    if _writable(_os.path.join(package_dir, "__pycache__")) or _writable(user_cache_dir):
        return None
    return _temporary_cache()


def _temporary_cache():
    """This user's folder in the temporary directory, or False when there is no writable
    temporary directory."""
    try:
        return _os.path.join(_tempfile.gettempdir(), f"mlpfast-numba-cache-{_os.getuid()}")
    except (FileNotFoundError, OSError):
        return False


def _route_cache():
    from numba import config
    from numba.misc.appdirs import AppDirs
    if config.CACHE_DIR:  # the user chose (NUMBA_CACHE_DIR)
        chosen = config.CACHE_DIR
        if (not _os.path.exists(chosen) or _os.path.isdir(chosen)) and _writable(chosen):
            return True
        # Numba uses a cache folder only where it can write (even to load): with this one every
        # kernel's decoration would fail at import ('no locator available')
        folder = _temporary_cache()
        if folder is False or not _writable(folder):
            config.CACHE_DIR = ""
            log.warning("mlpfast: NUMBA_CACHE_DIR=%s is not a writable folder and Numba uses a "
                        "cache only where it can write, even to load; nothing else is writable "
                        "either: kernels are not cached and compile in every process", chosen)
            return False
        config.CACHE_DIR = folder
        log.warning("mlpfast: NUMBA_CACHE_DIR=%s is not a writable folder and Numba uses a cache "
                    "only where it can write, even to load: kernels are cached in %s instead "
                    "(make it writable by this user: chmod -R a+rwX)", chosen, folder)
        return True
    user = AppDirs(appname="numba", appauthor=False).user_cache_dir
    folder = choose_cache_dir(_os.path.dirname(__file__), user)
    if folder is False:
        log.warning("mlpfast: nothing here is writable (install folder, home, temporary "
                    "directory); kernels are not cached and compile in every process (set "
                    "NUMBA_CACHE_DIR to a writable folder)")
        return False
    if folder is not None:
        config.CACHE_DIR = folder
        log.warning("mlpfast: the install folder and the home cache are read-only; kernels are "
                    "cached in %s (set NUMBA_CACHE_DIR to choose)", folder)
    return True


# whether the kernels below are compiled with cache=True (see _route_cache)
CACHE = _route_cache()


LOCK_NAME = "mlpfast-cache.lock"


def lock_cache_saves(modules):
    """Make Numba's cache writes of the kernels in `modules` one at a time across processes
    (an exclusive flock on LOCK_NAME in the cache folder around each write; POSIX only).

    Numba saves a compiled signature by reading the function's index file, adding the new key
    with the first unused data file name, and writing the index and then the data. Two
    processes saving different signatures of one function at the same moment (a float32 and a
    float64 job started together on a cold cache, or the compile of chunk_gradient apart from
    train_batches') can both pick the same data file name: one key is lost, or the index maps
    it to the other signature's code. Under the lock each write sees the last one's index.
    Reads need none: Numba writes each file whole and then renames it into place."""
    try:
        import fcntl
    except ImportError:  # not POSIX: Numba's own writes
        return
    from numba.core.dispatcher import Dispatcher
    for module in modules:
        for obj in list(vars(module).values()):
            cache_file = getattr(getattr(obj, "_cache", None), "_cache_file", None)
            if (isinstance(obj, Dispatcher) and cache_file is not None
                    and not getattr(cache_file, "mlpfast_locked", False)):
                cache_file.save = _locked(cache_file.save, cache_file._cache_path, fcntl)
                cache_file.mlpfast_locked = True


def _locked(save, folder, fcntl):
    def locked_save(key, data):
        try:
            # read-only is enough for flock, so a cache folder shared by several users works
            # whoever made the lock file
            fd = _os.open(_os.path.join(folder, LOCK_NAME), _os.O_RDONLY | _os.O_CREAT, 0o666)
        except OSError:  # no lock possible here: Numba's own write, as without mlpfast
            return save(key, data)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return save(key, data)
        finally:
            _os.close(fd)  # and with it the lock
    return locked_save
