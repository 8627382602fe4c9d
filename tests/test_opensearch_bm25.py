"""BM25 on a real cluster against the local store: the same documents (English text through
ebr's ``english`` analyzer, up to 60 terms each, so Lucene's rounding of long lengths is
exercised), the same ``match`` clauses, scores within 1e-4 relative on 1 and 3 shards (the
store searches with ``dfs_query_then_fetch``) and on both release lines (2.x scores with the
old ``(k1 + 1)`` factor, which the compiler divides out)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from ebr.mappings import Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from ebr.stores.protocol import IndexDocument, SearchResult, search_text

pytestmark = pytest.mark.opensearch

SCHEMA = Schema.create("bm25", (Namespace("title", "english"), Namespace("brand", "lowercase")))
WORDS = ("cordless drill driver kit battery lithium volt impact wrench saw blade circular "
         "hammer steel white black paint interior exterior gloss door lock brass handle "
         "garden hose nozzle pressure washer electric gas mower lawn light bulb led watt "
         "outlet switch dimmer wire copper pipe fitting valve water heater tank").split()
BRANDS = ("bosch", "dewalt", "makita", "ryobi")
QUERIES = [
    '(match title "cordless drill")',
    '(match title "cordless drills with battery" :minimum-should-match 1)',
    '(match title "lithium ion battery impact wrench kit" :minimum-should-match 2)',
    '(and (term brand:bosch) (match title "saw blade steel" :minimum-should-match 1 :k 7))',
    '(or (match title "garden hose") (match title "led light bulb" :minimum-should-match 2))',
]


def documents() -> list[IndexDocument]:
    rng = np.random.default_rng(11)
    docs = []
    for i in range(300):
        n = int(rng.choice([1, 3, 6, 10, 23, 24, 30, 45, 60]))
        words = rng.choice(WORDS, size=n, replace=n > len(WORDS))
        docs.append(IndexDocument(f"p{i:03d}", {"brand": [str(rng.choice(BRANDS))]},
                                  {"title": " ".join(words)}, rank=float(i % 3)))
    return docs


@pytest.fixture(scope="module", params=[1, 3], ids=["1-shard", "3-shards"])
def stores(request: pytest.FixtureRequest, opensearch_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStore, OpenSearchStore]]:
    index = f"ebr-bm25-{request.param}-{np.random.default_rng().integers(1 << 30)}"
    local = LocalStore.create(tmp_path_factory.mktemp("bm25") / "index", SCHEMA)
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, shards=request.param,
                                    engine="lucene")
    try:
        docs = documents()
        for store in (local, remote):
            store.add(docs)
        yield local, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def _scores(result: SearchResult) -> dict[str, tuple[float, ...]]:
    return {h.id: tuple(t.score for t in h.texts) for h in result.hits}


@pytest.mark.parametrize("text", QUERIES)
def test_bm25_scores_agree_within_1e_4_relative(
        stores: tuple[LocalStore, OpenSearchStore], text: str) -> None:
    local, remote = stores
    mine = search_text(local, text, {}, 300)
    theirs = search_text(remote, text, {}, 300)
    assert mine.hits, "the query should match something"
    assert _scores(mine).keys() == _scores(theirs).keys()
    for doc_id, want in _scores(mine).items():
        got = _scores(theirs)[doc_id]
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert math.isclose(a, b, rel_tol=1e-4), (doc_id, a, b)
    for hit, other in zip(mine.hits, theirs.hits, strict=True):
        assert math.isclose(hit.score, other.score, rel_tol=1e-4)
    long_hits = [h for h in mine.hits if len(local.get_documents([h.id])[0].terms["title"]) > 24]
    assert long_hits or "brand" in text, "some hits should be long documents (rounded lengths)"
