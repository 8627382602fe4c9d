"""``ebr ingest``: records from a file into a local index or an OpenSearch index."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt

from ebr.cli.inputs import cluster_options, open_store
from ebr.cli.torch_extra import require_torch
from ebr.ingest.field_mapping import FieldMapping
from ebr.ingest.lines import RECORD_FORMATS
from ebr.ingest.pipeline import BATCH, ingest, report_dict
from ebr.mappings.schema import Schema
from ebr.stores.opensearch.store import OpenSearchStore


class _ModelEncoder:
    """A model directory's document tower, as the pipeline's DocumentEncoder."""

    def __init__(self, path: Path, threads: int) -> None:
        require_torch("ebr ingest --model")
        import torch

        from ebr.encoders.serving.model_directory import EncoderModel

        torch.set_num_threads(threads)
        self.model = EncoderModel.load(path)
        if self.model.info is None:
            raise click.BadParameter(f"{path} has no model.json (not a model directory)",
                                     param_hint="--model")
        self.key = self.model.info.key
        self.fingerprint = self.model.info.fingerprint

    def encode(self, records: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        return self.model.encode_docs(records)


def _count_lines(path: Path) -> int | None:
    """Records in ``path`` for the progress bar's total (lines, less a header), if cheap."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # the reader reports what is wrong with the file
            return None
    with path.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return lines - (path.suffix.lower() in (".tsv", ".tab", ".txt", ".csv"))


@click.command("ingest")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--store", "where", required=True, metavar="local:PATH|URL",
              help="A local index directory, or an OpenSearch cluster http(s)://host:port.")
@click.option("--index", help="The OpenSearch index (with an OpenSearch --store).")
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Create the index with this schema JSON if it does not exist.")
@click.option("--engine", type=click.Choice(["faiss", "lucene"]), default="faiss",
              show_default=True, help="k-NN engine of a new OpenSearch index.")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train`: its document tower embeds each record.")
@click.option("--mapping", "mapping_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Field mapping JSON (which record fields are the id, text, terms, vectors).")
@click.option("--format", "record_format", type=click.Choice(RECORD_FORMATS),
              help="Format of SOURCE (default: from the suffix).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=BATCH, show_default=True)
@click.option("--max-bad", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Stop when more than this share of the records are bad.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Where progress is saved (default: beside SOURCE's name in the current "
                   "directory); an interrupted ingest resumes from it.")
@click.option("--restart", is_flag=True, help="Ignore (and replace) an existing checkpoint.")
@cluster_options
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True,
              help="CPU threads for the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def ingest_command(source: Path, where: str, index: str | None, schema_path: Path | None,
                   engine: str, model_path: Path | None, mapping_path: Path | None,
                   record_format: str | None, batch_size: int, max_bad: float,
                   checkpoint: Path | None, restart: bool, ca_certs: str | None, user: str | None,
                   threads: int,
                   as_json: bool, quiet: bool) -> None:
    """Write the records of SOURCE (JSONL, TSV, CSV or Parquet) into a store, in batches:
    each record mapped to a document (--mapping; by default the fields named like the
    schema's namespaces and keys), embedded with --model if given, coarse quantizers trained
    once enough documents are in.  Bad records are skipped and reported with their line.

    \b
    Examples:
      ebr ingest products.jsonl --store local:./products --schema schema.json --model model
      ebr ingest products.parquet --store https://search:9200 --index products --model model
    """
    from tqdm import tqdm  # type: ignore[import-untyped]

    schema = Schema.load(schema_path) if schema_path else None
    mapping = FieldMapping.load(mapping_path) if mapping_path else None
    encoder = _ModelEncoder(model_path, threads) if model_path else None
    if checkpoint is None:
        tag = hashlib.sha256(f"{source.resolve()}|{where}|{index}".encode()).hexdigest()[:10]
        checkpoint = Path(f".{source.name}.{tag}.ebr-checkpoint")
    if restart:
        checkpoint.unlink(missing_ok=True)
    with open_store(where, index, engine=engine, schema=schema, ca_certs=ca_certs,
                    user=user) as store, \
            tqdm(total=_count_lines(source), unit="record", disable=quiet, desc="ingest",
                 dynamic_ncols=True) as bar:
        if (encoder is not None and isinstance(store, OpenSearchStore)
                and store.schema.key(encoder.key) is not None):
            store.set_fingerprint(encoder.key, encoder.fingerprint)  # which model embedded
        try:
            report = ingest(store, source, mapping=mapping, encoder=encoder, format=record_format,
                            batch_size=batch_size, checkpoint=checkpoint,
                            max_bad_fraction=max_bad, progress=bar.update)
        except KeyboardInterrupt:
            raise click.ClickException(f"interrupted: what was written stays; run the same "
                                       f"command again to resume (checkpoint {checkpoint})"
                                       ) from None
    if as_json:
        click.echo(json.dumps(report_dict(report), indent=2, default=str))
    else:
        click.echo(report.summary())
