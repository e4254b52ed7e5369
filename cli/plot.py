"""`mlpfast plot`: a run folder's learning curves as a figure; a thin shell over
mlpfast.plots.plot_run."""
import click

from .main import cli


@cli.command()
@click.argument("run_folder", metavar="RUN", type=click.Path())
@click.option("--out", "out_file", type=click.Path(),
              help="Figure to write: .png, .svg or .pdf, replaced only when complete. "
                   "[default: RUN/curves.png]")
def plot(run_folder, out_file):
    """Draw the learning curves of a training run.

    RUN is a run folder written by `mlpfast train` (finished, interrupted, diverged or still
    training: whatever epochs its metrics.csv holds). Panels over epochs: training and
    validation loss; training and validation accuracy (classification) or validation R2
    (regression); the learning rate when it changed. A dashed line marks the best epoch, the
    one whose model the run keeps. Needs matplotlib (pip install 'mlpfast[plot]').

    \b
    Examples:
      mlpfast plot runs/letters                   # writes runs/letters/curves.png
      mlpfast plot runs/letters --out letters.svg
      mlpfast train --epochs 30 --out runs/letters --plot   # the same, after training
    """
    from mlpfast import plots
    plots.require_matplotlib("mlpfast plot")
    written = plots.plot_run(run_folder, out_file, option="--out")
    click.echo(f"wrote {written}", err=True)


__all__ = ["plot"]
