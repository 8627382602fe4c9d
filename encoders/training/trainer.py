"""The training loop: seeded, resumable, validated each epoch, stopped early when it stops helping.

:func:`train` runs ``config.epochs`` epochs of the configured loss (stage 1), then
``config.curriculum_epochs`` of the in-batch hardest-negative margin loss (Que2Search's stage
2).  After every epoch it measures the validation split — batch recall@K, ROC AUC when pairs are
labelled both ways, KNN recall@K over the whole corpus — keeps the best model by KNN recall, and
writes a checkpoint (model, optimisers, random states, history) to ``work_dir``.  Started again
with the same ``work_dir`` it resumes after the last completed epoch and ends with the same
weights an uninterrupted run would have.

:func:`train_model_directory` is the whole job behind ``ebr train``: train, then write the model
directory (see :mod:`ebr.encoders.serving.model_directory`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from ebr.encoders.encoder_config import EncoderConfig, TextTransformerChannel
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.featurized_records import FeaturizedRecords
from ebr.encoders.features.tokenizer import train_sentencepiece
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.model.bag_channel import BagChannel
from ebr.encoders.model.losses import (
    HardestNegativeMarginLoss,
    MixedNegativesSoftmaxLoss,
    SymmetricInBatchSoftmaxLoss,
    TripletLoss,
)
from ebr.encoders.model.towers import TwoTowerModel
from ebr.encoders.serving.model_directory import save_model_directory
from ebr.encoders.serving.model_files import VOCABULARY_FILE, ModelInfo, tokenizer_for
from ebr.encoders.training.config import TrainConfig
from ebr.encoders.training.data import (
    TrainingData,
    batches,
    epoch_examples,
    query_key,
    records_texts,
)
from ebr.encoders.training.hard_negatives import HardNegatives
from ebr.encoders.training.metrics import batch_recall_at_k, knn_recall_at_k, roc_auc
from ebr.ingest.records import Record

CHECKPOINT_FILE = "checkpoint.pt"
_ENCODE_BATCH = 1024

Log = Callable[[str], None]


@dataclass(slots=True)
class EpochReport:
    """What one epoch did; the validation figures are None without a validation split."""

    epoch: int
    stage: int
    loss: float
    batch_recall: float
    seconds: float
    validation_batch_recall: float | None = None
    validation_roc_auc: float | None = None
    validation_knn_recall: float | None = None

    def line(self, config: TrainConfig) -> str:
        parts = [f"epoch {self.epoch}/{config.total_epochs}", f"stage {self.stage}", f"loss {self.loss:.4f}",
                 f"batch recall@{config.recall_k} {self.batch_recall:.3f}"]
        if self.validation_knn_recall is not None:
            parts.append(f"validation: batch recall@{config.recall_k} {self.validation_batch_recall:.3f}")
            if self.validation_roc_auc is not None:
                parts.append(f"ROC AUC {self.validation_roc_auc:.3f}")
            parts.append(f"KNN recall@{config.knn_recall_k} {self.validation_knn_recall:.4f}")
        parts.append(f"{self.seconds:.0f}s")
        return ", ".join(parts)


@dataclass(slots=True)
class TrainResult:
    model: TwoTowerModel
    vocabulary: bytes | None
    history: list[EpochReport] = field(default_factory=list)
    best_epoch: int = 0  # the EpochReport.epoch whose weights the model holds
    stopped_early: bool = False
    resumed_from: int = 0

    def summary(self, config: TrainConfig) -> dict[str, Any]:
        """The training record kept in ``model.json``."""
        return {
            "config": config.to_dict(),
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "history": [dataclasses.asdict(r) for r in self.history],
        }


def train(
    encoder: EncoderConfig,
    config: TrainConfig,
    data: TrainingData,
    work_dir: str | Path,
    *,
    progress: bool = False,
    log: Log | None = None,
) -> TrainResult:
    """Train a :class:`TwoTowerModel` on ``data``; ``work_dir`` holds the checkpoint and the
    vocabulary, and is where an interrupted run resumes from."""
    say: Log = log or (lambda _: None)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    _check_pseudo_queries(encoder, config)
    torch.set_num_threads(config.threads)
    vocabulary = _vocabulary(encoder, data, work, say)
    torch.manual_seed(config.seed)
    model = TwoTowerModel(encoder)
    tokenizer = tokenizer_for(encoder, vocabulary)
    query_features = TowerFeaturizer(encoder.query, encoder.hash_seed, tokenizer)
    doc_features = TowerFeaturizer(encoder.doc, encoder.hash_seed, tokenizer)
    corpus = FeaturizedRecords(doc_features, data.corpus)
    sparse, dense = _parameters(model)
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=config.learning_rate)]
    if sparse:
        optimizers.append(torch.optim.SparseAdam(sparse, lr=config.embedding_learning_rate))
    rng = random.Random(config.seed)
    result = TrainResult(model, vocabulary)
    best_state: dict[str, torch.Tensor] | None = None
    best_score = -1.0
    start = stale = 0
    checkpoint_path = work / CHECKPOINT_FILE
    if checkpoint_path.is_file():
        state = _load_checkpoint(checkpoint_path, encoder, config)
        model.load_state_dict(state["model"])
        for optimizer, saved in zip(optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        rng.setstate(state["python_random"])
        torch.set_rng_state(state["torch_random"])
        result.history = [EpochReport(**r) for r in state["history"]]
        best_state, best_score = state["best_state"], state["best_score"]
        result.best_epoch = state["best_epoch"]
        stale, result.stopped_early = state["stale"], state["stopped_early"]
        start = state["next_epoch"]
        result.resumed_from = len(result.history)
        say(f"resuming after {len(result.history)} epoch(s) (checkpoint {checkpoint_path})")

    validation_queries, validation_relevant = data.validation_queries()
    train_queries, train_relevant = data.train_queries()
    train_query_rows = {query_key(q): i for i, q in enumerate(train_queries)}
    corpus_embeddings: npt.NDArray[np.float32] | None = None
    epoch = start
    while epoch < config.total_epochs and not result.stopped_early:
        stage = 1 if epoch < config.epochs else 2
        if stage == 2 and (not result.history or result.history[-1].stage == 1) and best_state is not None:
            # Que2Search's stage 2 refines the converged stage-1 model: its best epoch.
            model.load_state_dict(best_state)
            corpus_embeddings, stale = None, 0
            for optimizer in optimizers:
                for group in optimizer.param_groups:
                    group["lr"] *= config.curriculum_learning_rate_scale
        mined: HardNegatives | None = None
        if stage == 1 and config.hard_negatives and epoch > 0:
            if corpus_embeddings is None:
                corpus_embeddings = _encode_corpus(model, corpus)
            mined = HardNegatives.mine(_encode(model, query_features, train_queries, doc=False),
                                       train_relevant, corpus_embeddings, config.hard_negative_band,
                                       config.easy_hard_ratio)
        report = _epoch(model, optimizers, query_features, corpus, data, config, rng, epoch, stage,
                        mined, train_query_rows, progress)
        corpus_embeddings = None
        if validation_queries:
            corpus_embeddings = _encode_corpus(model, corpus)
            _validate(report, model, query_features, data, config, validation_queries, validation_relevant,
                      corpus_embeddings)
        result.history.append(report)
        say(report.line(config))
        epoch += 1
        score = report.validation_knn_recall if report.validation_knn_recall is not None else float(epoch)
        if score > best_score:
            best_score, result.best_epoch, stale = score, report.epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience and validation_queries and epoch < config.total_epochs:
                metric = f"KNN recall@{config.knn_recall_k} has not improved for {stale} epoch(s)"
                if stage == 1 and config.curriculum_epochs:
                    say(f"stage 1 has converged ({metric}); on to stage 2")
                    epoch = config.epochs
                else:
                    result.stopped_early = True
                    say(f"stopping early: {metric}; keeping epoch {result.best_epoch}")
        _save_checkpoint(checkpoint_path, encoder, config, model, optimizers, rng, result, best_state,
                         best_score, stale, epoch)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def train_model_directory(
    encoder: EncoderConfig,
    config: TrainConfig,
    data: TrainingData,
    output: str | Path,
    *,
    work_dir: str | Path | None = None,
    progress: bool = False,
    log: Log | None = None,
) -> tuple[ModelInfo, TrainResult]:
    """Train and write the model directory ``output``; the checkpoint lives in ``work_dir``
    (default: ``<output>.training`` beside it) until the model is written, then is removed."""
    output = Path(output)
    work = Path(work_dir) if work_dir is not None else output.with_name(output.name + ".training")
    result = train(encoder, config, data, work, progress=progress, log=log)
    info = save_model_directory(output, result.model, result.vocabulary, result.summary(config))
    shutil.rmtree(work, ignore_errors=True)
    return info, result


# -- one epoch ------------------------------------------------------------------------------


def _epoch(
    model: TwoTowerModel,
    optimizers: Sequence[torch.optim.Optimizer],
    query_features: TowerFeaturizer,
    corpus: FeaturizedRecords,
    data: TrainingData,
    config: TrainConfig,
    rng: random.Random,
    epoch: int,
    stage: int,
    mined: HardNegatives | None,
    train_query_rows: Mapping[str, int],
    progress: bool,
) -> EpochReport:
    from tqdm import tqdm  # type: ignore[import-untyped]

    started = time.perf_counter()
    model.train()
    examples = epoch_examples(data, config, rng)
    if stage == 2:
        loss_fn: nn.Module = HardestNegativeMarginLoss(config.curriculum_margin, "sum")
    elif config.loss == "triplet":
        loss_fn = TripletLoss(config.margin)
    elif config.loss == "symmetric_softmax":
        loss_fn = SymmetricInBatchSoftmaxLoss(config.scale)
    else:
        loss_fn = MixedNegativesSoftmaxLoss(config.scale)
    total_loss = total_recall = 0.0
    steps = 0
    bar = tqdm(total=len(examples), disable=not progress, unit="pair", leave=False,
               desc=f"epoch {epoch + 1}/{config.total_epochs}")
    with bar:
        for batch in batches(examples, config.batch_size):
            if len(batch) < 2 and stage == 2:
                continue  # the hardest in-batch negative needs a second pair
            queries = [q for q, _ in batch]
            query = model.encode_query(query_features.featurize(queries))
            doc = model.encode_doc(corpus.batch([d for _, d in batch]))
            if stage == 2:
                loss = loss_fn(query, doc)
            else:
                negatives = _negatives(batch, config, rng, mined, train_query_rows, len(data.corpus))
                extra = model.encode_doc(corpus.batch(negatives)) if negatives else doc[:0]
                loss = loss_fn(query, doc, extra)  # triplet: one negative per query; softmax: extras
            for optimizer in optimizers:
                optimizer.zero_grad()
            loss.backward()
            for optimizer in optimizers:
                optimizer.step()
            steps += 1
            total_loss += float(loss.detach())
            total_recall += batch_recall_at_k(query.detach(), doc.detach(), config.recall_k)
            bar.update(len(batch))
            bar.set_postfix(loss=f"{total_loss / steps:.4f}",
                            recall=f"{total_recall / steps:.3f}", refresh=False)
    return EpochReport(epoch + 1, stage, total_loss / max(steps, 1), total_recall / max(steps, 1),
                       time.perf_counter() - started)


def _negatives(
    batch: Sequence[tuple[Record, int]],
    config: TrainConfig,
    rng: random.Random,
    mined: HardNegatives | None,
    train_query_rows: Mapping[str, int],
    corpus_size: int,
) -> list[int]:
    """Corpus rows of the batch's extra negatives: for the triplet loss one per query (mined
    or random); for a softmax loss ``random_negatives`` random rows plus, with hard negatives
    on, one mined-or-random row per query, all shared by the batch as extra candidates."""
    per_query = config.loss == "triplet" or mined is not None
    rows: list[int] = []
    if per_query:
        for query, _ in batch:
            row = train_query_rows.get(query_key(query)) if mined is not None else None
            rows.append(mined.sample(row, rng) if mined is not None and row is not None
                        else rng.randrange(corpus_size))
    if config.loss != "triplet":
        rows += [rng.randrange(corpus_size) for _ in range(config.random_negatives)]
    return rows


# -- validation -----------------------------------------------------------------------------


def _validate(
    report: EpochReport,
    model: TwoTowerModel,
    query_features: TowerFeaturizer,
    data: TrainingData,
    config: TrainConfig,
    queries: Sequence[Record],
    relevant: Sequence[set[int]],
    corpus_embeddings: npt.NDArray[np.float32],
) -> None:
    positives = [e for e in data.validation if e.positive]
    recalls: list[float] = []
    with torch.no_grad():
        for batch in batches([(e.query, e.doc) for e in positives], config.batch_size):
            if len(batch) < 2:
                continue
            query = model.encode_query(query_features.featurize([q for q, _ in batch]))
            doc = torch.from_numpy(corpus_embeddings[[d for _, d in batch]])
            recalls.append(batch_recall_at_k(query, doc, config.recall_k))
        labelled = [e for e in data.validation if e.labelled]
        if labelled:
            embedded = _encode(model, query_features, [e.query for e in labelled], doc=False)
            scores = (embedded * corpus_embeddings[[e.doc for e in labelled]]).sum(axis=1)
            report.validation_roc_auc = roc_auc(scores, [e.positive for e in labelled])
    report.validation_batch_recall = float(np.mean(recalls)) if recalls else 0.0
    report.validation_knn_recall = knn_recall_at_k(
        _encode(model, query_features, queries, doc=False), relevant, corpus_embeddings, config.knn_recall_k)


def _encode(model: TwoTowerModel, featurizer: TowerFeaturizer, records: Sequence[Record], *,
            doc: bool) -> npt.NDArray[np.float32]:
    tower = model.doc_tower if doc else model.query_tower
    starts = range(0, len(records), _ENCODE_BATCH)
    return tower.embed((featurizer.featurize(records[i:i + _ENCODE_BATCH]) for i in starts), len(records))


def _encode_corpus(model: TwoTowerModel, corpus: FeaturizedRecords) -> npt.NDArray[np.float32]:
    n = len(corpus)
    chunks = (corpus.batch(np.arange(i, min(i + _ENCODE_BATCH, n))) for i in range(0, n, _ENCODE_BATCH))
    return model.doc_tower.embed(chunks, n)


# -- set-up and checkpoints -----------------------------------------------------------------


def _parameters(model: TwoTowerModel) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(sparse-gradient embedding tables, everything else), each parameter once even when
    the towers share it."""
    sparse_ids = {id(m.bag.weight) for m in model.modules() if isinstance(m, BagChannel)}
    sparse: dict[int, nn.Parameter] = {}
    dense: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        (sparse if id(p) in sparse_ids else dense)[id(p)] = p
    return list(sparse.values()), list(dense.values())


