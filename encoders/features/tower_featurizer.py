"""Records → the batch a tower consumes: one featurized tensor group per configured channel.

A record is a mapping from field names to values (``{"text": "cordless drill", "country":
"us"}``).  Text channels need their field to hold a string; a categorical field may be absent
or ``None`` (unknown context is normal and featurizes as an empty bag).

:meth:`TowerFeaturizer.bags` gives the hashed channels' id bags as plain lists, without torch
(what the numpy query tower reads); :meth:`TowerFeaturizer.featurize` packs the same bags as
tensors for the torch towers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ebr.encoders.encoder_config import (
    CategoricalChannel,
    CharTrigramChannel,
    TextTransformerChannel,
    TowerConfig,
    WordNgramChannel,
)
from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.categorical import CategoricalFeaturizer
from ebr.encoders.features.hashing import DEFAULT_HASH_SEED
from ebr.encoders.features.ngrams import WordNgramFeaturizer
from ebr.encoders.features.trigrams import CharTrigramFeaturizer

if TYPE_CHECKING:  # torch: imported by featurize alone, so bags need no torch
    from ebr.encoders.features.batches import FeatureBatch
    from ebr.encoders.features.tokenizer import SentencePieceTokenizer

Bag = tuple[list[int], list[float]]
"""One sample's hashed ids and their weights (the ``EmbeddingBag``'s ``per_sample_weights``)."""


class TowerFeaturizer:
    """Featurizes records for one tower; ``tokenizer`` is needed iff it has a text transformer."""

    def __init__(
        self,
        tower: TowerConfig,
        hash_seed: int = DEFAULT_HASH_SEED,
        tokenizer: SentencePieceTokenizer | None = None,
    ) -> None:
        self.tower = tower
        self._hashed: dict[str, CharTrigramFeaturizer | WordNgramFeaturizer] = {}
        self._tokenizers: dict[str, SentencePieceTokenizer] = {}
        self._categorical: dict[str, CategoricalFeaturizer] = {}
        for c in tower.channels:
            if isinstance(c, CharTrigramChannel):
                self._hashed[c.name] = CharTrigramFeaturizer(c.buckets, hash_seed)
            elif isinstance(c, WordNgramChannel):
                self._hashed[c.name] = WordNgramFeaturizer(c.buckets, hash_seed, c.max_n)
            elif isinstance(c, CategoricalChannel):
                self._categorical[c.name] = CategoricalFeaturizer(
                    c.name, c.buckets, hash_seed, c.multi_valued, c.weighted)
            elif isinstance(c, TextTransformerChannel):
                if tokenizer is None:
                    raise EncoderConfigError(f"channel {c.name!r}: a text_transformer channel needs "
                                             "a SentencePiece tokenizer")
                if tokenizer.vocab_size != c.vocab_size:
                    raise EncoderConfigError(
                        f"channel {c.name!r}: vocab_size is {c.vocab_size} but the SentencePiece "
                        f"model has {tokenizer.vocab_size} pieces; make them equal")
                self._tokenizers[c.name] = tokenizer.with_max_length(c.max_length)

    def bags(self, records: Sequence[Mapping[str, Any]]) -> dict[str, list[Bag]]:
        """The id bag of every record for each hashed channel (trigrams, word n-grams,
        categorical), keyed by channel name; text transformer channels are left out."""
        _check_records(records)
        out: dict[str, list[Bag]] = {}
        for c in self.tower.channels:
            if c.name in self._categorical:
                featurizer = self._categorical[c.name]
                out[c.name] = [featurizer.bag(r.get(c.field), i) for i, r in enumerate(records)]
            elif c.name in self._hashed:
                hashed = self._hashed[c.name]
                grams = [hashed.ids(t) for t in _texts(records, c.field, c.name)]
                out[c.name] = [(ids, [1.0] * len(ids)) for ids in grams]
        return out

    def featurize(self, records: Sequence[Mapping[str, Any]]) -> dict[str, FeatureBatch]:
        """One entry per channel, keyed by channel name; row ``i`` of each is ``records[i]``."""
        from ebr.encoders.features.batches import BagBatch

        bags = self.bags(records)
        batch: dict[str, FeatureBatch] = {}
        for c in self.tower.channels:
            if c.name in bags:
                batch[c.name] = BagBatch.from_bags([ids for ids, _ in bags[c.name]],
                                                   [weights for _, weights in bags[c.name]])
            else:
                batch[c.name] = self._tokenizers[c.name].featurize(_texts(records, c.field, c.name))
        return batch


class RecordChecker:
    """Why a record cannot be featurized for ``tower``, or None if it can — so a reader can skip
    and report one bad record instead of failing a whole batch.  Needs no vocabulary, so it can
    check training data before one is trained."""

    def __init__(self, tower: TowerConfig) -> None:
        self._categorical = {
            c.name: CategoricalFeaturizer(c.name, c.buckets, DEFAULT_HASH_SEED, c.multi_valued, c.weighted)
            for c in tower.channels if isinstance(c, CategoricalChannel)
        }
        self._channels = tower.channels

    def __call__(self, record: Mapping[str, Any]) -> str | None:
        if not isinstance(record, Mapping):
            return f"expected a record (mapping of fields), got {type(record).__name__}"
        for c in self._channels:
            value = record.get(c.field)
            if c.name in self._categorical:
                try:
                    self._categorical[c.name].bag(value)
                except EncoderInputError as e:
                    return str(e)
            elif not isinstance(value, str):
                return _not_text(c.field, c.name, value)
        return None


def _check_records(records: Sequence[Mapping[str, Any]]) -> None:
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise EncoderInputError(f"record {i}: expected a mapping of field names to values, "
                                    f"got {type(record).__name__}")


def _texts(records: Sequence[Mapping[str, Any]], field: str, channel: str) -> list[str]:
    texts: list[str] = []
    for i, record in enumerate(records):
        value = record.get(field)
        if not isinstance(value, str):
            raise EncoderInputError(f"record {i}: {_not_text(field, channel, value)}")
        texts.append(value)
    return texts


def _not_text(field: str, channel: str, value: object) -> str:
    got = "nothing" if value is None else type(value).__name__
    return f"field {field!r} (channel {channel!r}) must be a string, got {got}"
