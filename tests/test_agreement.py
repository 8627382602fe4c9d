"""``disagreements``: what the stores' differential tests and ``ebr doctor`` hold results to."""

from __future__ import annotations

from dataclasses import replace

from ebr.stores.agreement import disagreements
from ebr.stores.protocol import ClauseMatch, Hit, SearchResult, SearchStats

A = Hit("a", 1.9, 1.0, ("q", "q.1"), (ClauseMatch("q.1", "m", 0.1, 0),))
B = Hit("b", 1.5, 0.0, ("q", "q.0"))
C = Hit("c", 1.5, 2.0, ("q", "q.0"))


def result(*hits: Hit) -> SearchResult:
    return SearchResult(tuple(hits), SearchStats(len(hits), 0, 0))


def test_equal_results_agree_and_ties_may_swap() -> None:
    assert disagreements(result(A, B, C), result(A, B, C)) == []
    assert disagreements(result(A, B, C), result(A, C, B)) == []  # b and c tie on score
    nudged = replace(A, score=A.score + 5e-5, clauses=(replace(A.clauses[0], distance=0.1 + 5e-7),))
    assert disagreements(result(A, B), result(nudged, B)) == []


def test_every_kind_of_difference_is_named() -> None:
    assert disagreements(result(A, B), result(A))[0].startswith("documents differ: missing ['b']")
    assert "branches" in disagreements(result(A), result(replace(A, branches=("q",))))[0]
    assert "score" in disagreements(result(A), result(replace(A, score=1.0)))[0]
    far = replace(A, clauses=(replace(A.clauses[0], distance=0.2),))
    assert "distance" in disagreements(result(A), result(far))[0]
    unprobed = replace(A, clauses=(replace(A.clauses[0], probe_rank=None),))
    assert "clauses" in disagreements(result(A), result(unprobed))[0]
    assert disagreements(result(A, B), result(B, A)) == ["order: hit 1 scores 1.900000 after 1.500000"]
