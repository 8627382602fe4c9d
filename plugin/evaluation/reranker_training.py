"""A reranker's training groups from judged queries: each query's first-stage candidates,
retrieved through a query template exactly as serving retrieves them
(:meth:`ebr.request.Searcher.retrieve`), with the grades the judged file gives them.

Cross-fitting (:func:`fold_groups`): a reranker must learn from candidates whose cosine looks
as a new query's does, so the queries an encoder trained on are judged on a *fold*: an index of
another encoder, trained without them.  Its features are the model's own but for the name of
the embedding key (its cosine stands for the model's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ebr.errors import EbrError, RerankerError
from ebr.ranking.feature_set import FeatureSet
from ebr.ranking.lambdarank import GradedFeatures, JudgedSearch, graded_features
from ebr.request.searcher import Searcher


def judged_searches(searcher: Searcher, template: str, qrels: Mapping[str, Mapping[str, float]],
                    *, candidates: int, progress: Callable[[], object] | None = None,
                    failed: dict[str, str] | None = None) -> Iterator[JudgedSearch]:
    """One group per judged query; a query whose request fails (its text yields no terms,
    say) is left out and, given ``failed``, recorded there with the first line of its error."""
    for query, grades in qrels.items():
        try:
            found = searcher.retrieve(template, text=query, size=candidates)
        except EbrError as e:
            if failed is not None:
                failed[query] = str(e).splitlines()[0]
        else:
            yield JudgedSearch(found.request, found.hits, dict(grades))
        if progress is not None:
            progress()


def fold_features(searcher: Searcher, target: FeatureSet, key: str) -> FeatureSet:
    """The features ``searcher``'s store (a fold's index) computes, after checking that they
    are ``target``'s with the fold's embedding key standing for ``key``."""
    schema = searcher.store.schema
    own = FeatureSet.for_schema(schema)
    fold_key = searcher.key
    if fold_key is None or own.with_keys({fold_key: key}) != target:
        keys = ", ".join(k.name for k in schema.keys) or "none"
        raise RerankerError(
            f"a cross-fitting fold must index the same namespaces under one embedding key, to "
            f"stand for {key!r}: its features are {', '.join(own.names)} (keys: {keys}), the "
            f"model's index's {', '.join(target.names)}")
    return own


def fold_groups(searcher: Searcher, template: str, qrels: Mapping[str, Mapping[str, float]],
                target: FeatureSet, key: str, *, candidates: int,
                progress: Callable[[], object] | None = None,
                failed: dict[str, str] | None = None) -> Iterator[GradedFeatures]:
    """The graded features of ``qrels``' candidates retrieved on a fold (``searcher``: its
    index and the encoder that never trained on these queries), as rows of ``target``, the
    features of the index the reranker will serve (``key`` its embedding key)."""
    names = fold_features(searcher, target, key)
    searches = judged_searches(searcher, template, qrels, candidates=candidates,
                               progress=progress, failed=failed)
    return graded_features(searches, searcher.store, names)
