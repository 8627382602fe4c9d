"""Exact cosine neighbours and the recall figures of EBR §4.1.

ebr measures closeness as cosine distance (:mod:`ebr.mappings.space`), so every vector is
L2-normalised first and exact search is an inner-product scan (Faiss ``IndexFlatIP``).
Neighbour lists are ``(queries, k)`` row indices, nearest first, ``-1`` where a list is
shorter than ``k`` (Faiss's padding).

>>> found = np.array([[3, 1, -1], [0, 2, 4]])
>>> one_recall_at(found, np.array([1, 5]), 2)
0.5
>>> recall_at(found, np.array([[1, 2, 3], [4, 0, 9]]), 3)
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: Base rows compared with every query at once when counting radius matches.
_BLOCK_ROWS = 65536


def exact_neighbours(units: F32, queries: F32, k: int) -> tuple[I64, F32]:
    """The ``k`` nearest rows of ``units`` to each unit query, and their cosine distances."""
    index = faiss.IndexFlatIP(units.shape[1])
    index.add(np.ascontiguousarray(units, np.float32))
    sims, ids = index.search(np.ascontiguousarray(queries, np.float32), min(k, len(units)))
    return ids.astype(np.int64), np.asarray(1.0 - sims, np.float32)


def count_within(units: F32, queries: F32, radii: Sequence[float]) -> npt.NDArray[np.int64]:
    """``(queries, radii)``: how many rows lie within each cosine radius of each query (the
    exact answer of ``(nn key :radius r :exact true)``), a block of rows at a time."""
    counts = np.zeros((len(queries), len(radii)), np.int64)
    for start in range(0, len(units), _BLOCK_ROWS):
        dist = 1.0 - queries @ units[start:start + _BLOCK_ROWS].T  # (queries, block)
        for j, r in enumerate(radii):
            counts[:, j] += (dist <= r).sum(axis=1)
    return counts


def one_recall_at(found: I64, nearest: I64, k: int) -> float:
    """EBR's 1-recall@k: the share of queries whose exact nearest row (``nearest[i]``) is
    among the first ``k`` found."""
    return float(np.mean(np.any(found[:, :k] == nearest[:, None], axis=1)))


def recall_at(found: I64, truth: I64, k: int) -> float:
    """recall@k against exact search: ``|found[:k] ∩ truth[:k]| / k`` averaged over queries
    (``truth`` has at least ``k`` columns; ``-1`` padding in ``found`` matches nothing)."""
    top = found[:, :k]
    hits = (top[:, :, None] == truth[:, None, :k]) & (top[:, :, None] >= 0)
    return float(hits.any(axis=2).sum(axis=1).mean() / k)
