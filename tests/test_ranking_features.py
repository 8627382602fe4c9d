"""The reranker's features on a tiny real local index, each value checked by hand."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ebr import CentroidQuantizer, parse, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.ranking import FeatureSet, RerankRequest, compute_features
from ebr.ranking.branches import BranchKinds
from ebr.stores.local import LocalStore
from ebr.stores.protocol import Hit, IndexDocument, TextMatch

SCHEMA = Schema.create("shop", (Namespace("title", "standard"), Namespace("country", "keyword")),
                       (EmbeddingKey("m", 3, CoarseQuantizerSpec(nlist=2)),))
DOCS = [
    IndexDocument("d1", {"country": ["us"]}, {"title": "Red cordless drill"}, {"m": [1, 0, 0]}),
    IndexDocument("d2", {"country": ["fr"]}, {"title": "Blue drill"}, {"m": [0, 1, 0]}, rank=3),
    IndexDocument("d3", {"country": ["us"]}, {"title": "Red hammer"}, {"m": [1, 1, 0]}, rank=-1),
    IndexDocument("d4", {"country": ["us"]}, {"title": "red drill saw"}),
    IndexDocument("d5", {"country": ["fr"]}, {"title": "red drill press"}, {"m": [0, 0, 1]}, rank=9),
]
QUERY = '(or (match title "red drill") (nn m :radius 0.5 :exact true))'
VECTOR = np.array([2, 0, 0], np.float32)  # the request's embedding need not be unit-norm


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    s = LocalStore.create(Path(tmp_path_factory.mktemp("features")) / "index", SCHEMA,
                          synchronous="OFF")
    s.set_quantizer("m", np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    s.add(DOCS)
    yield s
    s.close()


def search(store: LocalStore) -> tuple[RerankRequest, list[Hit]]:
    vectors = {"m": VECTOR}
    executable = plan(parse(QUERY, SCHEMA), vectors, store.quantizers, SCHEMA)
    hits = list(store.search(executable, vectors, size=10).hits)
    request = RerankRequest(vectors, {"title": ("red", "drill")}, {"country": "us"}, executable)
    return request, hits


def test_feature_names_follow_the_schema_and_are_fingerprinted() -> None:
    names = FeatureSet.for_schema(SCHEMA)
    assert names.names == ("cosine:m", "bm25:title", "bm25:country", "via_terms", "via_nn",
                           "query_terms_held", "term_trigrams", "query_terms", "document_terms",
                           "context_match", "static_rank")
    assert len(names.fingerprint) == 16
    assert names.fingerprint == FeatureSet.for_schema(SCHEMA).fingerprint
    assert FeatureSet(names.names[::-1]).fingerprint != names.fingerprint


def test_every_feature_of_a_real_search(store: LocalStore) -> None:
    request, hits = search(store)
    # d1: red + drill, and cosine 1 (distance 0); d3: cosine 1/sqrt(2) (distance 0.29 <= 0.5);
    # d4, d5: red + drill, no vector or an orthogonal one; d2: neither.
    assert sorted(h.id for h in hits) == ["d1", "d3", "d4", "d5"]
    features = compute_features(request, hits, store)
    rows = {h.id: features.row(i) for i, h in enumerate(features.hits)}
    # BM25 of "red drill" (both held by 4 of the 5 titles; 13 title terms in all) for the
    # three-term titles holding both; d3 matched through nn only, so its match scored nothing.
    both = 2 * math.log(1 + 1.5 / 4.5) / (1 + 1.2 * (0.25 + 0.75 * 3 / (13 / 5)))
    # Trigrams of " red " (3) and " drill " (5); d1 adds " cordless " (8), d3 " hammer " (6),
    # d4 " saw " (3), d5 " press " (5).
    trigrams = {"d1": 8 / 16, "d3": 3 / 14, "d4": 8 / 11, "d5": 8 / 13}
    terms = {"d1": 3, "d3": 2, "d4": 3, "d5": 3}
    expected = {
        "d1": {"cosine:m": 1.0, "via_terms": 1, "via_nn": 1, "query_terms_held": 1.0,
               "context_match": 1, "static_rank": 0.0, "bm25:title": both},
        "d3": {"cosine:m": 1 / math.sqrt(2), "via_terms": 0, "via_nn": 1,
               "query_terms_held": 0.5, "context_match": 1, "static_rank": -math.log(2),
               "bm25:title": 0.0},
        "d4": {"cosine:m": 0.0, "via_terms": 1, "via_nn": 0, "query_terms_held": 1.0,
               "context_match": 1, "static_rank": 0.0, "bm25:title": both},
        "d5": {"cosine:m": 0.0, "via_terms": 1, "via_nn": 0, "query_terms_held": 1.0,
               "context_match": 0, "static_rank": math.log(10), "bm25:title": both},
    }
    for doc_id, values in expected.items():
        assert rows[doc_id] == pytest.approx(
            {**values, "bm25:country": 0.0, "term_trigrams": trigrams[doc_id], "query_terms": 2,
             "document_terms": terms[doc_id]}, abs=1e-12), doc_id


def test_bm25_sums_the_hit_s_match_clauses_per_namespace(store: LocalStore) -> None:
    # The stores fill Hit.texts from BM25-scored match clauses; the feature reads them as given.
    request, hits = search(store)
    scored = [replace(hits[0], texts=(TextMatch("q.0", "title", 1.5), TextMatch("q.1", "title", 0.25)))]
    values = compute_features(request, scored + hits[1:], store).values
    col = FeatureSet.for_schema(SCHEMA).columns
    assert values[0, col["bm25:title"]] == 1.75
    assert values[0, col["bm25:country"]] == 0.0
    for row, hit in enumerate(hits[1:], 1):  # the others as the store scored them
        assert values[row, col["bm25:title"]] == sum(t.score for t in hit.texts)


def test_without_the_plan_only_hits_no_vector_clause_matched_count_as_terms(store: LocalStore) -> None:
    request, hits = search(store)
    values = compute_features(replace(request, plan=None), hits, store).values
    col = FeatureSet.for_schema(SCHEMA).columns
    by_id = {h.id: values[i] for i, h in enumerate(hits)}
    assert by_id["d1"][col["via_terms"]] == 0 and by_id["d1"][col["via_nn"]] == 1
    assert by_id["d4"][col["via_terms"]] == 1 and by_id["d4"][col["via_nn"]] == 0


def test_a_bare_request_reads_no_terms_and_an_empty_search_has_no_rows(store: LocalStore) -> None:
    request, hits = search(store)
    values = compute_features(RerankRequest({"m": VECTOR}), hits, store).values
    col = FeatureSet.for_schema(SCHEMA).columns
    assert not values[:, col["query_terms_held"]].any()
    assert not values[:, col["context_match"]].any()
    assert not values[:, col["term_trigrams"]].any() and not values[:, col["query_terms"]].any()
    assert values[:, col["cosine:m"]].max() == pytest.approx(1.0)
    assert compute_features(request, [], store).values.shape == (0, 11)


@pytest.mark.parametrize("query, branches, kinds", [
    ("(or (term title:a) (nn m :radius 0.5 :exact true))", ("q", "q.0", "q.1"), {"terms", "nn"}),
    ("(or (term title:a) (nn m :radius 0.5 :exact true))", ("q", "q.1"), {"nn"}),
    ("(or (term title:a) (nn m :radius 0.5 :exact true))", ("q", "q.0"), {"terms"}),
    ("(and (term title:a) (nn m :radius 0.5 :exact true))", ("q", "q.0", "q.1"), {"nn"}),
    ("(and (term title:a) (term title:b))", ("q", "q.0", "q.1"), {"terms"}),
    ("(and (term country:us) (or (term title:a) (and (term title:b) (nn m :k 3))))",
     ("q", "q.0", "q.1", "q.1.1", "q.1.1.0", "q.1.1.1"), {"nn"}),
])
def test_branch_kinds(query: str, branches: tuple[str, ...], kinds: set[str]) -> None:
    executable = plan(parse(query, SCHEMA), {"m": VECTOR},
                      {"m": CentroidQuantizer(np.eye(3)[:2])}, SCHEMA)
    assert BranchKinds(executable).of(branches) == kinds


class ReadCounting:
    """The real store, recording which ids the features read vectors of and which
    namespaces they read terms of; whole documents are not to be read."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.asked: list[str] = []
        self.namespaces: list[set[str]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def get_vectors(self, ids: list[str], key: str) -> dict[str, np.ndarray]:
        self.asked.extend(ids)
        return self.store.get_vectors(ids, key)

    def get_terms(self, ids: list[str], namespaces: Iterable[str]) -> list[dict[str, tuple[str, ...]]]:
        self.namespaces.append(set(namespaces))
        return self.store.get_terms(ids, self.namespaces[-1])

    def get_documents(self, ids: list[str]) -> None:
        raise AssertionError("the features read whole documents")


def test_hits_an_nn_clause_matched_are_not_read_back(store: LocalStore) -> None:
    request, hits = search(store)
    counting = ReadCounting(store)
    direct = compute_features(request, hits, store).values
    assert np.array_equal(compute_features(request, hits, counting).values, direct)  # type: ignore[arg-type]
    assert sorted(counting.asked) == ["d4", "d5"]  # d1, d3 carry their distance
    assert counting.namespaces == [{"title", "country"}]  # the request's terms and context, once


def test_a_request_vector_of_the_wrong_dimension_is_a_plan_error(store: LocalStore) -> None:
    from ebr.errors import PlanError

    request, hits = search(store)
    with pytest.raises(PlanError, match="dimension 2; the schema says 3"):
        compute_features(replace(request, vectors={"m": np.ones(2, np.float32)}), hits, store)
