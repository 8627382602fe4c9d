"""Both stores rerank alike: the same documents in a local store and in OpenSearch (the real
cluster of ``support.cluster``), the same plans, the same features and the same final order
from the linear default and from a trained LambdaRank scorer."""

from __future__ import annotations

from collections.abc import Iterator

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
from ebr.stores.agreement import disagreements
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from ebr.stores.protocol import IndexDocument, SearchResult, Store

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


@pytest.fixture(scope="module")
def both(opensearch_url: str, tmp_path_factory: pytest.TempPathFactory,
         ) -> Iterator[tuple[LocalStore, OpenSearchStore]]:
    index = f"ebr-rerank-{np.random.default_rng().integers(1 << 30)}"
    centroids = np.random.default_rng(5).standard_normal((3, DIM)).astype(np.float32)
    local = LocalStore.create(tmp_path_factory.mktemp("rerank") / "index", SCHEMA, synchronous="OFF")
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, shards=2, engine="lucene")
    try:
        for store in (local, remote):
            store.set_quantizer("m", centroids)
            store.add(corpus())
        yield local, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def search(store: Store, query: str, terms: tuple[str, ...], seed: int,
           ) -> tuple[RerankRequest, SearchResult]:
    vectors = {"m": np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)}
    executable = plan(parse(query, SCHEMA), vectors, store.quantizers, SCHEMA)
    request = RerankRequest(vectors, {"title": terms}, {"country": "fr"}, executable)
    return request, store.search(executable, vectors, size=100)


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
            (request, first), (_, second) = (search(s, query, terms, seed) for s in both)
            problems = disagreements(first, second)
            assert not problems, problems
            mine, theirs = first.hits, second.hits
            assert len(mine) > 3, query
            mine_features = compute_features(request, mine, local)
            theirs_features = compute_features(request, theirs, remote)
            by_id = {h.id: i for i, h in enumerate(theirs_features.hits)}
            np.testing.assert_allclose(
                theirs_features.values[[by_id[h.id] for h in mine_features.hits]],
                mine_features.values, rtol=1e-4, atol=1e-6)  # BM25 agrees within 1e-4 relative
            for reranker in rerankers:
                a, b = reranker.rerank(request, mine, local), reranker.rerank(request, theirs, remote)
                assert [r.hit.id for r in a] == [r.hit.id for r in b], (query, seed, reranker)
                np.testing.assert_allclose([r.score for r in a], [r.score for r in b], atol=1e-6)
                compared += 1
    assert compared == 2 * 4 * len(QUERIES)
