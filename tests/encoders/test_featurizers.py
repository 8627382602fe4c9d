"""Featurizers: the exact grams, bucket ranges, batch layout for EmbeddingBag, and errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from encoder_samples import doc_records, query_records

from ebr.encoders import (
    BagBatch,
    CategoricalFeaturizer,
    CharTrigramFeaturizer,
    EncoderConfig,
    EncoderConfigError,
    EncoderInputError,
    SentencePieceTokenizer,
    TokenBatch,
    TowerFeaturizer,
    WordNgramFeaturizer,
    char_trigrams,
    hash_bucket,
    split_words,
    train_sentencepiece,
    word_ngrams,
)


@pytest.mark.parametrize(
    ("text", "grams"),
    [
        ("abc", ["#ab", "abc", "bc#"]),
        ("ab", ["#ab", "ab#"]),
        ("a", ["#a#"]),
        ("drill", ["#dr", "dri", "ril", "ill", "ll#"]),
        ("Ab  CD", ["#ab", "ab#", "#cd", "cd#"]),  # case-folded; trigrams never span words
        ("x-y", ["#x#", "#y#"]),  # punctuation splits words
        ("Ｄｒｉｌｌ", ["#dr", "dri", "ril", "ill", "ll#"]),  # NFKC: full-width letters
        ("", []),
        ("   ", []),
    ],
)
def test_char_trigrams(text: str, grams: list[str]) -> None:
    assert char_trigrams(text) == grams


@pytest.mark.parametrize(
    ("text", "max_n", "grams"),
    [
        ("a b c", 2, ["a", "b", "c", "a b", "b c"]),
        ("Cordless DRILL", 2, ["cordless", "drill", "cordless drill"]),
        ("one", 2, ["one"]),
        ("a b c", 1, ["a", "b", "c"]),
        ("a b c", 3, ["a", "b", "c", "a b", "b c", "a b c"]),
        ("", 2, []),
    ],
)
def test_word_ngrams(text: str, max_n: int, grams: list[str]) -> None:
    assert word_ngrams(text, max_n) == grams


def test_split_words_normalises() -> None:
    assert split_words("Kasie's  CREATIONS!") == ["kasie", "s", "creations"]


@pytest.mark.parametrize(
    ("token", "seed", "expected"),
    [
        # Published MurmurHash3_x86_32 test vectors: a swapped or misconfigured hash fails here.
        ("", 0, 0x00000000),
        ("", 1, 0x514E28B7),
        ("hello", 0, 0x248BFA47),
        ("Hello, world!", 1234, 0xFAF6CDB3),
    ],
)
def test_hash_bucket_is_murmurhash3_x86_32(token: str, seed: int, expected: int) -> None:
    assert hash_bucket(token, 2**32, seed) == expected
    assert hash_bucket(token, 1000, seed) == expected % 1000


def test_char_trigram_batch_layout() -> None:
    featurizer = CharTrigramFeaturizer(buckets=50)
    texts = ["abc", "", "drill press", "abc"]
    batch = featurizer.featurize(texts)
    lengths = [len(char_trigrams(t)) for t in texts]
    assert batch.ids.dtype == torch.int64 and batch.offsets.dtype == torch.int64
    assert batch.weights.dtype == torch.float32
    assert batch.ids.shape == batch.weights.shape == (sum(lengths),)
    assert batch.offsets.tolist() == [0, 3, 3, 3 + lengths[2]]
    assert batch.weights.tolist() == [1.0] * sum(lengths)
    assert 0 <= int(batch.ids.min()) and int(batch.ids.max()) < 50
    for i, text in enumerate(texts):
        ids, weights = batch.bag(i)
        assert ids == featurizer.ids(text) == [hash_bucket(g, 50) for g in char_trigrams(text)]
    assert batch.bag(0) == batch.bag(3)  # same text, same ids


def test_featurizers_are_deterministic_and_seeded() -> None:
    texts = ["cordless drill 18v", "white paint", "copper pipe fitting"]
    for make in (lambda s: CharTrigramFeaturizer(1 << 20, s), lambda s: WordNgramFeaturizer(1 << 20, s)):
        a, b, other = make(5).featurize(texts), make(5).featurize(texts), make(6).featurize(texts)
        assert torch.equal(a.ids, b.ids) and torch.equal(a.offsets, b.offsets)
        assert not torch.equal(a.ids, other.ids)  # the seed is really used


def test_word_ngram_batch() -> None:
    featurizer = WordNgramFeaturizer(buckets=64)
    batch = featurizer.featurize(["a b c", "d"])
    assert batch.offsets.tolist() == [0, 5]
    assert batch.bag(0)[0] == [hash_bucket(g, 64) for g in ["a", "b", "c", "a b", "b c"]]
    assert batch.bag(1)[0] == [hash_bucket("d", 64)]


def test_bag_batch_feeds_embedding_bag() -> None:
    # The layout is exactly EmbeddingBag's: compare with sums of weighted rows done by hand.
    featurizer = CategoricalFeaturizer("category", 40, multi_valued=True, weighted=True)
    values: list[Any] = [{"a": 0.5, "b": 2.0}, None, ["c", "c"], "d"]
    batch = featurizer.featurize(values)
    bag = torch.nn.EmbeddingBag(40, 6, mode="sum")
    pooled = bag(batch.ids, batch.offsets, per_sample_weights=batch.weights)  # (4, 6)
    assert pooled.shape == (4, 6)
    for i in range(len(values)):
        ids, weights = batch.bag(i)
        expected = sum((w * bag.weight[j] for j, w in zip(ids, weights, strict=True)), torch.zeros(6))
        assert torch.allclose(pooled[i], expected, atol=1e-6)
    assert torch.equal(pooled[1], torch.zeros(6))  # missing value: empty bag


@pytest.mark.parametrize(
    ("value", "bag"),
    [
        ("us", (["us"], [1.0])),
        (7, (["7"], [1.0])),
        (None, ([], [])),
    ],
)
def test_categorical_single_valued(value: Any, bag: tuple[list[str], list[float]]) -> None:
    featurizer = CategoricalFeaturizer("country", 100)
    assert featurizer.bag(value) == ([hash_bucket(v, 100) for v in bag[0]], bag[1])


def test_categorical_multi_valued_and_weighted() -> None:
    multi = CategoricalFeaturizer("tags", 100, multi_valued=True)
    assert multi.bag(["a", "b"]) == ([hash_bucket("a", 100), hash_bucket("b", 100)], [1.0, 1.0])
    assert multi.bag("a") == ([hash_bucket("a", 100)], [1.0])  # a lone value of a multi-valued feature
    weighted = CategoricalFeaturizer("tags", 100, multi_valued=True, weighted=True)
    assert weighted.bag({"a": 0.25, "b": 3}) == ([hash_bucket("a", 100), hash_bucket("b", 100)], [0.25, 3.0])
    assert weighted.bag(["a"]) == ([hash_bucket("a", 100)], [1.0])


@pytest.mark.parametrize(
    ("multi_valued", "weighted", "value", "message"),
    [
        (False, False, ["us", "ca"], "single-valued feature"),
        (True, False, {"a": 1.0}, "not declared weighted"),
        (True, True, {"a": -1.0}, "finite number >= 0"),
        (True, True, {"a": math.nan}, "finite number >= 0"),
        (True, True, {"a": True}, "finite number >= 0"),
        (True, False, [["nested"]], "is not a string or integer"),
        (True, False, [True], "is not a string or integer"),
        (False, False, 1.5, "expected a string or integer"),
        (True, False, 1.5, "expected a list of values"),
    ],
)
def test_categorical_errors(multi_valued: bool, weighted: bool, value: Any, message: str) -> None:
    featurizer = CategoricalFeaturizer("f", 10, multi_valued=multi_valued, weighted=weighted)
    with pytest.raises(EncoderInputError, match=message) as info:
        featurizer.featurize(["ok", value])
    assert "sample 1" in str(info.value)


@pytest.mark.parametrize(
    ("buckets", "seed", "message"),
    [(0, 1, "buckets"), (-3, 1, "buckets"), (True, 1, "buckets"), (2.5, 1, "buckets"),
     (10, -1, "seed"), (10, 2**32, "seed")],
)
def test_hashing_config_errors(buckets: Any, seed: Any, message: str) -> None:
    for make in (CharTrigramFeaturizer, WordNgramFeaturizer):
        with pytest.raises(EncoderConfigError, match=message):
            make(buckets, seed)
    with pytest.raises(EncoderConfigError, match=message):
        CategoricalFeaturizer("f", buckets, seed)


def test_weighted_categorical_must_be_multi_valued() -> None:
    with pytest.raises(EncoderConfigError, match="a weighted feature must be multi_valued"):
        CategoricalFeaturizer("f", 10, weighted=True)


def test_tower_featurizer_gives_one_batch_per_channel(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    query = TowerFeaturizer(config.query, config.hash_seed, tokenizer).featurize(query_records(corpus, 5))
    doc = TowerFeaturizer(config.doc, config.hash_seed, tokenizer).featurize(doc_records(corpus, 6))
    assert list(query) == ["trigrams", "country", "text"]
    assert list(doc) == ["title_words", "title_trigrams", "category", "title"]
    assert isinstance(query["trigrams"], BagBatch) and isinstance(query["text"], TokenBatch)
    assert all(b.batch_size == 5 for b in query.values())
    assert all(b.batch_size == 6 for b in doc.values())
    assert query["country"].bag(0) == ([], [])  # every fifth query has no country
    assert query["text"].ids.shape == (5, tokenizer.max_length)


def test_tower_featurizer_errors(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str], tmp_path: Path
) -> None:
    featurizer = TowerFeaturizer(config.query, config.hash_seed, tokenizer)
    missing_text = r"record 1: field 'text' \(channel 'trigrams'\) must be a string, got nothing"
    with pytest.raises(EncoderInputError, match=missing_text):
        featurizer.featurize([{"text": "ok"}, {"country": "us"}])
    with pytest.raises(EncoderInputError, match="record 0: expected a mapping"):
        featurizer.featurize(["just text"])  # type: ignore[list-item]
    with pytest.raises(EncoderConfigError, match="needs a SentencePiece tokenizer"):
        TowerFeaturizer(config.query, config.hash_seed)
    smaller = SentencePieceTokenizer.load(train_sentencepiece(corpus, tmp_path / "small.model", 40), 8)
    with pytest.raises(EncoderConfigError, match="vocab_size is 80 but the SentencePiece model has 40"):
        TowerFeaturizer(config.query, config.hash_seed, smaller)
