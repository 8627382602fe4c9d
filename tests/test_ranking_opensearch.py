"""Both stores rerank alike: the same documents in a local store and in OpenSearch (the real
cluster of ``support.cluster``, an index of 1 and of 3 shards), the same plans, the same
features and the same final order from the linear default and from a trained LambdaRank
scorer -- whether the features read the hits' vectors and terms from the store after the
search or take what the OpenSearch search returned with the hits (``fetch``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from ebr import parse, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.ranking import (
    JudgedSearch,
    LinearReranker,
    Reranker,
    RerankRequest,
    compute_features,
    train_lambdarank,
)
from ebr.ranking.features import fetch_for
from ebr.stores.agreement import disagreements
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from ebr.stores.protocol import Fetch, IndexDocument, SearchResult, Store

pytestmark = pytest.mark.opensearch

DIM = 6
WORDS = ("red", "blue", "drill", "saw", "hammer", "cordless", "steel")
COUNTRIES = ("us", "fr", "de")
SCHEMA = Schema.create("rerank", (Namespace("title"), Namespace("country", "keyword")),
                       (EmbeddingKey("m", DIM, CoarseQuantizerSpec(nlist=3)),))
QUERIES = [
    ('(or (match title "red drill") (nn m :radius 0.9 :nprobe 2))', ("red", "drill")),
    ('(and (term country:us) (or (match title "saw") (nn m :k 15)))', ("saw",)),
    ("(or (term title:steel) (term title:hammer) (nn m :radius 1.1 :exact true))",
     ("steel", "hammer")),
]


def corpus() -> list[IndexDocument]:
    rng = np.random.default_rng(11)
    docs = []
    for i in range(90):
        title = " ".join(rng.choice(WORDS, int(rng.integers(1, 4)), replace=False))
        embeddings = {"m": rng.standard_normal(DIM)} if rng.random() < 0.9 else {}
        docs.append(IndexDocument(f"p{i:02d}", {"country": [str(rng.choice(COUNTRIES))]},
                                  {"title": title}, embeddings, rank=float(rng.integers(0, 50))))
    return docs


@pytest.fixture(scope="module", params=[1, 3], ids=["1-shard", "3-shards"])
def both(request: pytest.FixtureRequest, opensearch_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStore, OpenSearchStore]]:
    index = f"ebr-rerank-{np.random.default_rng().integers(1 << 30)}"
    centroids = np.random.default_rng(5).standard_normal((3, DIM)).astype(np.float32)
    local = LocalStore.create(tmp_path_factory.mktemp("rerank") / "index", SCHEMA, synchronous="OFF")
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, shards=request.param,
                                    engine="lucene")
    try:
        for store in (local, remote):
            store.set_quantizer("m", centroids)
            store.add(corpus())
        yield local, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def search(store: Store, query: str, terms: tuple[str, ...], seed: int, fetch: bool = False,
           ) -> tuple[RerankRequest, SearchResult]:
    """The request and the search's result; with ``fetch``, the search returns what the
    features read and the request carries it."""
    vectors = {"m": np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)}
    executable = plan(parse(query, SCHEMA), vectors, store.quantizers, SCHEMA)
    request = RerankRequest(vectors, {"title": terms}, {"country": "fr"}, executable)
    result = store.search(executable, vectors, size=100,
                          fetch=fetch_for(request) if fetch else None)
    return replace(request, fetched=result.fetched), result


class ReadsNothing:
    """A store whose hits' vectors and terms may not be read (the search returned them)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __getattr__(self, name: str) -> object:
        if name in ("get_vectors", "get_terms", "get_documents"):
            raise AssertionError(f"the features read {name} although the search returned it")
        return getattr(self.store, name)


def test_both_stores_give_the_same_features_and_reranked_order(
        both: tuple[LocalStore, OpenSearchStore]) -> None:
    local, remote = both
    judged = []
    for seed in range(6):
        for query, terms in QUERIES:
            request, result = search(local, query, terms, seed)
            hits = result.hits
            grades = {h.id: float(len(h.branches) > 2) + int(h.id[1:]) % 3 for h in hits}
            judged.append(JudgedSearch(request, hits, grades))
    trained = train_lambdarank(judged, local)
    rerankers: list[Reranker] = [LinearReranker(), trained]

    compared = 0
    for seed in range(100, 104):
        for query, terms in QUERIES:
            request, first = search(local, query, terms, seed)
            for fetch in (False, True):
                remote_request, second = search(remote, query, terms, seed, fetch)
                assert (remote_request.fetched is not None) is fetch
                reader: Store = ReadsNothing(remote) if fetch else remote  # type: ignore[assignment]
                problems = disagreements(first, second)
                assert not problems, problems
                mine, theirs = first.hits, second.hits
                assert len(mine) > 3, query
                mine_features = compute_features(request, mine, local)
                theirs_features = compute_features(remote_request, theirs, reader)
                by_id = {h.id: i for i, h in enumerate(theirs_features.hits)}
                np.testing.assert_allclose(  # BM25 agrees within 1e-4 relative
                    theirs_features.values[[by_id[h.id] for h in mine_features.hits]],
                    mine_features.values, rtol=1e-4, atol=1e-6)
                for reranker in rerankers:
                    a = reranker.rerank(request, mine, local)
                    b = reranker.rerank(remote_request, theirs, reader)
                    assert [r.hit.id for r in a] == [r.hit.id for r in b], (query, seed, reranker)
                    np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-6)
                    compared += 1
    assert compared == 2 * 2 * 4 * len(QUERIES)


def test_fetched_cosines_and_terms_are_the_stored_ones(
        both: tuple[LocalStore, OpenSearchStore]) -> None:
    """What the search returns for a Fetch, hit by hit: the cosine of the stored embedding
    (None without one) and the terms ``get_terms`` reads; a hit without an embedding is
    among them."""
    local, remote = both
    vectors = {"m": np.random.default_rng(7).standard_normal(DIM).astype(np.float32)}
    executable = plan(parse("(or (term title:red) (term title:saw) (nn m :radius 1.2 :exact true))",
                            SCHEMA), vectors, remote.quantizers, SCHEMA)
    namespaces = frozenset({"title", "country"})
    result = remote.search(executable, vectors, size=100, fetch=Fetch(vectors, namespaces))
    fetched = result.fetched
    assert fetched is not None and fetched.namespaces == namespaces
    ids = result.ids
    assert len(ids) > 10
    stored = local.get_vectors(ids, "m")
    assert set(ids) - set(stored), "no hit without an embedding: the case goes unchecked"
    for doc_id in ids:
        cosine = fetched.cosines["m"][doc_id]
        if doc_id not in stored:
            assert cosine is None
        else:
            v, q = stored[doc_id].astype(np.float64), vectors["m"].astype(np.float64)
            assert cosine == pytest.approx(v @ q / np.linalg.norm(v) / np.linalg.norm(q), abs=1e-6)
    assert [dict(fetched.terms[i]) for i in ids] == local.get_terms(ids, namespaces)
