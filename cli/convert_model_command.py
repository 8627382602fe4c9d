"""``ebr convert-model``: rewrite a model directory in the current format, tables as asked."""

from __future__ import annotations

from pathlib import Path

import click

from ebr.cli.torch_extra import require_torch
from ebr.encoders.serving.model_files import TABLE_PRECISIONS, WEIGHTS_FILE


@click.command("convert-model")
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model directory to write (replaced if it holds a model; may be MODEL itself).")
@click.option("--tables", type=click.Choice(TABLE_PRECISIONS), default="float32", show_default=True,
              help="Precision of the hashed embedding tables (float16 halves them; the dense layers "
                   "stay float32).")
def convert_model_command(model: Path, output: Path, tables: str) -> None:
    """Rewrite the model directory MODEL (any format ebr reads, e.g. an older ebr's weights.pt)
    with its parameters stored once in weights.safetensors, which a bag-only query tower is
    served from without torch.  float32 keeps the model's embedding key; float16 tables are
    another model, with a key of its own (re-encode the documents with it)."""
    require_torch("ebr convert-model")
    from ebr.encoders.serving.model_directory import EncoderModel, save_model_directory

    encoder = EncoderModel.load(model)
    training = encoder.info.training if encoder.info else {}
    info = save_model_directory(output, encoder.model, encoder.vocabulary, training, tables=tables)
    size = (output / WEIGHTS_FILE).stat().st_size
    click.echo(f"wrote {output} ({info.key}, {tables} tables, {WEIGHTS_FILE} {size / 2**20:,.1f} MiB)")
