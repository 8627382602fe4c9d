"""Coarse quantizers: which clusters a query probes, which cluster a document belongs to.

Stores assign documents with :func:`assign`, through the same :class:`CentroidQuantizer` the
planner probes with, so a document's cluster term and a query's probe terms never disagree.

The planner only needs :class:`CoarseQuantizer`; :class:`CentroidQuantizer` is the plain
NumPy implementation (the stores may wrap Faiss behind the same protocol).  Cosine ignores
length, so vectors are L2-normalised here before ranking clusters by L2 distance to the
centroid as in Faiss ``IndexIVF`` (centroids of unit vectors are not unit themselves, so the
ranking would otherwise depend on the query's length).  Ties go to the lower cluster id.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

#: Scores computed at once by :meth:`CentroidQuantizer.assign` (1 M floats = 4 MB: the
#: argmax reads them from cache; 64 MB chunks took twice as long).
ASSIGN_CHUNK_FLOATS = 1 << 20


class CoarseQuantizer(Protocol):
    @property
    def nlist(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def probe(self, vector: FloatArray, nprobe: int) -> list[int]:
        """The ids of the ``nprobe`` clusters nearest ``vector``, nearest first."""
        ...

    def assign(self, vectors: FloatArray) -> npt.NDArray[np.int64]:
        """The nearest cluster id of each row of ``vectors``."""
        ...


class CentroidQuantizer:
    """A coarse quantizer given by its centroids (``nlist x d``)."""

    def __init__(self, centroids: npt.ArrayLike) -> None:
        c = np.ascontiguousarray(centroids, dtype=np.float32)
        if c.ndim != 2 or c.shape[0] < 1:
            raise ValueError(f"centroids must be a non-empty (nlist, d) matrix, got {c.shape}")
        self.centroids = c
        self._half_norms = 0.5 * np.einsum("ij,ij->i", c, c)

    @property
    def nlist(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def _scores(self, vectors: FloatArray) -> FloatArray:
        # ||x - c||^2 = ||x||^2 - 2 (x.c - ||c||^2 / 2): rank by x.c - ||c||^2/2, larger nearer.
        scores = vectors @ self.centroids.T
        scores -= self._half_norms  # in place: a chunk's scores are 4 MB
        return scores

    def _unit_rows(self, vectors: npt.ArrayLike) -> FloatArray:
        v = np.asarray(vectors, dtype=np.float32)
        v = v.reshape(-1, v.shape[-1]) if v.ndim else v.reshape(1, 1)
        if v.shape[1] != self.dimension:
            raise ValueError(f"vectors have dimension {v.shape[1]}, the quantizer {self.dimension}")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.asarray(v / np.where(norms == 0, 1, norms), dtype=np.float32)

    def probe(self, vector: FloatArray, nprobe: int) -> list[int]:
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.dimension:
            raise ValueError(f"vector has dimension {v.shape[0]}, the quantizer {self.dimension}")
        # math.sqrt of the float32 sum rounds to the same float32 norm as np.sqrt (a double
        # square root rounded to float32 is correctly rounded); that and ``ndarray.dot`` (the
        # same BLAS call as ``@``) cost less per call.
        norm = math.sqrt(v.dot(v)) or 1.0
        # Negated scores (smaller is nearer), in place.
        dist = self.centroids.dot(v / norm)  # (nlist,)
        np.subtract(self._half_norms, dist, out=dist)
        n = min(nprobe, self.nlist)
        # The clusters no farther than the n-th nearest, in id order: n of them, more when
        # several tie at the cut-off.  A stable sort of them then ranks nearest first with ties
        # to the lower id, and keeps the lowest ids among those tied at the cut-off.
        cut = np.partition(dist, n - 1)[n - 1]
        near = (dist <= cut).nonzero()[0]
        if len(near) < n:  # NaN distances compare false: rank them last, as sorting does
            near = np.arange(self.nlist)
        return near[dist[near].argsort(kind="stable")[:n]].tolist()  # type: ignore[no-any-return]

    def assign(self, vectors: FloatArray) -> npt.NDArray[np.int64]:
        """np.argmax takes the first maximum, so ties go to the lower id here too.  Rows are
        scored in chunks: a million rows against a thousand centroids at once would need 4 GB."""
        v = np.asarray(vectors, dtype=np.float32)
        rows = v.reshape(-1, v.shape[-1]) if v.ndim else v.reshape(1, 1)
        out = np.empty(rows.shape[0], dtype=np.int64)
        step = max(1, ASSIGN_CHUNK_FLOATS // self.nlist)
        for start in range(0, rows.shape[0], step):
            chunk = self._unit_rows(rows[start:start + step])
            out[start:start + step] = np.argmax(self._scores(chunk), axis=1)
        return out


def unit_rows(vectors: FloatArray) -> FloatArray:
    """Each row divided by its length (rows are never zero: ingest refuses zero vectors)."""
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def assign(quantizer: CentroidQuantizer, vectors: FloatArray) -> npt.NDArray[np.int32]:
    """The cluster of each row, as the planner's probes name clusters (a block of rows at a
    time: no unit copy of a million rows)."""
    out = np.empty(len(vectors), np.int32)
    step = max(1, ASSIGN_CHUNK_FLOATS // quantizer.nlist)
    for start in range(0, len(vectors), step):
        out[start:start + step] = quantizer.assign(unit_rows(vectors[start:start + step]))
    return out
