"""A corpus featurized once gives, for any rows, exactly the batch featurizing those rows gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ebr.encoders.encoder_config import (
    CategoricalChannel,
    CharTrigramChannel,
    TextTransformerChannel,
    TowerConfig,
    WordNgramChannel,
)
from ebr.encoders.errors import EncoderInputError
from ebr.encoders.features.batches import BagBatch, TokenBatch
from ebr.encoders.features.featurized_records import FeaturizedRecords
from ebr.encoders.features.tokenizer import SentencePieceTokenizer
from ebr.encoders.features.tower_featurizer import TowerFeaturizer


@pytest.fixture(scope="module")
def featurizer(sentencepiece_path: Path) -> TowerFeaturizer:
    tokenizer = SentencePieceTokenizer.load(sentencepiece_path, 24)
    tower = TowerConfig((
        CharTrigramChannel("trigrams", "title", 1000, 8),
        WordNgramChannel("words", "title", 1000, 8),
        TextTransformerChannel("text", "title", tokenizer.vocab_size, max_length=24, width=8, heads=2),
        CategoricalChannel("category", "categories", 50, 8, multi_valued=True, weighted=True),
    ))
    return TowerFeaturizer(tower, tokenizer=tokenizer)


def test_batches_equal_featurizing_the_rows(featurizer: TowerFeaturizer, corpus: list[str]) -> None:
    rng = np.random.default_rng(0)
    records = [{"title": " ".join(rng.choice(corpus, rng.integers(1, 4))),
                "categories": {f"c{rng.integers(5)}": float(rng.random())} if i % 3 else None}
               for i in range(9000)]  # more than one featurization chunk
    cached = FeaturizedRecords(featurizer, records)
    assert len(cached) == len(records)
    for rows in ([0], [8999, 0, 4100, 4100], rng.integers(0, len(records), 300).tolist()):
        got = cached.batch(rows)
        expected = featurizer.featurize([records[r] for r in rows])
        assert got.keys() == expected.keys()
        for name, want in expected.items():
            have = got[name]
            if isinstance(want, BagBatch):
                assert isinstance(have, BagBatch)
                for field in ("ids", "offsets", "weights"):
                    assert torch.equal(getattr(have, field), getattr(want, field)), (name, field)
            else:
                assert isinstance(want, TokenBatch) and isinstance(have, TokenBatch)
                assert torch.equal(have.ids, want.ids) and torch.equal(have.mask, want.mask), name


def test_nothing_to_featurize_is_an_error(featurizer: TowerFeaturizer) -> None:
    with pytest.raises(EncoderInputError, match="no records"):
        FeaturizedRecords(featurizer, [])
