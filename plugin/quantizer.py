"""Coarse quantizers: which clusters a query probes, which cluster a document belongs to.

The planner only needs :class:`CoarseQuantizer`; :class:`CentroidQuantizer` is the plain
NumPy implementation (the stores may wrap Faiss behind the same protocol).  Vectors are
L2-normalised for the cosine space, and clusters are ranked by L2 distance to the centroid
as in Faiss ``IndexIVF``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class CoarseQuantizer(Protocol):
    @property
    def nlist(self) -> int: ...

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
        return vectors @ self.centroids.T - self._half_norms  # type: ignore[no-any-return]

    def probe(self, vector: FloatArray, nprobe: int) -> list[int]:
        scores = self._scores(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        n = min(nprobe, self.nlist)
        if n < self.nlist:
            top = np.argpartition(-scores, n - 1)[:n]
        else:
            top = np.arange(self.nlist)
        # nearest first; ties by cluster id so the probe list is deterministic
        order = np.lexsort((top, -scores[top]))
        return [int(i) for i in top[order]]

    def assign(self, vectors: FloatArray) -> npt.NDArray[np.int64]:
        v = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        return np.asarray(np.argmax(self._scores(v), axis=1), dtype=np.int64)
