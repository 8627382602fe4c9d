"""The feature matrix of one search's candidates, computed in one vectorised pass.

One row per hit, one column per feature of :class:`~ebr.ranking.feature_set.FeatureSet`
(the module says what each means).  The store is asked once per embedding key for the
vectors of the hits no ``nn`` clause of the key matched (``get_vectors``) and, only when the
request has terms or context, once for the hits' terms in the namespaces those name
(``get_terms``, not the whole documents) -- unless the search returned them with the hits
(``RerankRequest.fetched``, asked for with :func:`fetch_for`): then the store is not asked
again, which on OpenSearch saves a round trip each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ebr.planning.query_vectors import query_vector
from ebr.ranking.branches import BranchKinds
from ebr.ranking.feature_set import (
    CONTEXT_MATCH,
    DOCUMENT_TERMS,
    QUERY_TERMS,
    QUERY_TERMS_HELD,
    STATIC_RANK,
    TERM_TRIGRAMS,
    VIA_NN,
    VIA_TERMS,
    FeatureSet,
    bm25_feature,
    cosine_feature,
)
from ebr.ranking.protocol import RerankRequest
from ebr.stores.protocol import Fetch, Fetched, Hit, Store

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Features:
    """``values[i, j]``: feature ``feature_set.names[j]`` of ``hits[i]``."""

    feature_set: FeatureSet
    hits: tuple[Hit, ...]
    values: F64

    def row(self, i: int) -> dict[str, float]:
        return dict(zip(self.feature_set.names, self.values[i].tolist(), strict=True))


def compute_features(request: RerankRequest, hits: Sequence[Hit], store: Store,
                     feature_set: FeatureSet | None = None) -> Features:
    """The features of ``hits`` (one search's candidates on ``store``) for ``request``."""
    names = feature_set or FeatureSet.for_schema(store.schema)
    col = names.columns
    hits = tuple(hits)
    values = np.zeros((len(hits), len(names.names)), np.float64)
    if not hits:
        return Features(names, hits, values)
    ids = [h.id for h in hits]

    for key in request.vectors:
        if cosine_feature(key) in col:
            query = query_vector(key, request.vectors, store.schema)
            values[:, col[cosine_feature(key)]] = _cosines(hits, key, query, store,
                                                           request.fetched)

    for i, hit in enumerate(hits):
        for text in hit.texts:
            if bm25_feature(text.namespace) in col:
                values[i, col[bm25_feature(text.namespace)]] += text.score

    if request.plan is not None:
        kinds = BranchKinds(request.plan)
        via = [kinds.of(h.branches) for h in hits]
        values[:, col[VIA_NN]] = [("nn" in k) for k in via]
        values[:, col[VIA_TERMS]] = [("terms" in k) for k in via]
    else:  # a hit no vector clause matched can only have matched through terms
        values[:, col[VIA_NN]] = [bool(h.clauses) for h in hits]
        values[:, col[VIA_TERMS]] = [not h.clauses for h in hits]

    if _term_namespaces(request):
        for name, column in _term_overlap(request, store, ids).items():
            values[:, col[name]] = column

    ranks = np.array([h.rank for h in hits], np.float64)
    values[:, col[STATIC_RANK]] = np.sign(ranks) * np.log1p(np.abs(ranks))
    return Features(names, hits, values)


def fetch_for(request: RerankRequest) -> Fetch:
    """What :func:`compute_features` reads of the store for ``request``'s hits: the cosine
    per embedding key of the request, and the terms of the namespaces its terms and context
    name; a search given it may return them with the hits (``SearchResult.fetched``)."""
    return Fetch(request.vectors, _term_namespaces(request))


def _term_namespaces(request: RerankRequest) -> frozenset[str]:
    """The namespaces whose terms the term features read (none without terms or context)."""
    return frozenset(request.terms) | frozenset(request.context)


def _cosines(hits: tuple[Hit, ...], key: str, query: npt.NDArray[np.float32],
             store: Store, fetched: Fetched | None) -> F64:
    """Cosine similarity of each hit's ``key`` embedding to ``query`` (0 without one).

    A hit an ``nn`` clause of ``key`` matched carries its distance ``1 - cos`` (computed by
    the store from the same query vector and the stored one, in float64); the others' come
    from ``fetched`` when the search returned them against this query vector (computed by
    the server in float32), else their vectors are read back: on OpenSearch that read is a
    round trip, the reranker's largest cost."""
    out = np.zeros(len(hits), np.float64)
    unknown: list[int] = []
    returned = _fetched_cosines(fetched, key, query)
    for i, hit in enumerate(hits):
        distance = next((c.distance for c in hit.clauses if c.key == key), None)
        if distance is not None:
            out[i] = 1.0 - distance
        elif hit.id in returned:
            out[i] = returned[hit.id] or 0.0
        else:
            unknown.append(i)
    stored = store.get_vectors([hits[i].id for i in unknown], key) if unknown else {}
    rows = [i for i in unknown if hits[i].id in stored]
    if rows:
        matrix = np.stack([stored[hits[i].id] for i in rows]).astype(np.float64)
        q = query.astype(np.float64)
        out[rows] = matrix @ q / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))
    return out


