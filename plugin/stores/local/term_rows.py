"""Where a constraint term's documents lie in a key's vector table, kept between searches.

A probing vector clause whose clusters are read by bitmap (:class:`ebr.stores.protocol.ProbeChoice`)
needs the rows of the admitted documents in its probed clusters.  The body of a table is
sorted by cluster (:mod:`ebr.stores.local.vectors`), so a term's rows in ascending order fall
into one run per cluster: two binary searches per probed cluster find them, whatever the
size of the posting list, instead of a union of the clusters' posting lists per search.

The ascending rows of a term cost a gather and a sort of its posting list, so they are kept
(least recently used first out, at most :data:`MAX_ROWS` rows in all: 8 bytes a row).  An
entry refers to the table and holds the posting list it was made from and is used only while
the search's snapshot has the very same objects: a write replaces the posting lists it changes
and a re-layout replaces the table, so an entry never outlives the rows it describes.  The
table is referred to weakly: an entry must not keep a replaced table's buffers in memory
(training lays out a new copy of every vector).
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import cachetools
import numpy as np
from pyroaring import FrozenBitMap

from ebr.stores.local.bitmaps import to_array
from ebr.stores.local.vectors import Rows, VectorTable, known_clusters

#: Rows kept in all (16M: 128 MiB), over every key and term.
MAX_ROWS = 1 << 24


@dataclass(frozen=True)
class _Entry:
    table: weakref.ref[VectorTable]
    posting: FrozenBitMap
    rows: Rows


class TermRows:
    """Per (key, term): the rows of the term's documents that have the key, ascending."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._entries: cachetools.LRUCache[tuple[str, str], _Entry] = cachetools.LRUCache(
            max_rows, getsizeof=lambda entry: len(entry.rows))
        self._lock = threading.Lock()

    def rows(self, key: str, term: str, table: VectorTable, posting: FrozenBitMap) -> Rows:
        """The rows of ``posting``'s documents present in ``table``, ascending."""
        name = (key, term)
        with self._lock:
            entry = self._entries.get(name)  # a get marks it recently used
            if entry is not None and entry.table() is table and entry.posting is posting:
                return entry.rows
        docs = to_array(posting)
        found = table.row_by_doc[docs[docs < table.span]]  # the buffer runs past ``span``
        rows: Rows = np.sort(found[found >= 0]).astype(np.int64)
        if len(rows) <= self.max_rows:  # a larger one is answered, not kept
            with self._lock:
                self._entries[name] = _Entry(weakref.ref(table), posting, rows)
        return rows


def in_clusters(table: VectorTable, rows: Rows, probes: tuple[int, ...]) -> Rows:
    """Those of ascending ``rows`` that lie in clusters ``probes`` (body rows found by binary
    search on the cluster bounds, tail rows by their cluster column), in probe order then
    ascending."""
    body = int(np.searchsorted(rows, table.body))
    parts = []
    if body:
        wanted = known_clusters(table, probes)
        head = rows[:body]
        lo = np.searchsorted(head, table.starts[wanted]).tolist()
        hi = np.searchsorted(head, table.starts[wanted + 1]).tolist()
        parts = [head[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
    if body < len(rows):
        tail = rows[body:]
        parts.append(tail[np.isin(table.clusters[tail], probes)])
    return parts[0] if len(parts) == 1 else (
        np.concatenate(parts) if parts else np.empty(0, np.int64))
