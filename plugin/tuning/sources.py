"""What ``ebr tune`` measures on: a matrix of embeddings, queries and optional ground truth.

Vectors come from an ``.npy`` matrix, an ``.npz`` written by ``ebr encode`` (its
``vectors``), or an index's embeddings (:meth:`ebr.stores.protocol.Store.all_vectors`).
Queries are a second file or, by default, a seeded sample of the rows held out of the base
(a row is its own nearest neighbour, so it cannot stay in the base it queries).  Every bad
input is a :class:`~ebr.errors.TuningError` naming the file and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ebr.errors import TuningError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TuningData:
    """The base rows searched, the queries, and (optionally) their reference neighbours
    as base-row indices ``(queries, k)``, nearest first."""

    base: F32
    queries: F32
    ground_truth: I64 | None = None


def read_matrix(path: Path, what: str = "vectors") -> F32:
    """A float matrix ``(n, d)`` from ``.npy`` or ``.npz`` (its ``vectors`` array, or its only
    array), checked: two dimensions, at least one row, finite, no zero row (cosine needs a
    direction)."""
    array = _load(path, what, "vectors")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise TuningError(f"{path}: {what} must be a matrix (rows, dimension); got shape "
                          f"{array.shape}")
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise TuningError(f"{path}: {what} must be numbers; got {array.dtype}")
    matrix = np.ascontiguousarray(array, np.float32)
    bad = ~np.isfinite(matrix).all(axis=1) | ~matrix.any(axis=1)
    if bad.any():
        raise TuningError(f"{path}: {what} row {int(np.argmax(bad))} is zero or not finite "
                          f"({int(bad.sum())} such rows); cosine needs finite, non-zero vectors")
    return matrix


def read_ground_truth(path: Path, queries: int, rows: int) -> I64:
    """Neighbour ids ``(queries, k)`` into the base rows, nearest first (the Faiss
    ``groundtruth`` layout)."""
    array = _load(path, "ground truth", "ground_truth")
    if array.ndim != 2 or array.shape[0] != queries or not np.issubdtype(array.dtype, np.integer):
        raise TuningError(f"{path}: ground truth must be an integer matrix with one row per "
                          f"query ({queries}); got {array.dtype} of shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= rows):
        raise TuningError(f"{path}: ground truth ids must be base rows 0..{rows - 1}; found "
                          f"{int(array.min())}..{int(array.max())}")
    return array.astype(np.int64)


def hold_out(vectors: F32, count: int, seed: int) -> TuningData:
    """``count`` seeded rows as queries, the rest as the base."""
    if not 1 <= count < len(vectors):
        raise TuningError(f"cannot hold out {count} queries from {len(vectors)} vectors; ask "
                          "for fewer queries (--num-queries) or give a queries file")
    picked = np.zeros(len(vectors), bool)
    picked[np.random.default_rng(seed).choice(len(vectors), count, replace=False)] = True
    return TuningData(vectors[~picked], vectors[picked])


def given_queries(base: F32, queries: F32, ground_truth: I64 | None = None) -> TuningData:
    """Base and queries from separate files, checked to share a dimension."""
    if queries.shape[1] != base.shape[1]:
        raise TuningError(f"the queries have dimension {queries.shape[1]}, the vectors "
                          f"{base.shape[1]}")
    return TuningData(base, queries, ground_truth)


def _load(path: Path, what: str, npz_name: str) -> npt.NDArray[np.generic]:
    try:
        if path.suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False))
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if npz_name in names:
                    return np.asarray(archive[npz_name])
                if len(names) == 1:
                    return np.asarray(archive[names[0]])
                raise TuningError(f"{path}: no {npz_name!r} array among {names}")
    except (OSError, ValueError, EOFError) as e:
        raise TuningError(f"{path}: cannot read {what}: {e}") from None
    raise TuningError(f"{path}: {what} must be an .npy or .npz file (or give an index)")
