"""BM25 in the local store against its plain statement (ebr.stores.reference.reference_bm25):
documents long enough for Lucene's rounding of lengths, replaced and deleted documents (the
statistics count live documents only), and the same scores after reopening (the lengths are
rebuilt from the postings)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebr.mappings import Namespace, Schema
from ebr.query.nodes import Match
from ebr.stores.bm25 import stored_length
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument
from ebr.stores.reference import ReferenceDocument, reference_bm25

SCHEMA = Schema.create("bm25", (Namespace("t", "keyword"), Namespace("u", "keyword")))
WORDS = tuple(f"w{i}" for i in range(80))

_doc_terms = st.lists(st.sampled_from(WORDS), max_size=60, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(first=st.lists(_doc_terms, min_size=1, max_size=25),
       replaced=st.dictionaries(st.integers(0, 24), _doc_terms, max_size=6),
       deleted=st.sets(st.integers(0, 24), max_size=4),
       query=st.lists(st.sampled_from(WORDS[:30]), min_size=1, max_size=4, unique=True),
       data=st.data())
def test_local_bm25_equals_the_plain_definition(
        tmp_path_factory: pytest.TempPathFactory, first: list[list[str]],
        replaced: dict[int, list[str]], deleted: set[int], query: list[str],
        data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("bm25") / "index"
    final = {f"d{i:02d}": terms for i, terms in enumerate(first)}
    with LocalStore.create(path, SCHEMA) as store:
        store.add([IndexDocument(i, {"t": t, "u": ["x"]} if t else {"u": ["x"]})
                   for i, t in final.items()])
        changes = {f"d{i:02d}": t for i, t in replaced.items() if f"d{i:02d}" in final}
        store.add([IndexDocument(i, {"t": t} if t else {}) for i, t in changes.items()])
        final.update(changes)
        gone = [f"d{i:02d}" for i in deleted]
        store.delete(gone)
        for i in gone:
            final.pop(i, None)
        least = data.draw(st.integers(1, len(query)), label="minimum_should_match")
        node = Match("t", tuple(query), least)
        before = store.search(node, {}, size=100)
    with LocalStore.open(path) as reopened:
        after = reopened.search(node, {}, size=100)

    docs = [ReferenceDocument(i, frozenset(f"t:{w}" for w in t)) for i, t in final.items()]
    want = reference_bm25(docs, "t", query)
    held = {i for i, t in final.items() if len(set(t) & set(query)) >= least}
    for result in (before, after):
        assert {h.id for h in result.hits} == held
        for hit in result.hits:
            (text,) = hit.texts
            assert math.isclose(text.score, want[hit.id], rel_tol=1e-9), hit.id
            assert math.isclose(hit.score, want[hit.id], rel_tol=1e-9)
        keys = [(-h.score, h.id) for h in result.hits]
        assert keys == sorted(keys)


def test_top_k_match_keeps_the_best_then_the_lowest_ids(tmp_path: Path) -> None:
    docs = {"a": ["x"], "b": ["x", "y"], "c": ["x"], "d": ["z", "w"], "e": ["q"]}
    with LocalStore.create(tmp_path / "index", SCHEMA) as store:
        store.add([IndexDocument(i, {"t": t}) for i, t in docs.items()])
        scores = reference_bm25([ReferenceDocument(i, frozenset(f"t:{w}" for w in t))
                                 for i, t in docs.items()], "t", ["x", "y"])
        result = store.search(Match("t", ("x", "y"), 1, k=2), {}, size=10)
    best = sorted((i for i in docs if scores[i] > 0), key=lambda i: (-scores[i], i))[:2]
    assert [h.id for h in result.hits] == best == ["b", "a"]  # a and c tie: the lower id


def test_stored_lengths_round_as_lucene_norms() -> None:
    """Lucene's SmallFloat.intToByte4 / byte4ToInt: exact below 24, then four significant
    bits of the excess over 24 (worked by hand from those two functions; the OpenSearch
    BM25 test checks the same on a real node, with documents of up to 60 terms)."""
    lengths = np.array([0, 1, 23, 24, 31, 32, 39, 40, 41, 47, 48, 55, 56, 100, 1000, 70000])
    assert stored_length(lengths).tolist() == [0, 1, 23, 24, 31, 32, 39, 40, 40, 46, 48, 54,
                                               56, 96, 984, 65560]
