"""`mlpfast export`: a saved model as a file for other runtimes (ONNX), through mlpfast.export."""
import click

from .common import notes_to_stderr
from .main import cli


@cli.command()
@click.argument("model", type=click.Path())
@click.option("--onnx", "onnx_file", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write, replaced only when complete.")
@click.option("--force", is_flag=True, help="Replace the file if it already exists.")
def export(model, onnx_file, force):
    """Write MODEL (a run folder or its model.npz) as one ONNX graph: the raw columns in, the
    label and class probabilities (or the value) out, served by onnxruntime without mlpfast.

    One input per feature column, named as the column, shape [N, 1]: float32 for numeric and
    boolean columns (NaN when missing), float64 seconds since 1970 for date-times, strings for
    categorical ones (the field's text; '' when missing). The graph imputes, standardises and
    one-hot encodes as mlpfast does (see the README's "Export to ONNX"). Needs the onnx extra:
    pip install 'mlpfast[onnx]'.

    \b
    Examples:
      mlpfast export runs/adult --onnx adult.onnx
      mlpfast export runs/adult/model.npz --onnx adult.onnx --force
    """
    from mlpfast import tabular
    from mlpfast.export import write_onnx
    run = tabular.load(model)
    with notes_to_stderr():
        proto = write_onnx(run, onnx_file, force=force)
    outputs = ", ".join(o.name for o in proto.graph.output)
    click.echo(f"wrote {onnx_file}: {len(proto.graph.input)} input column(s) -> {outputs} "
               f"(ONNX opset {proto.opset_import[0].version})", err=True)


__all__ = ["export"]
