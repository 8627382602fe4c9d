"""Categorical features hashed into buckets (EBR §2.3, §3; Que2Search's searcher country).

A feature is single-valued (one value or missing, e.g. a searcher's country) or multi-valued
(a list of values, e.g. a document's categories), and a multi-valued feature may carry a
weight per value (EBR: "for multi-hot vectors, a weighted combination of multiple
embeddings").  Values are hashed rather than looked up in a vocabulary so that unseen values
at serving time need no special case; a missing value is an empty bag, i.e. the zero vector.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeGuard

from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.hashing import DEFAULT_HASH_SEED, check_hashing, hash_bucket

if TYPE_CHECKING:  # torch: imported by featurize alone, so bags need no torch
    from ebr.encoders.features.batches import BagBatch

Scalar = str | int
CategoricalValue = Scalar | Sequence[Scalar] | Mapping[Scalar, float] | None
"""One sample's value: a scalar (single-valued), a list of scalars, a mapping value → weight
(weighted), or ``None`` when missing."""


class CategoricalFeaturizer:
    """Values of one declared categorical feature → a :class:`BagBatch` of hashed ids."""

    def __init__(
        self,
        name: str,
        buckets: int,
        seed: int = DEFAULT_HASH_SEED,
        multi_valued: bool = False,
        weighted: bool = False,
    ) -> None:
        check_hashing(buckets, seed, f"categorical {name!r}")
        if weighted and not multi_valued:
            raise EncoderConfigError(f"categorical {name!r}: a weighted feature must be multi_valued "
                                     "(weights combine several values)")
        self.name = name
        self.buckets = buckets
        self.seed = seed
        self.multi_valued = multi_valued
        self.weighted = weighted

    def bag(self, value: CategoricalValue, index: int = 0) -> tuple[list[int], list[float]]:
        """The ids and weights of one sample; ``index`` only places errors."""
        pairs = self._pairs(value, index)
        return [self._id(v) for v, _ in pairs], [w for _, w in pairs]

    def featurize(self, values: Sequence[CategoricalValue]) -> BagBatch:
        from ebr.encoders.features.batches import BagBatch

        bags = [self.bag(v, i) for i, v in enumerate(values)]
        return BagBatch.from_bags([ids for ids, _ in bags], [ws for _, ws in bags])

    def _id(self, value: Scalar) -> int:
        return hash_bucket(str(value), self.buckets, self.seed)

    def _pairs(self, value: CategoricalValue, index: int) -> list[tuple[Scalar, float]]:
        where = f"categorical {self.name!r}, sample {index}"
        if value is None:
            return []
        if _is_scalar(value):
            return [(value, 1.0)]  # a multi-valued feature may be given a lone value
        if not self.multi_valued:
            raise EncoderInputError(f"{where}: single-valued feature, expected a string or integer, "
                                    f"got {type(value).__name__}")
        if isinstance(value, Mapping):
            if not self.weighted:
                raise EncoderInputError(f"{where}: weights given but the feature is not declared "
                                        "weighted; give a list of values or declare it weighted")
            pairs: list[tuple[Scalar, float]] = []
            for v, w in value.items():
                if not _is_scalar(v):
                    raise EncoderInputError(f"{where}: value {v!r} is not a string or integer")
                if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
                    raise EncoderInputError(f"{where}: weight of {v!r} must be a finite number >= 0, "
                                            f"got {w!r}")
                pairs.append((v, float(w)))
            return pairs
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for v in value:
                if not _is_scalar(v):
                    raise EncoderInputError(f"{where}: value {v!r} is not a string or integer")
            return [(v, 1.0) for v in value]
        expected = "a list of values" + (" or a value→weight mapping" if self.weighted else "")
        raise EncoderInputError(f"{where}: expected {expected}, got {type(value).__name__}")


def _is_scalar(value: object) -> TypeGuard[Scalar]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
