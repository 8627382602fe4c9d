"""Product-quantization codes of a key's residuals, for compressed verification (EBR §4.1).

A document's unit vector ``x`` lies in coarse cluster ``c``; its code quantizes the residual
``x - centroid[c]``, after an optional OPQ rotation ``R`` (orthonormal), with ``m`` 8-bit
sub-quantizers.  The reconstruction is ``x̂ = centroid[c] + Rᵀ decode(code)``, and a query's
approximate cosine distance to it ``1 - (q̂ . x̂) / |x̂|`` (``q̂`` the unit query), computed
from per-query tables: ``q̂ . centroid`` per cluster and ``(R q̂)_j . codeword`` per
sub-quantizer ``j`` — ``m`` table lookups per row.  ``|x̂|`` is computed once per row when
it is encoded.  The codes only pick which rows the exact path verifies (:mod:`ebr.stores.local.execution`).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from ebr.errors import StoreError
from ebr.mappings.schema import EmbeddingKey
from ebr.quantization.coarse import CentroidQuantizer, assign, unit_rows

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
Rows = npt.NDArray[np.int64]

#: Codewords per sub-quantizer (8-bit codes); PQ training needs at least this many vectors.
KSUB = 256
#: Rows decoded at once when computing reconstruction norms.
_CHUNK = 16384
#: Up to this many rows, approximate distances use one flat gather (measured faster
#: below a few thousand rows at m = 32; the per-column loop wins above).
_FLAT_ROWS = 2048


@dataclass(frozen=True)
class ProductCodes:
    """A trained product quantizer of one key's residuals: the coarse ``centroids`` they
    are residuals from ``(nlist, d)``, ``codebooks`` ``(m, 256, d/m)`` and the OPQ
    ``rotation`` ``(d, d)`` applied before quantizing (None without OPQ)."""

    centroids: F32
    codebooks: F32
    rotation: F32 | None

    @property
    def m(self) -> int:
        return int(self.codebooks.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.centroids.shape[1])

    def _rotate(self, residuals: F32) -> F32:
        if self.rotation is None:
            return residuals
        return np.ascontiguousarray(residuals @ self.rotation.T, np.float32)

    def encode(self, units: F32, clusters: I32) -> tuple[U8, F32]:
        """Codes ``(n, m)`` of unit rows in the given clusters, and ``|x̂|`` of each."""
        if not len(units):
            return np.empty((0, self.m), np.uint8), np.empty(0, np.float32)
        pq = faiss.ProductQuantizer(self.dimension, self.m, 8)
        faiss.copy_array_to_vector(self.codebooks.ravel(), pq.centroids)
        y = self._rotate(np.asarray(units - self.centroids[clusters], np.float32))
        codes = np.asarray(pq.compute_codes(np.ascontiguousarray(y)), np.uint8)
        return codes, self.norms(codes, clusters)

    def norms(self, codes: U8, clusters: I32) -> F32:
        """``|x̂|`` of each coded row, a block at a time."""
        out = np.empty(len(codes), np.float32)
        picks = np.arange(self.m)
        for start in range(0, len(codes), _CHUNK):
            block = codes[start:start + _CHUNK]
            decoded = self.codebooks[picks, block].reshape(len(block), self.dimension)
            if self.rotation is not None:
                decoded = decoded @ self.rotation  # Rᵀ y for each row y
            recon = self.centroids[clusters[start:start + _CHUNK]] + decoded
            out[start:start + len(block)] = np.sqrt(np.einsum("ij,ij->i", recon, recon))
        return out

    def tables(self, unit_query: F32) -> tuple[F32, F32]:
        """The query's tables: ``q̂ . centroid`` per cluster, ``(m, 256)`` sub-products."""
        along = self.centroids @ unit_query
        rotated = unit_query if self.rotation is None else self.rotation @ unit_query
        # a batched matrix-vector product: 30x faster than broadcasting and summing
        sub = np.matmul(self.codebooks, rotated.reshape(self.m, -1, 1))[:, :, 0]
        return np.asarray(along, np.float32), np.ascontiguousarray(sub, np.float32)


