"""Checks of the arguments every store takes besides documents (those are
:mod:`ebr.stores.documents`'): an embedding key's name, centroids given for it, and a
search's size."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError, StoreError
from ebr.mappings.schema import EmbeddingKey, Schema

#: The largest size or offset a search takes (OpenSearch's, a Java int).
MAX_SIZE = 2**31 - 1


def schema_key(schema: Schema, key: str) -> EmbeddingKey:
    """The schema's embedding key ``key``, or a StoreError naming the declared ones."""
    spec = schema.key(key)
    if spec is None:
        known = ", ".join(k.name for k in schema.keys) or "none"
        raise StoreError(f"unknown embedding key {key!r}; the schema declares: {known}")
    return spec


def check_size(value: object, name: str = "size") -> int:
    """``value`` if it is a whole number from 0 to :data:`MAX_SIZE` (not a bool), else a
    PlanError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise PlanError(f"{name} must be a whole number from 0 to {MAX_SIZE}, got {value!r}")
    return value


def checked_centroids(spec: EmbeddingKey, centroids: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``centroids`` as a finite float32 ``(nlist, dimension)`` matrix for ``spec``."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] != spec.dimension:
        raise StoreError(f"centroids for {spec.name!r} must be a (nlist, {spec.dimension}) "
                         f"matrix, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise StoreError(f"centroids for {spec.name!r} hold NaN or infinite values")
    return c
