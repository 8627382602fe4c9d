"""The default scorer: a weighted sum of the features, needing no training.

Cosine dominates (weight 1 per embedding key): EBR §5 and Que2Search §6.5 found the
query-document cosine the strongest single ranking feature, and it is the one feature on a
comparable scale for every hit, whichever branch found it.  The others break near-ties:
BM25 is unbounded (a strong multi-term title match scores about 10), so 0.01 per point makes
such a match worth a 0.1 cosine gain; holding all the query's terms is worth 0.1; matching
the searcher's context 0.05; the static rank 0.01 per ``log1p`` unit (a 100x more popular
document gains about 0.05).  Having matched through ``nn`` adds nothing by itself: the cosine
already says how well.  The trigram similarity and the term counts are for trained scorers
(weight 0 here): the counts are constant within a request, the trigrams overlap the terms held.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ebr.errors import RerankerError
from ebr.ranking.feature_set import (
    BM25,
    CONTEXT_MATCH,
    COSINE,
    DOCUMENT_TERMS,
    QUERY_TERMS,
    QUERY_TERMS_HELD,
    STATIC_RANK,
    TERM_TRIGRAMS,
    VIA_NN,
    VIA_TERMS,
    FeatureSet,
    family,
)
from ebr.ranking.features import compute_features
from ebr.ranking.ordering import ranked
from ebr.ranking.protocol import RankedHit, RerankRequest
from ebr.stores.protocol import Hit, Store

#: Weight per feature family (``cosine`` applies to every ``cosine:<key>``).
DEFAULT_WEIGHTS: Mapping[str, float] = {
    COSINE: 1.0, BM25: 0.01, VIA_TERMS: 0.02, VIA_NN: 0.0, QUERY_TERMS_HELD: 0.1,
    TERM_TRIGRAMS: 0.0, QUERY_TERMS: 0.0, DOCUMENT_TERMS: 0.0, CONTEXT_MATCH: 0.05,
    STATIC_RANK: 0.01,
}


class LinearReranker:
    """``score = sum(weight x value)``; each hit's contributions are the terms of that sum.

    ``weights`` override :data:`DEFAULT_WEIGHTS` by family (``"bm25"``) or by feature name
    (``"bm25:title"``); a name overrides its family."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        for name, weight in (weights or {}).items():
            if not math.isfinite(weight):
                raise RerankerError(f"the weight of {name!r} must be a finite number; got {weight}")
        self.weights: dict[str, float] = {**DEFAULT_WEIGHTS, **(weights or {})}

    def weight_vector(self, feature_set: FeatureSet) -> npt.NDArray[np.float64]:
        unknown = sorted(n for n in self.weights
                         if n not in DEFAULT_WEIGHTS and n not in feature_set.columns)
        if unknown:
            raise RerankerError(f"weights for features this index does not have: {', '.join(unknown)} "
                                f"(it has {', '.join(feature_set.names)})")
        return np.array([self.weights.get(n, self.weights[family(n)]) for n in feature_set.names],
                        np.float64)

    def rerank(self, request: RerankRequest, hits: Sequence[Hit], store: Store) -> list[RankedHit]:
        features = compute_features(request, hits, store)
        contributions = features.values * self.weight_vector(features.feature_set)
        names = features.feature_set.names
        return ranked(features, contributions.sum(axis=1),
                      lambda i: dict(zip(names, contributions[i].tolist(), strict=True)))
