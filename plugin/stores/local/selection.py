"""Choosing the first ``size`` of many scored documents in a total order without sorting
them all: the hits' order, and a top-K ``match`` clause's."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Positions = npt.NDArray[np.intp]


def select(size: int, keys: Sequence[F64], id_of: Callable[[int], str], n: int) -> Positions:
    """Positions ``0..n-1`` of the ``size`` smallest by ``(*keys, id)``, in that order, without
    sorting everything: partition on each key in turn, comparing ids only among the ties
    that straddle the cut-off."""
    return _select(np.arange(n), list(keys), size, id_of)


def _select(idx: Positions, keys: list[F64], size: int, id_of: Callable[[int], str]) -> Positions:
    if size <= 0 or not len(idx):
        return np.empty(0, np.intp)
    if not keys:  # every remaining key tied: the smallest ids win
        return np.array(heapq.nsmallest(size, idx.tolist(), key=id_of), np.intp)
    if len(idx) <= size:
        return _sorted(idx, keys, id_of)
    first = keys[0][idx]
    cut = np.partition(first, size - 1)[size - 1]
    better = idx[first < cut]
    tied = idx[first == cut]
    return np.concatenate([_sorted(better, keys, id_of),
                           _select(tied, keys[1:], size - len(better), id_of)])


def _sorted(idx: Positions, keys: list[F64], id_of: Callable[[int], str]) -> Positions:
    """``idx`` ordered by ``(*keys, id)``: NumPy orders by the keys (numbers compare as in
    Python: -0.0 equals 0.0), ids are compared only within runs tied on every key."""
    if len(idx) <= 1:
        return idx
    columns = [k[idx] for k in keys]
    order = np.lexsort(columns[::-1])  # lexsort's last key is the primary one
    idx = idx[order]
    tied = np.ones(len(idx) - 1, np.bool_)
    for column in columns:
        ordered = column[order]
        tied &= ordered[1:] == ordered[:-1]
    if tied.any():
        # tied[i]: positions i and i + 1 tie; a run of them from a to b - 1 ties a..b
        edges = np.flatnonzero(np.diff(np.concatenate(([0], tied.view(np.int8), [0]))))
        for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            idx[a:b + 1] = sorted(idx[a:b + 1].tolist(), key=id_of)
    return idx
