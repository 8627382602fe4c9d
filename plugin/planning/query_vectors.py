"""Query embeddings as the planner and compilers take them: one lookup that checks them."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError
from ebr.mappings.schema import Schema

Vectors = Mapping[str, npt.NDArray[np.floating]]


def query_vector(key: str, vectors: Vectors, schema: Schema | None = None) -> npt.NDArray[np.float32]:
    """The query embedding for ``key`` as a flat float32 array, or a :class:`PlanError` saying
    what is wrong: missing, not finite, zero (cosine is undefined), or of the wrong dimension."""
    v = vectors.get(key)
    if v is None:
        raise PlanError(f"no query embedding for key {key!r}")
    try:
        arr = np.asarray(v, dtype=np.float32)
    except (TypeError, ValueError):
        raise PlanError(f"query embedding for key {key!r} must be an array of numbers, got "
                        f"{type(v).__name__}") from None
    if arr.ndim != 1:
        if arr.ndim == 0 or sum(n != 1 for n in arr.shape) > 1:  # (1, d) is one vector, (2, 2) not
            raise PlanError(f"query embedding for key {key!r} must be one vector, got shape "
                            f"{arr.shape}")
        arr = arr.ravel()
    # One sum of squares settles it: in float64 the squares of float32 values neither overflow
    # nor underflow, so it is positive and finite exactly when every element is finite and
    # one is non-zero.  (``ndarray.dot`` costs less per call than ``@``.)
    wide = arr.astype(np.float64)
    if not 0.0 < float(wide.dot(wide)) < math.inf:
        raise PlanError(f"query embedding for key {key!r} must be finite and non-zero "
                        "(cosine is undefined for a zero vector)")
    spec = schema.key(key) if schema is not None else None
    if spec is not None and arr.shape[0] != spec.dimension:
        raise PlanError(f"query embedding for key {key!r} has dimension {arr.shape[0]}; "
                        f"the schema says {spec.dimension}")
    return arr


def query_vector_values(key: str, vectors: Vectors, schema: Schema) -> list[float]:
    """``query_vector(key, vectors, schema).tolist()``: the embedding as the JSON numbers a
    request body carries.  The compilers run it for every query, so the common case is checked
    on the list itself (which the body needs anyway) rather than on a float64 copy; anything
    the quick check does not accept goes to :func:`query_vector`, to be refused with its
    message (or accepted, as a key missing from the schema is)."""
    vector = vectors.get(key)
    spec = schema.key(key)
    if isinstance(vector, np.ndarray) and vector.ndim == 1 and spec is not None:
        values: list[float] = vector.astype(np.float32, copy=False).tolist()
        # A sum of float32 values cannot overflow a double, so it is finite exactly when every
        # value is; any() then says one is non-zero.
        if len(values) == spec.dimension and math.isfinite(sum(values)) and any(values):
            return values
    return query_vector(key, vectors, schema).tolist()  # type: ignore[no-any-return]
