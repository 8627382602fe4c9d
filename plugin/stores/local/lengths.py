"""How many terms each document holds per namespace: BM25's document length, and the
namespace's statistics over the live documents (:mod:`ebr.stores.bm25`).

Kept beside the posting lists in each snapshot, built from them on open and updated by each
write, so the local store scores ``match`` clauses from what it already keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ebr.stores.local.vectors import append

U32 = npt.NDArray[np.uint32]


@dataclass(frozen=True)
class NamespaceLengths:
    """One namespace: ``lengths[n]`` is the number of its terms document ``n`` holds (an
    append-only buffer shared between snapshots: only the snapshot's ``count`` first entries
    are its own); ``documents`` the live documents holding at least one term there,
    ``total`` the terms they hold in all."""

    lengths: U32
    documents: int = 0
    total: int = 0

    @property
    def average(self) -> float:
        return self.total / self.documents if self.documents else 0.0


def load_lengths(terms: Mapping[str, Iterable[int]], count: int
                 ) -> dict[str, NamespaceLengths]:
    """The lengths of freshly read documents ``0..count-1`` (all live), from their postings
    (``"ns:value"`` -> document numbers)."""
    by_namespace: dict[str, list[npt.NDArray[np.int64]]] = {}
    for term, docnums in terms.items():
        namespace = term.partition(":")[0]
        by_namespace.setdefault(namespace, []).append(np.asarray(docnums, np.int64))
    out: dict[str, NamespaceLengths] = {}
    for namespace, parts in by_namespace.items():
        lengths = np.bincount(np.concatenate(parts), minlength=count).astype(np.uint32)
        out[namespace] = NamespaceLengths(lengths, int(np.count_nonzero(lengths)),
                                          int(lengths.sum()))
    return out


def updated_lengths(base: Mapping[str, NamespaceLengths], used: int,
                    added: Mapping[str, list[int]], removed: Iterable[int],
                    count: int) -> dict[str, NamespaceLengths]:
    """The lengths after a write: documents ``removed`` leave (their entries stay in the
    buffers, unread), documents ``used..count-1`` arrive with ``added[ns][i]`` terms in
    namespace ``ns`` for the ``i``-th of them."""
    gone = np.fromiter(removed, np.int64)
    out: dict[str, NamespaceLengths] = {}
    for namespace in base.keys() | added.keys():
        current = base.get(namespace) or NamespaceLengths(np.zeros(0, np.uint32))
        lengths = current.lengths
        if len(lengths) < used:  # a namespace no document held until now
            lengths = np.zeros(used, np.uint32)
        old = lengths[gone] if len(gone) else np.zeros(0, np.uint32)
        new = np.asarray(added.get(namespace) or np.zeros(count - used), np.uint32)
        lengths = append(lengths, used, new)
        out[namespace] = NamespaceLengths(
            lengths,
            current.documents - int(np.count_nonzero(old)) + int(np.count_nonzero(new)),
            current.total - int(old.sum()) + int(new.sum()))
    return out
