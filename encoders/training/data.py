"""Pairs → what the trainer iterates: a document corpus, positives, a validation split, batches.

Documents are kept once, in a corpus (every document of the pairs plus any extra corpus given,
deduplicated by :func:`~ebr.encoders.training.pairs.doc_key`); pairs refer to corpus rows.  The
corpus is what random negatives are drawn from, what hard negatives are mined in and what KNN
recall is measured over.

The validation split, when no validation file is given, holds out whole queries (by a hash of
the query record), so no validation query is ever trained on.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.training.config import TrainConfig
from ebr.encoders.training.pairs import Pair, doc_key
from ebr.ingest.records import Record

_SPLIT_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class Example:
    """A query and a corpus row; ``positive`` says which side of the threshold its label is."""

    query: Record
    doc: int
    positive: bool
    labelled: bool


@dataclass(slots=True)
class TrainingData:
    corpus: list[Record] = field(default_factory=list)
    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)

    @property
    def train_positives(self) -> list[Example]:
        return [e for e in self.train if e.positive]

    def validation_queries(self) -> tuple[list[Record], list[set[int]]]:
        """Each distinct validation query once, with the corpus rows of its positives."""
        return _grouped(e for e in self.validation if e.positive)

    def train_queries(self) -> tuple[list[Record], list[set[int]]]:
        """Each distinct training query once, with the corpus rows of its positives."""
        return _grouped(e for e in self.train if e.positive)


def query_key(query: Record) -> str:
    return json.dumps(query, sort_keys=True, ensure_ascii=False, default=str)


def in_validation(query: Record, fraction: float) -> bool:
    """Whether the split puts ``query`` in validation: a CRC-32 of its canonical JSON, so the
    split is the same in every process and run."""
    return zlib.crc32(query_key(query).encode("utf-8")) % _SPLIT_BUCKETS < fraction * _SPLIT_BUCKETS


def prepare(
    train_pairs: Sequence[Pair],
    config: TrainConfig,
    validation_pairs: Sequence[Pair] | None = None,
    corpus: Sequence[Record] = (),
) -> TrainingData:
    """The corpus, training and validation examples of ``train_pairs`` (split by
    ``config.validation_fraction`` unless ``validation_pairs`` are given)."""
    data = TrainingData()
    rows: dict[str, int] = {}

    def row(doc: Record) -> int:
        key = doc_key(doc)
        found = rows.get(key)
        if found is None:
            found = rows[key] = len(data.corpus)
            data.corpus.append(doc)
        return found

    for doc in corpus:
        row(doc)
    for pair in train_pairs:
        example = _example(pair, row(pair.doc), config.positive_threshold)
        split = validation_pairs is None and config.validation_fraction > 0 \
            and in_validation(pair.query, config.validation_fraction)
        (data.validation if split else data.train).append(example)
    for pair in validation_pairs or ():
        data.validation.append(_example(pair, row(pair.doc), config.positive_threshold))
    if not data.train_positives:
        raise EncoderConfigError(f"no positive training pair (a pair is positive when it has no label "
                                 f"or its label is >= positive_threshold {config.positive_threshold:g})")
    return data


def pseudo_query(doc: Record, source: str, target: str, rng: random.Random) -> Record | None:
    """A query made of a random run of 1-4 words of ``doc[source]`` (the inverse cloze task
    of Lee et al. 2019), as the query field ``target``; None if the document has no such text."""
    text = doc.get(source)
    if not isinstance(text, str):
        return None
    words = text.split()
    if not words:
        return None
    length = rng.randint(1, min(4, len(words)))
    start = rng.randint(0, len(words) - length)
    return {target: " ".join(words[start:start + length])}


def epoch_examples(data: TrainingData, config: TrainConfig, rng: random.Random) -> list[tuple[Record, int]]:
    """One epoch's (query, corpus row) positives, shuffled: the training positives plus
    ``pseudo_queries × corpus`` pseudo-query pairs."""
    examples = [(e.query, e.doc) for e in data.train_positives]
    extra = round(config.pseudo_queries * len(data.corpus))
    if extra:
        source, target = config.pseudo_query_fields
        for _ in range(extra):
            doc = rng.randrange(len(data.corpus))
            query = pseudo_query(data.corpus[doc], source, target, rng)
            if query is not None:
                examples.append((query, doc))
    rng.shuffle(examples)
    return examples


def batches(examples: Sequence[tuple[Record, int]], size: int) -> Iterator[list[tuple[Record, int]]]:
    """Batches of ``size`` in which no document appears twice (an in-batch loss would take the
    repeat for a negative); a repeat waits for the next batch, so no example is lost."""
    waiting: list[tuple[Record, int]] = []
    position = 0
    while position < len(examples) or waiting:
        batch: list[tuple[Record, int]] = []
        docs: set[int] = set()
        deferred: list[tuple[Record, int]] = []
        for example in waiting:  # the first always fits, so every batch holds at least one
            if example[1] in docs or len(batch) == size:
                deferred.append(example)
            else:
                batch.append(example)
                docs.add(example[1])
        while len(batch) < size and position < len(examples):
            example = examples[position]
            position += 1
            if example[1] in docs:
                deferred.append(example)
            else:
                batch.append(example)
                docs.add(example[1])
        waiting = deferred
        yield batch


def _example(pair: Pair, doc: int, threshold: float) -> Example:
    if pair.label is None:
        return Example(pair.query, doc, True, False)
    return Example(pair.query, doc, pair.label >= threshold, True)


def _grouped(examples: Iterator[Example]) -> tuple[list[Record], list[set[int]]]:
    order: dict[str, int] = {}
    queries: list[Record] = []
    relevant: list[set[int]] = []
    for e in examples:
        key = query_key(e.query)
        if key not in order:
            order[key] = len(queries)
            queries.append(e.query)
            relevant.append(set())
        relevant[order[key]].add(e.doc)
    return queries, relevant


def records_texts(records: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> Iterator[str]:
    """The string values of ``fields`` in ``records`` (for training a vocabulary)."""
    for record in records:
        for name in fields:
            value = record.get(name)
            if isinstance(value, str) and value:
                yield value
