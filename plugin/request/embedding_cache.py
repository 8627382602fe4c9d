"""A bounded, expiring cache of request embeddings (Que2Search §4: the query service keeps
embeddings in memory for a fixed time, e.g. 8 hours, to spare the model).

Entries are keyed by ``(embedding key, text, the context fields the embedder reads)``; the
least recently used goes when ``maxsize`` is reached, and an entry older than ``ttl`` seconds
is computed again.  cachetools' ``TTLCache`` does the bookkeeping; a lock makes it safe for
many threads.  The embedding is computed outside the lock, so concurrent misses run the model
in parallel (two threads missing the same entry both compute it; the second write wins,
an equal value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cachetools import TTLCache

FloatArray = npt.NDArray[np.float32]

#: Que2Search's figure for how long a query embedding is kept.
DEFAULT_TTL = 8 * 3600.0
DEFAULT_MAXSIZE = 100_000


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int


class EmbeddingCache:
    """``get(key, compute)``: the cached embedding, or ``compute()``'s, stored read-only."""

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE, ttl: float = DEFAULT_TTL,
                 timer: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1 or ttl <= 0:
            raise ValueError(f"the embedding cache needs maxsize >= 1 and ttl > 0; got {maxsize}, {ttl}")
        self._entries: TTLCache[Hashable, FloatArray] = TTLCache(maxsize, ttl, timer=timer)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable, compute: Callable[[], FloatArray]) -> tuple[FloatArray, bool]:
        """The embedding for ``key`` and whether it came from the cache."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._hits += 1
                return found, True
            self._misses += 1
        value = np.array(compute(), dtype=np.float32)  # a private copy the caller cannot change
        value.flags.writeable = False
        with self._lock:
            self._entries[key] = value
        return value, False

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
