"""``ebr encode``: documents (or queries) → a vectors file, with a trained model directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
import numpy as np

from ebr.cli.torch_extra import require_torch
from ebr.ingest.lines import MAX_SKIPPED_FRACTION, check_skipped
from ebr.ingest.records import read_records


@click.command("encode")
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("records", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Vectors file to write (.npz: ids, vectors, key).")
@click.option("--side", type=click.Choice(["doc", "query"]), default="doc", show_default=True,
              help="Which tower encodes the records.")
@click.option("--format", "record_format", type=click.Choice(["jsonl", "tsv"]),
              help="Format of RECORDS (default: from the suffix).")
@click.option("--batch-size", type=click.IntRange(1), default=1024, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True,
              help="CPU threads for torch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def encode_command(model: Path, records: Path, output: Path, side: str, record_format: str | None,
                   batch_size: int, threads: int, quiet: bool) -> None:
    """Encode RECORDS (JSONL objects or TSV with a header; the fields the MODEL's tower reads)
    into unit-norm float32 vectors.  Each record's id is its "id" field, else its line number.
    Bad lines are skipped and reported."""
    require_torch("ebr encode")
    import torch

    from ebr.encoders.features.tower_featurizer import RecordChecker
    from ebr.encoders.serving.model_directory import EncoderModel

    torch.set_num_threads(threads)
    encoder = EncoderModel.load(model)
    file = read_records(records, format=record_format)
    file.drop_unusable(RecordChecker(encoder.config.doc if side == "doc" else encoder.config.query))
    if file.skipped:
        click.echo(file.skipped_report(), err=True)
    check_skipped(records, file.skipped, len(file.records), MAX_SKIPPED_FRACTION, "record")
    ids = np.array([str(r.get("id", line)) for r, line in zip(file.records, file.lines, strict=True)])
    encode = encoder.encode_docs if side == "doc" else encoder.encode_queries
    vectors = encode(file.records, batch_size=batch_size, progress=not quiet)
    key = encoder.info.key if encoder.info else ""
    # Written beside the target and renamed, so an interrupted run leaves no truncated file.
    handle, partial = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".npz", dir=output.parent or ".")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, ids=ids, vectors=vectors, key=np.array(key))
        os.replace(partial, output)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    click.echo(f"wrote {len(ids):,} {vectors.shape[1]}-d vectors ({key}) to {output}")
