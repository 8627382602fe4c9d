"""A deterministic, training-free text embedding: a random projection of hashed char trigrams.

A text's bag of boundary-marked character trigrams (:func:`~ebr.encoders.features.trigrams.char_trigrams`,
hashed by :func:`~ebr.encoders.features.hashing.hash_bucket`) is a sparse count vector over
``buckets`` dimensions.  Multiplying it by a fixed matrix of independent standard Gaussians
(Johnson-Lindenstrauss) gives a ``dimension``-sized vector whose inner products, and so
cosines after normalising, equal those of the trigram bags in expectation.  "san fransisco"
shares most trigrams with "san francisco" and almost none with "marseille", so the first pair
lands close together and the second far apart: misspelling-tolerant nearest-neighbour
matching can be shown on a real index before any model is trained.

It is not a learned model: it knows spelling, not meaning ("nyc" is nowhere near
"new york").  The trained two-tower encoders replace it for real relevance.

The ``buckets x dimension`` matrix is never materialised: the row of a bucket is drawn on
demand from a generator seeded with ``(seed, bucket)``, so it is the same in every process
and on every machine, and only the rows of trigrams actually seen are computed (and cached).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.hashing import DEFAULT_HASH_SEED, check_hashing, hash_bucket
from ebr.encoders.features.trigrams import char_trigrams


@lru_cache(maxsize=1 << 16)
def _bucket_vector(seed: int, bucket: int, dimension: int) -> npt.NDArray[np.float64]:
    # Row ``bucket`` of the implicit projection matrix; read-only because the cache shares it.
    row = np.random.default_rng([seed, bucket]).standard_normal(dimension)
    row.flags.writeable = False
    return row


class TrigramProjection:
    """Texts → unit-norm ``(n, dimension)`` float32 vectors (see the module docstring).

    >>> p = TrigramProjection(dimension=64)
    >>> v = p.embed(["san francisco", "san fransisco", "marseille"])
    >>> v.shape, v.dtype
    ((3, 64), dtype('float32'))
    >>> bool(v[0] @ v[1] > v[0] @ v[2])
    True
    """

    def __init__(self, dimension: int = 64, buckets: int = 2**18,
                 seed: int = DEFAULT_HASH_SEED) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise EncoderConfigError(f"trigram projection: dimension must be a positive "
                                     f"integer, got {dimension!r}")
        check_hashing(buckets, seed, "trigram projection")
        self.dimension = dimension
        self.buckets = buckets
        self.seed = seed

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        counts = Counter(hash_bucket(g, self.buckets, self.seed) for g in char_trigrams(text))
        if not counts:
            raise EncoderInputError(f"trigram projection: {text!r} has no letters or digits "
                                    "to embed (no character trigrams)")
        total = np.zeros(self.dimension)
        for bucket, count in counts.items():
            total += count * _bucket_vector(self.seed, bucket, self.dimension)
        return (total / np.linalg.norm(total)).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit vector per text, as rows; a text without trigrams raises
        :class:`~ebr.encoders.errors.EncoderInputError` naming it."""
        if isinstance(texts, str):
            raise EncoderInputError("trigram projection: embed takes a sequence of texts, "
                                    "not one string (use embed_one)")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_one(text)
        return out
