"""Training a coarse quantizer with Faiss k-means.

Cosine ignores length, so training sees unit vectors; k-means is spherical (centroids
renormalised each iteration), seeded, on a seeded sample of the key's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from ebr.errors import StoreError
from ebr.quantization.coarse import unit_rows

F32 = npt.NDArray[np.float32]

#: Sample per centroid when the caller does not say (Faiss's own default cap).
POINTS_PER_CENTROID = 256


@dataclass(frozen=True)
class TrainingReport:
    """What training one key did: its vectors, the sample k-means ran on, clusters, seconds."""

    key: str
    vectors: int
    sample: int
    nlist: int
    seconds: float


def train_centroids(key: str, vectors: F32, nlist: int, *, sample_size: int | None,
                    seed: int, niter: int) -> tuple[F32, npt.NDArray[np.int64]]:
    """Spherical k-means centroids ``(nlist, d)`` for ``vectors``, and the rows of the
    sample it ran on (PQ training reuses them)."""
    n = len(vectors)
    if n < nlist:
        raise StoreError(f"cannot train the quantizer of {key!r}: {n} vectors for {nlist} "
                         "clusters; add documents or ask for fewer clusters (nlist)")
    size = min(n, sample_size if sample_size is not None else POINTS_PER_CENTROID * nlist)
    if size < nlist:
        raise StoreError(f"cannot train the quantizer of {key!r}: a sample of {size} for "
                         f"{nlist} clusters; raise sample_size")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size, replace=False)) if size < n else np.arange(n)
    sample = np.ascontiguousarray(unit_rows(vectors[rows]))
    kmeans = faiss.Kmeans(vectors.shape[1], nlist, niter=niter, seed=seed, spherical=True,
                          verbose=False,
                          # we sampled already; Faiss would subsample again / warn otherwise
                          max_points_per_centroid=max(1, -(-size // nlist)),
                          min_points_per_centroid=1)
    kmeans.train(sample)
    assert kmeans.centroids is not None  # set by train()
    return np.ascontiguousarray(kmeans.centroids, np.float32), rows.astype(np.int64)