class CodedDistances:
    """Approximate cosine distances from one query to coded rows of a table."""

    def __init__(self, product: ProductCodes, query: F32) -> None:
        q = np.asarray(query, np.float32)
        self.along, self.table = product.tables(q / np.float32(np.linalg.norm(q)))
        self.offsets = np.arange(product.m, dtype=np.intp) * KSUB
        self.scored = 0  # rows scored by codes so far

    def distances(self, codes: U8, clusters: I32, norms: F32, rows: Rows) -> F32:
        """Approximate distances of ``rows``: one gather per sub-quantizer (``m`` passes over
        a contiguous column), never a loop per row."""
        self.scored += len(rows)
        dots = self.along[clusters[rows]]
        if len(rows) <= _FLAT_ROWS:  # one gather: fewer NumPy calls for few rows
            index = codes[rows].astype(np.intp)
            index += self.offsets
            dots += self.table.ravel().take(index).sum(axis=1, dtype=np.float32)
        else:  # per sub-quantizer, its 256-entry table stays in L1 cache
            columns = np.ascontiguousarray(codes[rows].T)
            for j in range(len(self.table)):
                dots += self.table[j].take(columns[j])
        return np.asarray(1.0 - dots / norms[rows], np.float32)


def train_product(key: str, units: F32, clusters: I32, centroids: F32, m: int, *,
                  opq: bool, seed: int, opq_iterations: int | None = None) -> ProductCodes:
    """PQ (and OPQ) trained on the residuals of a sample of unit rows ``units``.
    ``opq_iterations`` caps OPQ's alternating rotation/PQ steps (Faiss's default, 50,
    when None): each costs several PQ trainings, so a quick sweep takes fewer."""
    n, d = units.shape
    if n < KSUB:
        raise StoreError(f"cannot train the PQ codes of {key!r}: a sample of {n} vectors; "
                         f"8-bit codes need at least {KSUB} (add documents or raise "
                         "sample_size)")
    residuals = np.ascontiguousarray(units - centroids[clusters], np.float32)
    rotation: F32 | None = None
    if opq:
        matrix = faiss.OPQMatrix(d, m)
        matrix.verbose = False
        if opq_iterations is not None:
            matrix.niter = opq_iterations
        inner = _quantizer(d, m, n, seed)  # seeded, and quiet about small samples
        matrix.pq = inner
        matrix.train(residuals)
        rotation = np.ascontiguousarray(
            faiss.vector_to_array(matrix.A).reshape(d, d), np.float32)
        residuals = np.ascontiguousarray(residuals @ rotation.T, np.float32)
    pq = _quantizer(d, m, n, seed)
    pq.train(residuals)
    codebooks = faiss.vector_to_array(pq.centroids).reshape(m, KSUB, d // m)
    return ProductCodes(np.ascontiguousarray(centroids, np.float32),
                        np.ascontiguousarray(codebooks, np.float32), rotation)


def train_key_product(spec: EmbeddingKey, sample: F32, centroids: F32, *,
                      seed: int) -> ProductCodes | None:
    """The PQ (and OPQ) tables ``spec``'s schema asks for (None if none), trained on the
    sample its coarse ``centroids`` were trained on: what both stores keep."""
    if not spec.quantizer.pq_m:
        return None
    units = unit_rows(sample)
    return train_product(spec.name, units, assign(CentroidQuantizer(centroids), units),
                         centroids, spec.quantizer.pq_m, opq=spec.quantizer.opq, seed=seed)


def _quantizer(d: int, m: int, n: int, seed: int) -> faiss.ProductQuantizer:
    pq = faiss.ProductQuantizer(d, m, 8)
    pq.cp.seed = seed
    pq.cp.min_points_per_centroid = 1  # 256 vectors suffice (we checked); no warning
    pq.cp.max_points_per_centroid = max(1, -(-n // KSUB))  # we sampled already
    return pq
