"""Signals for the `mlpfast` command: SIGINT, SIGTERM and SIGHUP, from its first import on.

Imported before anything heavy (Click, Numba), so that a signal during start-up is already one
line and 128 + its number, never a traceback. Only the standard library here.
"""
import os
import signal
import sys
import threading


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Python next runs (between progress chunks in training),
    so that a scheduler's stop is handled like Ctrl-C; `signum` says which."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class StopRequest:
    """What SIGINT, SIGTERM and SIGHUP do. Outside training they raise Interrupted at once;
    while training (`deferred`), they set `event`, which training checks at the end of each
    progress chunk, so it stops there with a state that resumes exactly."""

    def __init__(self):
        self.event = threading.Event()
        self.active = False      # a command is running (Group.invoke)
        self.deferred = False    # training has started
        self.progressed = False  # and finished a progress chunk: there is a state to save
        self.signum = None

    def handle(self, signum, frame):
        if not self.active:
            # still importing: nothing is written yet, and no Python frame of ours would
            # catch an exception
            sys.stderr.write(f"Interrupted ({signal.Signals(signum).name}); nothing was written.\n")
            os._exit(128 + signum)
        if not (self.deferred and self.progressed):
            if _in_c_callback(frame):
                # Python drops an exception raised in a C library's callback into Python
                # (llvmlite calls one for each object Numba compiles): the signal was lost, or
                # Numba's state was broken and the run failed with a traceback. Sent again a
                # moment later, it arrives outside it
                threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
                return
            # reading, compiling (seconds on a first run) or writing: nothing to save yet, or
            # only complete files: stop now
            raise Interrupted(signum)
        self.signum = self.signum or signum
        self.event.set()

    def is_set(self):
        return self.event.is_set()


STOP = StopRequest()

# Python functions that C code calls back while Numba compiles (llvmlite's object cache hooks)
C_CALLBACKS = ("_raw_object_cache_notify", "_raw_object_cache_getbuffer")


def _in_c_callback(frame):
    while frame is not None:
        if frame.f_code.co_name in C_CALLBACKS:
            return True
        frame = frame.f_back
    return False


def _is_the_program():
    """Whether this process is the mlpfast command (its console script, or python -m mlpfast),
    not a program that imported the command line (a test)."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return os.path.basename(argv0) == "mlpfast" or argv0.endswith(os.path.join("mlpfast", "__main__.py"))


def _is_a_worker():
    """Whether this process is a child that the command started (a dask worker of `mlpfast
    sweep`: spawned children import the program's main module again)."""
    import multiprocessing
    # while a spawned child imports the main module, parent_process() is not known yet, but
    # the child already has the name its parent gave it
    return (multiprocessing.parent_process() is not None
            or multiprocessing.current_process().name != "MainProcess")


if _is_the_program():
    if _is_a_worker():
        # Ctrl-C (and a closed terminal) signal the whole process group: the command asks its
        # workers to stop at a checkpoint; a worker that died of the key press would lose
        # its trial's last stretch and leave half-written files
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    else:
        # from the first moment the commands' modules load (Numba's import takes a while), a
        # signal is one line and 128 + its number (StopRequest.handle), never a traceback
        for _sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(_sig, STOP.handle)


def _signum(exc):
    return getattr(exc, "signum", None) or STOP.signum or signal.SIGINT


def exit_code(exc):
    """128 + the signal's number (SIGINT: 130), as shells report a job a signal stopped."""
    return 128 + _signum(exc)


def signal_name(exc):
    return signal.Signals(_signum(exc)).name