def _vocabulary(encoder: EncoderConfig, data: TrainingData, work: Path, say: Log) -> bytes | None:
    """The SentencePiece model the text transformer channels need, trained on the training
    queries and the corpus (once: a resumed run reuses it)."""
    channels = [(side, c) for side, t in (("query", encoder.query), ("doc", encoder.doc)) for c in t.channels
                if isinstance(c, TextTransformerChannel)]
    if not channels:
        return None
    sizes = {c.vocab_size for _, c in channels}
    if len(sizes) != 1:
        raise EncoderConfigError(f"the text_transformer channels share one vocabulary, so their vocab_size "
                                 f"must be equal; got {sorted(sizes)}")
    path = work / VOCABULARY_FILE
    if not path.is_file():
        query_fields = [c.field for side, c in channels if side == "query"]
        doc_fields = [c.field for side, c in channels if side == "doc"]
        texts = list(records_texts([e.query for e in data.train], query_fields))
        texts += records_texts(data.corpus, doc_fields)
        say(f"training a SentencePiece vocabulary of {sizes.pop()} pieces on {len(texts):,} texts")
        train_sentencepiece(texts, path, channels[0][1].vocab_size)
    return path.read_bytes()


def _check_pseudo_queries(encoder: EncoderConfig, config: TrainConfig) -> None:
    if not config.pseudo_queries:
        return
    source, target = config.pseudo_query_fields
    text_fields = {c.field for c in encoder.query.channels if c.kind != "categorical"}
    if text_fields != {target}:
        raise EncoderConfigError(f"pseudo queries fill only the query field {target!r}, but the query tower "
                                 f"reads text from {sorted(text_fields)}; set pseudo_query_fields or "
                                 "pseudo_queries 0")
    if source not in {c.field for c in encoder.doc.channels}:
        raise EncoderConfigError(f"pseudo queries are cut from the document field {source!r}, which no "
                                 "document channel reads; set pseudo_query_fields")


