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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

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

    rounds: int = 100
    learning_rate: float = 0.1
    leaves: int = 15
    min_leaf: int = 5
    seed: int = 0
    threads: int = 1


class LambdaRankReranker:
    """Scores with a trained LightGBM booster; refuses an index whose features differ from
    those it was trained for.  Safe to share between threads (predictions are serialised:
    LightGBM's predictor set-up is not thread-safe).  A hit's contributions are computed
    when first read: TreeSHAP costs about a hundred times the score (measured: 100 hits,
    100 trees of 15 leaves, 0.2 ms to score, 30 ms to explain), and a page explains ten."""

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
        scores = self._predict(features.values)
        return ranked(features, scores, lambda i: _Attribution(self, features.values[i]))

    def _predict(self, rows: npt.NDArray[np.float64], contributions: bool = False,
                 ) -> npt.NDArray[np.float64]:
        # One thread: requests are the unit of parallelism, and OpenMP's spinning workers
        # made one request's prediction ten times slower on a busy machine.
        with self._lock:
            return np.asarray(self._booster.predict(rows, pred_contrib=contributions,
                                                    num_threads=1), np.float64)

    def contributions(self, row: npt.NDArray[np.float64]) -> dict[str, float]:
        """TreeSHAP values of one feature row, and the ``bias``: they sum to its score."""
        values = self._predict(row[None, :], contributions=True)[0]
        return dict(zip((*self.feature_set.names, BIAS), values.tolist(), strict=True))

    def save(self, path: str | os.PathLike[str]) -> None:
        write_reranker_file(path, RerankerFile(SCORER, self.feature_set, self.model))


class _Attribution(Mapping[str, float]):
    """One hit's contributions, computed on first read."""

    def __init__(self, reranker: LambdaRankReranker, row: npt.NDArray[np.float64]) -> None:
        self._reranker = reranker
        self._row = row
        self._values: dict[str, float] | None = None

    def _computed(self) -> dict[str, float]:
        if self._values is None:
            self._values = self._reranker.contributions(self._row)
        return self._values

    def __getitem__(self, name: str) -> float:
        return self._computed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._computed())

    def __len__(self) -> int:
        return len(self._reranker.feature_set.names) + 1

    def __repr__(self) -> str:
        return repr(self._computed())


def load_reranker(path: str | os.PathLike[str], schema: Schema | None = None) -> LambdaRankReranker:
    """A reranker saved by :meth:`LambdaRankReranker.save`; with ``schema``, refused at once
    unless it was trained for that index's features."""
    content = read_reranker_file(path)
    if content.scorer != SCORER:
        raise RerankerError(f"{path} holds a {content.scorer!r} scorer; this ebr reads {SCORER!r}")
    if schema is not None:
        content.feature_set.require(FeatureSet.for_schema(schema), f"the reranker in {path}")
    return LambdaRankReranker(content.model, content.feature_set)


@dataclass(frozen=True)
class GradedFeatures:
    """One training group as LightGBM takes it: a search's feature rows and their grades."""

    values: npt.NDArray[np.float64]
    grades: npt.NDArray[np.float64]


def graded_features(searches: Iterable[JudgedSearch], store: Store,
                    feature_set: FeatureSet | None = None) -> Iterator[GradedFeatures]:
    """The features of ``searches``' candidates computed on ``store``, graded (searches
    without candidates are left out; a grade that is not a number >= 0 is refused)."""
    names = feature_set or FeatureSet.for_schema(store.schema)
    for n, search in enumerate(searches, 1):
        if not search.hits:
            continue
        for doc_id, grade in search.grades.items():
            if not (math.isfinite(grade) and grade >= 0):
                raise RerankerError(f"search {n}: the grade of {doc_id!r} must be a number >= 0; "
                                    f"got {grade}")
        yield GradedFeatures(
            compute_features(search.request, search.hits, store, names).values,
            np.array([search.grades.get(h.id, 0.0) for h in search.hits], np.float64))


def train_lambdarank(searches: Iterable[JudgedSearch], store: Store,
                     settings: LambdaRankSettings = LambdaRankSettings()) -> LambdaRankReranker:
    """A LambdaRank scorer trained on ``searches``, their features computed on ``store``."""
    feature_set = FeatureSet.for_schema(store.schema)
    return fit_lambdarank(graded_features(searches, store, feature_set), feature_set, settings)


def fit_lambdarank(groups: Iterable[GradedFeatures], feature_set: FeatureSet,
                   settings: LambdaRankSettings = LambdaRankSettings()) -> LambdaRankReranker:
    """A LambdaRank scorer of ``feature_set`` fitted to graded feature rows (from
    :func:`graded_features`, on one store or several whose features mean the same)."""
    lightgbm = _lightgbm()
    blocks, grades = [], []
    width = len(feature_set.names)
    for n, group in enumerate(groups, 1):
        try:
            values = np.asarray(group.values, np.float64)
            graded = np.asarray(group.grades, np.float64)
        except (TypeError, ValueError) as e:
            raise RerankerError(f"training group {n}: features and grades must be numbers "
                                f"({e})") from None
        if graded.ndim != 1 or values.shape != (graded.shape[0], width):
            raise RerankerError(f"training group {n}: feature rows of shape {values.shape} for "
                                f"grades of shape {graded.shape}; expected a list of grades "
                                f"and a row of {width} features (those of "
                                f"{feature_set.fingerprint}) per grade")
        if not np.isfinite(graded).all() or (graded < 0).any():
            raise RerankerError(f"training group {n}: every grade must be a number >= 0; got "
                                f"{graded[~(np.isfinite(graded) & (graded >= 0))][0]}")
        blocks.append(values)
        grades.append(graded)
    if not any(len(np.unique(g)) > 1 for g in grades):
        raise RerankerError("no search has candidates of different grades: nothing to learn from")
    levels = np.unique(np.concatenate([[0.0], *grades]))
    labels = np.searchsorted(levels, np.concatenate(grades))
    params: dict[str, Any] = {
        "objective": "lambdarank", "label_gain": levels.tolist(),
        "learning_rate": settings.learning_rate, "num_leaves": settings.leaves,
        "min_data_in_leaf": settings.min_leaf,
        "feature_pre_filter": False, "seed": settings.seed, "deterministic": True,
        "num_threads": settings.threads, "verbose": -1,
    }
    data = lightgbm.Dataset(np.concatenate(blocks), label=labels,
                            group=[len(g) for g in grades], params=params)
    try:
        booster = lightgbm.train(params, data, num_boost_round=settings.rounds)
    except lightgbm.basic.LightGBMError as e:
        raise RerankerError(f"LightGBM could not train on these judgments: {e}") from None
    return LambdaRankReranker(booster.model_to_string(), feature_set)
