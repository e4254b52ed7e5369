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
