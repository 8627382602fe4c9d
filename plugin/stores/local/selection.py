"""Choosing the first ``size`` of many scored documents in a total order without sorting
them all: the hits' order, and a top-K ``match`` clause's."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def select(size: int, keys: Sequence[F64], id_of: Callable[[int], str], n: int) -> list[int]:
    """Positions ``0..n-1`` of the ``size`` smallest by ``(*keys, id)``, in that order, without
    sorting everything: partition on each key in turn, comparing ids only among the ties
    that straddle the cut-off."""
    return _select(np.arange(n), list(keys), size, id_of)


def _select(idx: npt.NDArray[np.intp], keys: list[F64], size: int,
            id_of: Callable[[int], str]) -> list[int]:
    if size <= 0 or not len(idx):
        return []
    if not keys:  # every remaining key tied: the smallest ids win
        return heapq.nsmallest(size, idx.tolist(), key=id_of)
    if len(idx) <= size:
        return _sorted(idx, keys, id_of)
    first = keys[0][idx]
    cut = np.partition(first, size - 1)[size - 1]
    better = idx[first < cut]
    tied = idx[first == cut]
    return _sorted(better, keys, id_of) + _select(tied, keys[1:], size - len(better), id_of)


def _sorted(idx: npt.NDArray[np.intp], keys: list[F64], id_of: Callable[[int], str]) -> list[int]:
    positions = idx.tolist()
    rows = sorted(zip(*(k[idx].tolist() for k in keys), map(id_of, positions), positions,
                      strict=True))
    return [r[-1] for r in rows]
