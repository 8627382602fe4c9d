"""Sample data shared by the encoder tests: a synthetic corpus, records, and an encoder
configuration that uses every channel kind on both towers."""

from __future__ import annotations

import random
from typing import Any

from ebr.encoders import (
    CategoricalChannel,
    CharTrigramChannel,
    EncoderConfig,
    TextTransformerChannel,
    TowerConfig,
    WordNgramChannel,
)

VOCAB_SIZE = 80
MAX_LENGTH = 12


def synthetic_corpus(seed: int = 7, sentences: int = 400) -> list[str]:
    """Sentences of pseudo-words over a 60-word vocabulary: varied enough for an 80-piece model."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8)))
             for _ in range(60)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(sentences)]


def make_config(pooling: str = "first") -> EncoderConfig:
    """Both towers with hashed-text, categorical and transformer channels of unequal widths."""
    return EncoderConfig(
        query=TowerConfig(
            channels=(
                CharTrigramChannel("trigrams", "text", buckets=997, dim=24),
                CategoricalChannel("country", "country", buckets=31, dim=8),
                TextTransformerChannel("text", "text", vocab_size=VOCAB_SIZE, max_length=MAX_LENGTH,
                                       width=32, layers=2, heads=4, pooling=pooling),
            ),
            hidden_dim=32,
        ),
        doc=TowerConfig(
            channels=(
                WordNgramChannel("title_words", "title", buckets=1009, dim=16),
                CharTrigramChannel("title_trigrams", "title", buckets=997, dim=32),
                CategoricalChannel("category", "categories", buckets=53, dim=8, multi_valued=True,
                                   weighted=True),
                TextTransformerChannel("title", "title", vocab_size=VOCAB_SIZE, max_length=MAX_LENGTH,
                                       width=32, layers=2, heads=4, pooling=pooling),
            ),
            hidden_dim=32,
        ),
        output_dim=16,
    )


def query_records(corpus: list[str], n: int) -> list[dict[str, Any]]:
    """Queries with a country on most, missing on every fifth (unknown context)."""
    countries = ["us", "ca", "mx", "de"]
    return [{"text": corpus[i], **({"country": countries[i % 4]} if i % 5 else {})} for i in range(n)]


def doc_records(corpus: list[str], n: int) -> list[dict[str, Any]]:
    """Documents with weighted categories, one with none and one given as a plain list."""
    records: list[dict[str, Any]] = []
    for i in range(n):
        categories: Any = {f"cat{i % 7}": 1.0, f"cat{i % 3}": 0.5}
        if i % 6 == 1:
            categories = [f"cat{i % 5}"]
        elif i % 6 == 2:
            categories = None
        records.append({"title": corpus[-1 - i], "categories": categories})
    return records
