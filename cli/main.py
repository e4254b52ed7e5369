"""The `mlpfast` command: a thin Click shell over the mlpfast library.

Library errors (mlpfast.MLPFastError) become one `Error: ...` line and exit code 1 here, in one
place; usage errors exit 2 as Click does. stdout carries only what a command is asked to print.
"""
from .signals import STOP, exit_code, signal_name  # first: it handles signals from here on
import signal  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import click  # noqa: E402

from mlpfast import __version__  # noqa: E402
from mlpfast.errors import MLPFastError  # noqa: E402

from .common import compile_notices  # noqa: E402


class Group(click.Group):
    def invoke(self, ctx):
        STOP.__init__()  # a fresh request per command (tests run several in one process)
        STOP.active = True
        try:
            with warnings.catch_warnings(), compile_notices():
                warnings.simplefilter("ignore", category=DeprecationWarning)
                result = super().invoke(ctx)
            STOP.deferred = True  # the work is done and written: a late signal changes nothing
            return result
        except KeyboardInterrupt as exc:
            # Click would print 'Aborted!' and exit 1; nothing was written (files are renamed
            # into place only when complete)
            # a command whose partial work stays (compile) says so in exc.note
            note = getattr(exc, "note", "nothing was written")
            click.echo(f"Interrupted ({signal_name(exc)}); {note}.", err=True)
            sys.exit(exit_code(exc))
        except MLPFastError as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            if "threading layer" not in str(exc):
                raise
            import numba
            raise click.ClickException(
                f"Numba's threading layer {numba.config.THREADING_LAYER!r} cannot be loaded "
                "(NUMBA_THREADING_LAYER); install it (pip install tbb), or unset the variable") from None
        except OSError as exc:
            # a full disk or a vanished folder met outside the library's own checks
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            raise click.ClickException(f"cannot write or read{where}: "
                                       f"{exc.strerror or exc}") from None
        except MemoryError:
            raise click.ClickException(
                "out of memory; use a smaller network (--hidden), fewer rows, or fewer one-hot "
                "columns (--drop, --max-categories)") from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlpfast")
def cli():
    """Train multi-layer perceptrons on CSV files, fast, on the CPU (Numba) or a GPU (CUDA).

    \b
    Examples:
      mlpfast train                          # the bundled letter-recognition data
      mlpfast train data.csv --target price --hidden 128,64 --epochs 30
      mlpfast predict runs/latest data.csv --proba --out predictions.csv
      mlpfast evaluate runs/latest test.csv --json | jq .accuracy
      mlpfast plot runs/latest                  # learning curves: runs/latest/curves.png
    """


@cli.command()
def info():
    """Versions, Numba's threading layer and threads, CUDA availability and device.

    \b
    Example:
      mlpfast info
    """
    import platform

    import numba
    import numpy
    import pandas

    from mlpfast import bench
    from mlpfast.engine import cuda_device, cuda_status

    click.echo(f"mlpfast {__version__}")
    click.echo(f"python {platform.python_version()}, numba {numba.__version__}, "
               f"numpy {numpy.__version__}, pandas {pandas.__version__}, click {click.__version__}")
    click.echo(f"cpu: {bench._cpu_name()}, {numba.config.NUMBA_NUM_THREADS} threads available")
    layer = bench._threading_layer()
    threads = "-" if layer.startswith("unavailable") else numba.get_num_threads()
    click.echo(f"numba threading layer: {layer}, threads: {threads}")
    usable, why = cuda_status()
    if not usable:
        click.echo(f"cuda: not available ({why})")
        return
    name, cc, total, free = cuda_device()
    click.echo(f"cuda: {name}, compute capability {cc[0]}.{cc[1]}, "
               f"memory {total / 2**30:.1f} GiB ({free / 2**30:.1f} free)")


def main():
    # the console script's own handlers: from here to the end, a signal is one line and
    # 128 + its number, never a traceback (see StopRequest)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, STOP.handle)
    try:
        cli(prog_name="mlpfast")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    finally:
        # leaving: a signal now would only turn a finished command into a traceback
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)


# the commands attach themselves to `cli` when their modules load
from . import apply, bench, export, plot, precompile, sweep, train  # noqa: E402,F401

if __name__ == "__main__":
    main()
