"""``ebr train``: train a two-tower encoder on query–document pairs into a model directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ebr.cli.torch_extra import require_torch
from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.training.config import LOSSES, TrainConfig
from ebr.encoders.training.pairs import read_pairs
from ebr.ingest.lines import MAX_SKIPPED_FRACTION, check_skipped
from ebr.ingest.records import Record, read_records

if TYPE_CHECKING:
    from ebr.encoders.training.pairs import Pair

Problem = Callable[[Record], str | None]

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_FORMAT = click.Choice(["jsonl", "tsv"])


@click.command("train")
@click.argument("pairs", type=_FILE)
@click.option("--encoder", "encoder_path", required=True, type=_FILE,
              help="Encoder config JSON: the channels of each tower (see ebr.encoders.encoder_config).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Model directory to write (replaced if it holds a model).")
@click.option("--train-config", "train_config_path", type=_FILE,
              help="Training settings JSON (see ebr.encoders.TrainConfig); flags override it.")
@click.option("--validation", "validation_path", type=_FILE,
              help="Validation pairs (default: hold out --validation-fraction of the queries).")
@click.option("--corpus", "corpus_path", type=_FILE,
              help="Extra documents (JSONL/TSV records) for negatives and KNN recall.")
@click.option("--format", "pair_format", type=_FORMAT,
              help="Format of the pair files (default: from the suffix).")
@click.option("--epochs", type=click.IntRange(1), help="Stage-1 epochs.")
@click.option("--batch-size", type=click.IntRange(2), help="Pairs per batch.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), help="Adam learning rate.")
@click.option("--loss", type=click.Choice(LOSSES), help="Stage-1 loss.")
@click.option("--random-negatives", type=click.IntRange(0), help="Random corpus negatives per batch.")
@click.option("--hard-negatives/--no-hard-negatives", default=None,
              help="Mine hard negatives (ranks 101-500) each epoch after the first.")
@click.option("--curriculum-epochs", type=click.IntRange(0),
              help="Epochs of the stage-2 hardest-negative margin loss after stage 1.")
@click.option("--positive-threshold", type=float, help="Labels at or above this are positives.")
@click.option("--pseudo-queries", type=click.FloatRange(0, 100),
              help="Pseudo queries (1-4 word spans of a document field) per corpus document per epoch.")
@click.option("--patience", type=click.IntRange(1), help="Epochs without a better validation KNN recall "
              "before stopping (or moving on to the curriculum).")
@click.option("--validation-fraction", type=click.FloatRange(0, 0.9), help="Share of queries held out.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), help="Random seed (runs are reproducible).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
@click.option("--restart", is_flag=True, help="Ignore a checkpoint left by an interrupted run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_command(pairs: Path, encoder_path: Path, output: Path, train_config_path: Path | None,
                  validation_path: Path | None, corpus_path: Path | None, pair_format: str | None,
                  epochs: int | None, batch_size: int | None, learning_rate: float | None, loss: str | None,
                  random_negatives: int | None, hard_negatives: bool | None, curriculum_epochs: int | None,
                  positive_threshold: float | None, pseudo_queries: float | None, patience: int | None,
                  validation_fraction: float | None, seed: int | None, threads: int | None, restart: bool,
                  quiet: bool) -> None:
    """Train a two-tower encoder on PAIRS (TSV or JSONL query–document pairs) and write the
    model directory: config, weights, vocabulary and the embedding key (model-NNNNNNNNN) to
    declare in the index schema.

    An interrupted run resumes from its last completed epoch when started again with the same
    arguments (the checkpoint is kept in OUTPUT.training until the model is written).
    """
    require_torch("ebr train")
    from ebr.encoders.features.tower_featurizer import RecordChecker
    from ebr.encoders.training.data import prepare
    from ebr.encoders.training.trainer import train_model_directory

    encoder = EncoderConfig.load(encoder_path)
    config = TrainConfig.load(train_config_path) if train_config_path else TrainConfig()
    config = config.replace(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, loss=loss,
        random_negatives=random_negatives, hard_negatives=hard_negatives, curriculum_epochs=curriculum_epochs,
        positive_threshold=positive_threshold, pseudo_queries=pseudo_queries, patience=patience,
        validation_fraction=validation_fraction, seed=seed, threads=threads)
    query_problem, doc_problem = RecordChecker(encoder.query), RecordChecker(encoder.doc)
    train_pairs = _pairs(pairs, pair_format, query_problem, doc_problem)
    validation = _pairs(validation_path, pair_format, query_problem, doc_problem) if validation_path else None
    corpus: list[Record] = []
    if corpus_path is not None:
        corpus_file = read_records(corpus_path)
        corpus_file.drop_unusable(doc_problem)
        _report_skipped(corpus_file.skipped_report())
        check_skipped(corpus_path, corpus_file.skipped, len(corpus_file.records), MAX_SKIPPED_FRACTION,
                      "record")
        corpus = corpus_file.records
    data = prepare(train_pairs, config, validation, corpus)
    click.echo(f"{len(data.train):,} training pairs ({len(data.train_positives):,} positive), "
               f"{len(data.validation):,} validation pairs, {len(data.corpus):,} documents", err=True)
    work = output.with_name(output.name + ".training")
    if restart and work.exists():
        shutil.rmtree(work)
    try:
        info, result = train_model_directory(encoder, config, data, output, work_dir=work,
                                             progress=not quiet, log=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; the last completed epoch is saved in {work}: run the same "
                                   "command again to resume") from None
    click.echo(f"wrote {output}: embedding key {info.key}, {info.output_dim}-d, best epoch "
               f"{result.best_epoch} of {len(result.history)}"
               + (" (stopped early)" if result.stopped_early else ""))


def _pairs(path: Path, pair_format: str | None, query_problem: Problem, doc_problem: Problem) -> list[Pair]:
    file = read_pairs(path, format=pair_format)
    file.drop_unusable(query_problem, doc_problem)
    _report_skipped(file.skipped_report())
    check_skipped(path, file.skipped, len(file.pairs), MAX_SKIPPED_FRACTION, "pair")
    return file.pairs


def _report_skipped(report: str) -> None:
    if report:
        click.echo(report, err=True)
