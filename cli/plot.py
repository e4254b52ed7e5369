"""`mlpfast plot`: a run folder's learning curves as a figure; a thin shell over
mlpfast.plots.plot_run."""
import click

from .main import cli


@cli.command()
@click.argument("run_folder", metavar="RUN|SWEEP", type=click.Path())
@click.option("--out", "out_file", type=click.Path(),
              help="Figure to write: .png, .svg or .pdf, replaced only when complete. "
                   "[default: RUN/curves.png, SWEEP/sweep.png]")
def plot(run_folder, out_file):
    """Draw the learning curves of a training run, or a sweep's metric against its options.

    RUN is a run folder written by `mlpfast train` (finished, interrupted, diverged or still
    training: whatever epochs its metrics.csv holds). Panels over epochs: training and
    validation loss; training and validation accuracy (classification) or validation R2
    (regression); the learning rate when it changed. A dashed line marks the best epoch, the
    one whose model the run keeps.

    SWEEP is a folder written by `mlpfast sweep`: a panel per varied option, the validation
    accuracy or R2 (else the test score, else the training loss) of each finished trial
    against the option's values, a colour per data file.

    Needs matplotlib (pip install 'mlpfast[plot]').

    \b
    Examples:
      mlpfast plot runs/letters                   # writes runs/letters/curves.png
      mlpfast plot runs/letters --out letters.svg
      mlpfast train --epochs 30 --out runs/letters --plot   # the same, after training
      mlpfast plot sweeps/shops                   # writes sweeps/shops/sweep.png
    """
    import os

    from mlpfast import plots
    plots.require_matplotlib("mlpfast plot")
    if os.path.isfile(os.path.join(run_folder, "results.json")):
        written = plots.plot_sweep(run_folder, out_file, option="--out")
    else:
        written = plots.plot_run(run_folder, out_file, option="--out")
    click.echo(f"wrote {written}", err=True)


__all__ = ["plot"]
