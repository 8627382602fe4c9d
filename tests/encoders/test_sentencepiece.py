"""SentencePiece: training into a file, encoding to fixed-length ids, round trips, errors."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm
import torch
from encoder_samples import MAX_LENGTH, VOCAB_SIZE

from ebr.encoders import (
    EncoderConfigError,
    EncoderInputError,
    SentencePieceTokenizer,
    normalize_text,
    train_sentencepiece,
)
from ebr.encoders.features.tokenizer import BOS_ID, PAD_ID


def test_trains_a_model_file_of_the_requested_size(sentencepiece_path: Path) -> None:
    assert sentencepiece_path.is_file()
    assert not list(sentencepiece_path.parent.glob("*.tmp"))  # the temporary file was renamed
    tokenizer = SentencePieceTokenizer.load(sentencepiece_path, MAX_LENGTH)
    assert tokenizer.vocab_size == VOCAB_SIZE
    assert tokenizer.model_proto == sentencepiece_path.read_bytes()


def test_training_is_reproducible(corpus: list[str], sentencepiece_path: Path, tmp_path: Path) -> None:
    again = train_sentencepiece((t for t in corpus), tmp_path / "again.model", VOCAB_SIZE)
    assert again.read_bytes() == sentencepiece_path.read_bytes()


def test_round_trip(corpus: list[str], sentencepiece_path: Path) -> None:
    tokenizer = SentencePieceTokenizer.load(sentencepiece_path, max_length=64)
    for text in corpus[:50] + ["  " + corpus[0].upper() + "  "]:
        ids = tokenizer.ids(text)
        assert ids[0] == BOS_ID and PAD_ID not in ids
        assert tokenizer.decode(ids) == " ".join(normalize_text(text).split())


def test_featurize_pads_and_truncates(corpus: list[str], tokenizer: SentencePieceTokenizer) -> None:
    long_text = " ".join(corpus[:20])
    texts = [corpus[0], "", long_text]
    batch = tokenizer.featurize(texts)
    assert batch.ids.shape == batch.mask.shape == (3, MAX_LENGTH)
    assert batch.ids.dtype == torch.int64 and batch.mask.dtype == torch.bool
    assert batch.ids[:, 0].tolist() == [BOS_ID] * 3
    assert torch.equal(batch.mask, batch.ids != PAD_ID)
    for i, text in enumerate(texts):
        row = tokenizer.ids(text)
        assert len(row) <= MAX_LENGTH
        assert batch.ids[i, : len(row)].tolist() == row
        assert int(batch.mask[i].sum()) == len(row)
    assert batch.mask[1].tolist() == [True] + [False] * (MAX_LENGTH - 1)  # empty text: start token only
    assert bool(batch.mask[2].all())  # truncated to max_length
    assert tokenizer.ids(long_text) == [BOS_ID, *tokenizer.with_max_length(1000).ids(long_text)[1:MAX_LENGTH]]


def test_featurize_pads_to_the_longest_row(corpus: list[str], tokenizer: SentencePieceTokenizer) -> None:
    texts = [corpus[0].split()[0], ""]
    batch = tokenizer.featurize(texts)
    longest = len(tokenizer.ids(texts[0]))
    assert longest < MAX_LENGTH
    assert batch.ids.shape == (2, longest)
    assert batch.ids[0].tolist() == tokenizer.ids(texts[0])
    assert batch.mask[1].tolist() == [True] + [False] * (longest - 1)


def test_featurize_is_deterministic(corpus: list[str], sentencepiece_path: Path) -> None:
    a = SentencePieceTokenizer.load(sentencepiece_path, MAX_LENGTH).featurize(corpus[:30])
    b = SentencePieceTokenizer.load(sentencepiece_path, MAX_LENGTH).featurize(corpus[:30])
    assert torch.equal(a.ids, b.ids) and torch.equal(a.mask, b.mask)


@pytest.mark.parametrize(
    ("texts", "vocab_size", "error", "message"),
    [
        ([], 50, EncoderInputError, "no non-empty text"),
        (["", "   "], 50, EncoderInputError, "no non-empty text"),
        (["fine", 3], 50, EncoderInputError, "corpus item 1: expected a string"),
        (["a b c"] * 5, 50, EncoderConfigError, r"Vocabulary size too high \(50\)"),
        (["a b c"], 4, EncoderConfigError, "vocab_size must be an integer >= 5"),
    ],
)
def test_training_errors(
    texts: list[Any], vocab_size: int, error: type[Exception], message: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=message):
        train_sentencepiece(texts, tmp_path / "m.model", vocab_size)
    assert not (tmp_path / "m.model").exists()


def test_loading_errors(sentencepiece_path: Path, corpus: list[str], tmp_path: Path) -> None:
    with pytest.raises(EncoderConfigError, match="cannot read sentencepiece model"):
        SentencePieceTokenizer.load(tmp_path / "missing.model", 8)
    with pytest.raises(EncoderConfigError, match="not a valid SentencePiece model"):
        SentencePieceTokenizer(b"not a model", 8)
    with pytest.raises(EncoderConfigError, match="max_length must be an integer >= 2"):
        SentencePieceTokenizer.load(sentencepiece_path, 1)
    # A model trained without ebr's reserved ids (SentencePiece's defaults have no pad).
    foreign = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=foreign, vocab_size=60,
                                   minloglevel=2)
    with pytest.raises(EncoderConfigError, match="must reserve pad=0 and bos=2"):
        SentencePieceTokenizer(foreign.getvalue(), 8)
