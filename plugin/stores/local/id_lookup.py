"""Document numbers by id: which ids a write replaces or deletes, and reads served from memory
(``get_vectors``).

Searches never need them (a plan names terms, not ids), so the map is built only when a write
or a read asks, and then kept: it covers the shared append-only ``ids`` buffer of the snapshots up to the
current one's ``count`` and is extended, never rebuilt, as commits add documents (a replaced
document gets a new, higher number, which then wins; a deleted one's number is no longer
live).  A snapshot with a new buffer (a reload from the database, a compaction) starts a new
map.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ebr.stores.local.snapshot import Snapshot


class IdLookup:
    """The live document number of ids in the current snapshot (``current()``)."""

    def __init__(self, current: Callable[[], Snapshot]) -> None:
        self._current = current
        self._lock = threading.Lock()
        self._ids: list[str] | None = None  # the buffer the map covers
        self._docnum: dict[str, int] = {}
        self._upto = 0

    def find(self, ids: Sequence[str]) -> tuple[Snapshot, list[int | None]]:
        """The current snapshot and the number of each id in it (None: not in the index)."""
        with self._lock:  # the snapshot is taken inside: snapshots only grow, so _upto <= count
            snap = self._current()
            if self._ids is not snap.ids:
                self._ids, self._docnum, self._upto = snap.ids, {}, 0
            if self._upto < snap.count:
                buffer = snap.ids
                self._docnum.update((buffer[d], d) for d in range(self._upto, snap.count))
                self._upto = snap.count
            found = [self._docnum.get(i) for i in ids]
        live = snap.live
        return snap, [d if d is not None and d in live else None for d in found]