def _save_checkpoint(path: Path, encoder: EncoderConfig, config: TrainConfig, model: TwoTowerModel,
                     optimizers: Sequence[torch.optim.Optimizer], rng: random.Random, result: TrainResult,
                     best_state: Mapping[str, torch.Tensor] | None, best_score: float, stale: int,
                     next_epoch: int) -> None:
    state = {
        "encoder": encoder.to_dict(),
        "train": _resumable(config),
        "model": model.state_dict(),
        "optimizers": [o.state_dict() for o in optimizers],
        "python_random": rng.getstate(),
        "torch_random": torch.get_rng_state(),
        "history": [dataclasses.asdict(r) for r in result.history],
        "best_state": best_state,
        "best_score": best_score,
        "best_epoch": result.best_epoch,
        "stale": stale,
        "stopped_early": result.stopped_early,
        "next_epoch": next_epoch,
    }
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a crash mid-write leaves the previous checkpoint intact


def _load_checkpoint(path: Path, encoder: EncoderConfig, config: TrainConfig) -> dict[str, Any]:
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as e:
        raise EncoderConfigError(f"cannot resume from {path}: {e}; delete it to start over") from None
    if state.get("encoder") != encoder.to_dict() or state.get("train") != _resumable(config):
        raise EncoderConfigError(f"{path} was written by a run with a different encoder or training "
                                 "config; delete it (or pass --restart) to start over")
    return state


def _resumable(config: TrainConfig) -> dict[str, Any]:
    """The settings a resumed run must share with the checkpoint's (all but the epoch counts
    and patience, which may be raised to train longer)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("epochs", "curriculum_epochs", "patience")}
