"""Second-stage ranking: features of each candidate a store returned, and the scorers that
turn them into the final order (EBR §5, "a custom reranker adding cosine features").

:class:`LinearReranker` needs no training; :func:`train_lambdarank` learns a
:class:`LambdaRankReranker` from graded judgments (LightGBM: ``pip install 'ebr[rerank]'``),
saved as a file and read back with :func:`load_reranker`; :func:`fit_lambdarank` fits one to
:func:`graded_features` computed on several indexes."""

from ebr.ranking.feature_set import FeatureSet
from ebr.ranking.features import Features, compute_features
from ebr.ranking.lambdarank import (
    GradedFeatures,
    JudgedSearch,
    LambdaRankReranker,
    LambdaRankSettings,
    fit_lambdarank,
    graded_features,
    load_reranker,
    train_lambdarank,
)
from ebr.ranking.linear import DEFAULT_WEIGHTS, LinearReranker
from ebr.ranking.protocol import RankedHit, Reranker, RerankRequest
from ebr.ranking.reranker_file import RERANKER_FILE

__all__ = [
    "DEFAULT_WEIGHTS",
    "RERANKER_FILE",
    "FeatureSet",
    "Features",
    "GradedFeatures",
    "JudgedSearch",
    "LambdaRankReranker",
    "LambdaRankSettings",
    "LinearReranker",
    "RankedHit",
    "RerankRequest",
    "Reranker",
    "compute_features",
    "fit_lambdarank",
    "graded_features",
    "load_reranker",
    "train_lambdarank",
]
