"""`mlpfast compile`: the kernels into Numba's cache ahead of the first run (container images,
CI), a thin shell over mlpfast.compiling.compile_kernels."""
import sys

import click

from .common import Ticker
from .main import cli

CHOICES_ALL = "all"


@cli.command("compile")
@click.option("--dtype", type=click.Choice(["float32", "float64", CHOICES_ALL]), default=CHOICES_ALL,
              show_default=True, help="The training dtypes to compile for.")
@click.option("--device", type=click.Choice(["cpu", "cuda", CHOICES_ALL]), default="cpu",
              show_default=True, help="The engines to compile for.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Processes compiling at once, each dtype in one  [default: the usable CPUs]")
@click.option("--quiet", "-q", is_flag=True, help="Say nothing unless it fails.")
def compile_(dtype, device, jobs, quiet):
    """Compile every kernel variant a run may need into Numba's on-disk cache, so that the
    first train, fit and predict afterwards load them instead of compiling (10-30 s each on
    2 cores). For container images and CI: run it where the image is built, with
    NUMBA_CACHE_DIR pointing at a folder kept in the image (Numba caches beside the package,
    or in ~/.cache, otherwise). The cache holds code for this CPU: a run on another CPU kind
    compiles again (and says so).

    \b
    Examples:
      mlpfast compile
      mlpfast compile --dtype float32
      NUMBA_CACHE_DIR=/opt/mlpfast/numba-cache mlpfast compile -q
    """
    from mlpfast import compiling
    from mlpfast.cluster import cores
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    if device in ("cuda", CHOICES_ALL):
        installed, line = _cuda_line()
        if device == "cuda" and not installed:
            raise click.ClickException(line)
        say(("cuda: " if installed else "cuda skipped: ") + line)
        if device == "cuda":
            return
    dtypes = compiling.DTYPES if dtype == CHOICES_ALL else (dtype,)
    jobs = jobs or cores()
    tty = not quiet and sys.stderr.isatty()
    state = {"ticker": None}
    others = dtypes[1:] if jobs > 1 else ()
    aside = f" ({', '.join(others)} in another process)" if others else ""

    def on_step(dt, name):
        if dt in others:  # all announced at its start
            return
        _stop(state)
        label = f"{dt} {name}{aside}"
        if tty:
            state["ticker"] = Ticker(lambda s: (sys.stderr.write(f"\r{label}: {s:.0f} s\033[K"),
                                                sys.stderr.flush()))

    try:
        steps = compiling.compile_kernels(dtypes, on_step=on_step, processes=jobs)
    except KeyboardInterrupt as exc:
        # Numba writes each kernel to its cache as it is compiled: those stay
        exc.note = ("the kernels compiled so far stay cached; mlpfast compile again compiles "
                    "the rest")
        raise
    finally:
        _stop(state)
    for s in steps:
        how = (f"compiled {s.compiled} functions" if s.compiled else "already cached")
        say(f"{s.dtype} {', '.join(s.kernels)}: {how} in {s.seconds:.1f} s")
    total = sum(s.seconds for s in steps)
    say(f"kernels cached in {compiling.cache_folder()} ({total:.1f} s)")


def _stop(state):
    ticker, state["ticker"] = state["ticker"], None
    if ticker is not None:
        ticker.stop()
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _cuda_line():
    """(numba-cuda importable, one line: what to install, or why nothing compiles ahead)."""
    try:
        from numba import cuda  # noqa: F401
    except Exception:  # noqa: BLE001 (missing or broken: either way, install it)
        return False, "the CUDA engine needs numba-cuda: pip install 'mlpfast[cuda]'"
    return True, ("nothing to compile ahead: the CUDA kernels are built for each network when "
                  "a run starts (seconds, on the GPU) and Numba does not cache them on disk")
