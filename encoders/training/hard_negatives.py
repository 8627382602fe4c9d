"""Offline hard negatives (EBR §6.2): documents the current model ranks close to a query, but
not too close.

The documents at ranks 101-500 of a query's nearest neighbours are similar enough to teach the
model something in-batch negatives cannot, yet rarely the unlabelled positives that the very
top ranks are full of (EBR found ranks 101-500 best).  They are then mixed with random
("easy") negatives, because training on hard negatives alone hurt recall in EBR's experiments.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class HardNegatives:
    """Per training query, the corpus rows in a rank band of its nearest neighbours."""

    def __init__(self, candidates: npt.NDArray[np.int64], easy_hard_ratio: float, corpus_size: int) -> None:
        self.candidates = candidates  # (queries, band width), -1 where the corpus ran out
        self.easy_hard_ratio = easy_hard_ratio
        self.corpus_size = corpus_size

    @classmethod
    def mine(
        cls,
        queries: npt.NDArray[np.float32],
        positives: Sequence[set[int]],
        corpus: npt.NDArray[np.float32],
        band: tuple[int, int],
        easy_hard_ratio: float,
    ) -> HardNegatives:
        """Search ``corpus`` (unit-norm rows) for each of ``queries`` and keep ranks ``band``
        (1-based, inclusive), minus the query's own positives."""
        import faiss

        low, high = band
        depth = min(high, len(corpus))
        index = faiss.IndexFlatIP(corpus.shape[1])  # exact; fast enough for a training corpus
        index.add(np.ascontiguousarray(corpus, dtype=np.float32))
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), depth)
        width = max(0, high - low + 1)
        candidates = np.full((len(queries), width), -1, dtype=np.int64)
        for i, row in enumerate(ids[:, low - 1:depth]):
            kept = [int(d) for d in row if d >= 0 and int(d) not in positives[i]]
            candidates[i, :len(kept)] = kept
        return cls(candidates, easy_hard_ratio, len(corpus))

    def sample(self, query: int, rng: random.Random) -> int:
        """One negative for training query number ``query``: a random corpus row with
        probability ratio / (1 + ratio), else a random row of its band."""
        if rng.random() < self.easy_hard_ratio / (1.0 + self.easy_hard_ratio):
            return rng.randrange(self.corpus_size)
        band = self.candidates[query]
        available = int((band >= 0).sum())
        if available == 0:
            return rng.randrange(self.corpus_size)
        return int(band[rng.randrange(available)])
