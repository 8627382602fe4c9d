"""The trained scorer: LightGBM's LambdaRank over the features, from graded judgments.

Why gradient-boosted trees with LambdaRank rather than a torch pairwise/listwise model: the
features are few, heterogeneous and unscaled (cosines, unbounded BM25, 0/1 indicators, log
ranks), which trees take as they are, thresholds and interactions included ("BM25 matters
when the cosine is weak"); LambdaRank optimises nDCG, the metric ebr reports, directly from
graded lists; a few thousand judged candidates train it in seconds on one CPU core,
deterministically; it explains every hit exactly (``pred_contrib``: TreeSHAP values that
sum to the score); and it is what Que2Search §6.5 ranks with (a GBDT first stage).

Grades are any numbers >= 0 (candidates without a grade count 0); each distinct grade is a
LightGBM label whose gain is the grade itself, so nDCG's gains follow the judgments.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ebr.errors import RerankerError
from ebr.mappings.schema import Schema
from ebr.ranking.feature_set import FeatureSet
from ebr.ranking.features import compute_features
from ebr.ranking.ordering import ranked
from ebr.ranking.protocol import RankedHit, RerankRequest
from ebr.ranking.reranker_file import RerankerFile, read_reranker_file, write_reranker_file
from ebr.stores.protocol import Hit, Store

SCORER = "lambdarank"
#: The contribution that is no feature's: the model's expected score (TreeSHAP's base value).
BIAS = "bias"


def _lightgbm() -> ModuleType:
    try:
        import lightgbm
    except ImportError:
        raise RerankerError("the trained reranker needs LightGBM: pip install 'ebr[rerank]'") from None
    return lightgbm


@dataclass(frozen=True)
class JudgedSearch:
    """One training group: a request, the candidates a search returned for it (retrieve them
    as serving will, so the scorer learns the candidates it will see), and graded relevance
    per document id."""

    request: RerankRequest
    hits: Sequence[Hit]
    grades: Mapping[str, float]


@dataclass(frozen=True)
class LambdaRankSettings:
    """LightGBM's settings: boosting ``rounds``, ``learning_rate``, ``leaves`` per tree,
    ``min_leaf`` candidates per leaf; one thread and a fixed seed make training repeatable."""

    rounds: int = 200
    learning_rate: float = 0.05
    leaves: int = 15
    min_leaf: int = 5
    seed: int = 0
    threads: int = 1


class LambdaRankReranker:
    """Scores with a trained LightGBM booster; refuses an index whose features differ from
    those it was trained for.  Safe to share between threads (predictions are serialised:
    LightGBM's predictor set-up is not thread-safe)."""

    def __init__(self, model: str, feature_set: FeatureSet) -> None:
        lightgbm = _lightgbm()
        try:
            self._booster = lightgbm.Booster(model_str=model)
        except lightgbm.basic.LightGBMError as e:
            raise RerankerError(f"not a LightGBM model: {e}") from None
        if self._booster.num_feature() != len(feature_set.names):
            raise RerankerError(f"the model takes {self._booster.num_feature()} features, its "
                                f"feature list names {len(feature_set.names)}")
        self.model = model
        self.feature_set = feature_set
        self._lock = threading.Lock()

    def rerank(self, request: RerankRequest, hits: Sequence[Hit], store: Store) -> list[RankedHit]:
        actual = FeatureSet.for_schema(store.schema)
        self.feature_set.require(actual, "this reranker")
        features = compute_features(request, hits, store, actual)
        if not features.hits:
            return []
        with self._lock:
            contributions = np.asarray(self._booster.predict(features.values, pred_contrib=True),
                                       np.float64)
        return ranked(features, contributions.sum(axis=1), contributions,
                      (*self.feature_set.names, BIAS))

    def save(self, path: str | os.PathLike[str]) -> None:
        write_reranker_file(path, RerankerFile(SCORER, self.feature_set, self.model))


def load_reranker(path: str | os.PathLike[str], schema: Schema | None = None) -> LambdaRankReranker:
    """A reranker saved by :meth:`LambdaRankReranker.save`; with ``schema``, refused at once
    unless it was trained for that index's features."""
    content = read_reranker_file(path)
    if content.scorer != SCORER:
        raise RerankerError(f"{path} holds a {content.scorer!r} scorer; this ebr reads {SCORER!r}")
    if schema is not None:
        content.feature_set.require(FeatureSet.for_schema(schema), f"the reranker in {path}")
    return LambdaRankReranker(content.model, content.feature_set)


def train_lambdarank(searches: Iterable[JudgedSearch], store: Store,
                     settings: LambdaRankSettings = LambdaRankSettings()) -> LambdaRankReranker:
    """A LambdaRank scorer trained on ``searches``, their features computed on ``store``."""
    lightgbm = _lightgbm()
    feature_set = FeatureSet.for_schema(store.schema)
    blocks, grades, sizes = [], [], []
    for n, search in enumerate(searches, 1):
        if not search.hits:
            continue
        for doc_id, grade in search.grades.items():
            if not (math.isfinite(grade) and grade >= 0):
                raise RerankerError(f"search {n}: the grade of {doc_id!r} must be a number >= 0; "
                                    f"got {grade}")
        blocks.append(compute_features(search.request, search.hits, store, feature_set).values)
        grades.append(np.array([search.grades.get(h.id, 0.0) for h in search.hits], np.float64))
        sizes.append(len(search.hits))
    if not any(len(np.unique(g)) > 1 for g in grades):
        raise RerankerError("no search has candidates of different grades: nothing to learn from")
    levels = np.unique(np.concatenate([[0.0], *grades]))
    labels = np.searchsorted(levels, np.concatenate(grades))
    params: dict[str, Any] = {
        "objective": "lambdarank", "label_gain": levels.tolist(),
        "learning_rate": settings.learning_rate, "num_leaves": settings.leaves,
        "min_data_in_leaf": settings.min_leaf, "min_sum_hessian_in_leaf": 0.0,
        "feature_pre_filter": False, "seed": settings.seed, "deterministic": True,
        "num_threads": settings.threads, "verbose": -1,
    }
    data = lightgbm.Dataset(np.concatenate(blocks), label=labels, group=sizes, params=params)
    booster = lightgbm.train(params, data, num_boost_round=settings.rounds)
    return LambdaRankReranker(booster.model_to_string(), feature_set)