def _fetched_cosines(fetched: Fetched | None, key: str, query: npt.NDArray[np.float32]
                     ) -> Mapping[str, float | None]:
    """The cosines a search returned for ``key``, if against ``query`` itself."""
    if fetched is None or key not in fetched.cosines:
        return {}
    asked = fetched.vectors[key]
    if asked is not query and not np.array_equal(np.asarray(asked, np.float32), query):
        return {}
    return fetched.cosines[key]


def _stored_terms(request: RerankRequest, store: Store, ids: list[str],
                  namespaces: frozenset[str]) -> list[dict[str, tuple[str, ...]]]:
    """Each id's terms in ``namespaces``: those the search returned (``request.fetched``),
    the store read for the ids it did not return."""
    fetched = request.fetched
    if fetched is None or not namespaces <= fetched.namespaces:
        return store.get_terms(ids, namespaces)
    missing = [i for i in ids if i not in fetched.terms]
    read = dict(zip(missing, store.get_terms(missing, namespaces), strict=True)) if missing else {}
    return [{ns: terms for ns, terms in (fetched.terms.get(i) or read.get(i, {})).items()
             if ns in namespaces} for i in ids]


def _term_overlap(request: RerankRequest, store: Store, ids: list[str]) -> dict[str, F64]:
    """Per id, the features of the request's terms and context against the document's terms:
    the fraction of the request's terms it holds, their trigram similarity, the counts of
    terms on each side, and the fraction of the context entries it holds."""
    asked = {(ns, t) for ns, terms in request.terms.items() for t in terms}
    asked_grams = _trigrams(t for _, t in asked)
    context = set(request.context.items())
    columns = {name: np.zeros(len(ids), np.float64) for name in (
        QUERY_TERMS_HELD, TERM_TRIGRAMS, DOCUMENT_TERMS, CONTEXT_MATCH)}
    columns[QUERY_TERMS] = np.full(len(ids), float(len(asked)))
    text_namespaces = {ns for ns, _ in asked}
    namespaces = text_namespaces | {ns for ns, _ in context}
    for i, terms in enumerate(_stored_terms(request, store, ids, frozenset(namespaces))):
        holds = {(ns, value) for ns in namespaces for value in terms.get(ns, ())}
        if asked:
            own = [t for ns in sorted(text_namespaces) for t in terms.get(ns, ())]
            grams = _trigrams(own)
            columns[QUERY_TERMS_HELD][i] = len(asked & holds) / len(asked)
            columns[TERM_TRIGRAMS][i] = len(asked_grams & grams) / max(len(asked_grams | grams), 1)
            columns[DOCUMENT_TERMS][i] = len(own)
        if context:
            columns[CONTEXT_MATCH][i] = len(context & holds) / len(context)
    return columns


def _trigrams(terms: Iterable[str]) -> set[str]:
    """The character trigrams of each of ``terms`` with a space around it (so the set does
    not depend on the order the terms are held in)."""
    return {f" {t} "[i:i + 3] for t in terms for i in range(len(t))}
