"""Fixtures for the encoder tests; the sample data itself is in ``encoder_samples``."""

from __future__ import annotations

from pathlib import Path

import pytest
from encoder_samples import MAX_LENGTH, VOCAB_SIZE, make_config, synthetic_corpus

from ebr.encoders import EncoderConfig, SentencePieceTokenizer, train_sentencepiece


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return synthetic_corpus()


@pytest.fixture(scope="session")
def sentencepiece_path(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    return train_sentencepiece(iter(corpus), tmp_path_factory.mktemp("sp") / "text.model", VOCAB_SIZE)


@pytest.fixture(scope="session")
def tokenizer(sentencepiece_path: Path) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.load(sentencepiece_path, MAX_LENGTH)


@pytest.fixture
def config() -> EncoderConfig:
    return make_config()
