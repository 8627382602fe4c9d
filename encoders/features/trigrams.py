"""Character trigrams with word-boundary marks, hashed into buckets (EBR §3, Que2Search §3.1).

Each word is wrapped in ``#`` marks and cut into overlapping three-character windows, so
"abc" gives ``#ab``, ``abc``, ``bc#`` and a one-letter word "a" gives ``#a#``.  The marks let
prefixes and suffixes hash apart from the same letters inside a word; trigrams never span two
words.  A bounded vocabulary that tolerates misspellings is why the papers prefer them to words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ebr.encoders.features.hashing import DEFAULT_HASH_SEED, check_hashing, hash_bucket
from ebr.encoders.features.words import split_words

if TYPE_CHECKING:  # torch: imported by featurize alone, so trigrams and ids need no torch
    from ebr.encoders.features.batches import BagBatch

BOUNDARY = "#"


def char_trigrams(text: str) -> list[str]:
    """The boundary-marked trigrams of every word of ``text``, in order, repeats kept."""
    grams: list[str] = []
    for word in split_words(text):
        marked = BOUNDARY + word + BOUNDARY
        grams.extend(marked[i : i + 3] for i in range(len(marked) - 2))
    return grams


class CharTrigramFeaturizer:
    """Texts → a :class:`BagBatch` of hashed trigram ids in ``[0, buckets)``, weight 1 each.

    A trigram occurring twice is in the bag twice, so the sum-pooled embedding counts it twice.
    """

    def __init__(self, buckets: int, seed: int = DEFAULT_HASH_SEED) -> None:
        check_hashing(buckets, seed, "char trigrams")
        self.buckets = buckets
        self.seed = seed

    def ids(self, text: str) -> list[int]:
        return [hash_bucket(g, self.buckets, self.seed) for g in char_trigrams(text)]

    def featurize(self, texts: Sequence[str]) -> BagBatch:
        from ebr.encoders.features.batches import BagBatch

        return BagBatch.from_bags([self.ids(t) for t in texts])
