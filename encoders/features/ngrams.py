"""Hashed word unigrams and bigrams (EBR §3: +1.5% recall on top of character trigrams).

Word n-grams have an unbounded vocabulary, so they are hashed into buckets like the trigrams.
A bigram is its two words joined by one space; words never contain spaces, so a bigram can
never be mistaken for a unigram.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.hashing import DEFAULT_HASH_SEED, check_hashing, hash_bucket
from ebr.encoders.features.words import split_words

if TYPE_CHECKING:  # torch: imported by featurize alone, so n-grams and ids need no torch
    from ebr.encoders.features.batches import BagBatch


def word_ngrams(text: str, max_n: int = 2) -> list[str]:
    """All word n-grams of ``text`` for n = 1..``max_n``: unigrams first, then bigrams, ..."""
    words = split_words(text)
    grams: list[str] = []
    for n in range(1, max_n + 1):
        grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


class WordNgramFeaturizer:
    """Texts → a :class:`BagBatch` of hashed word n-gram ids (n = 1..``max_n``), weight 1 each."""

    def __init__(self, buckets: int, seed: int = DEFAULT_HASH_SEED, max_n: int = 2) -> None:
        check_hashing(buckets, seed, "word n-grams")
        if isinstance(max_n, bool) or not isinstance(max_n, int) or max_n < 1:
            raise EncoderConfigError(f"word n-grams: max_n must be a positive integer, got {max_n!r}")
        self.buckets = buckets
        self.seed = seed
        self.max_n = max_n

    def ids(self, text: str) -> list[int]:
        return [hash_bucket(g, self.buckets, self.seed) for g in word_ngrams(text, self.max_n)]

    def featurize(self, texts: Sequence[str]) -> BagBatch:
        from ebr.encoders.features.batches import BagBatch

        return BagBatch.from_bags([self.ids(t) for t in texts])
