"""Whether two stores answered one plan alike: the test both stores are held to.

Alike means: the same documents, the same branches per hit, distances within float32 error,
scores (the hit's, and each ``match`` clause's BM25) within ``score_tolerance`` (OpenSearch
scores in float32), and the same order up to ties (every hit scores, by the expected
result's scores, no more than the one before it).
"""

from __future__ import annotations

import itertools

from ebr.stores.protocol import SearchResult

SCORE_TOLERANCE = 1e-4
DISTANCE_TOLERANCE = 1e-6


def disagreements(expected: SearchResult, got: SearchResult, *,
                  score_tolerance: float = SCORE_TOLERANCE,
                  distance_tolerance: float = DISTANCE_TOLERANCE) -> list[str]:
    """What differs between ``got`` and ``expected`` (empty when they agree)."""
    problems: list[str] = []
    mine = {h.id: h for h in expected.hits}
    theirs = {h.id: h for h in got.hits}
    if mine.keys() != theirs.keys():
        missing, extra = sorted(mine.keys() - theirs.keys()), sorted(theirs.keys() - mine.keys())
        problems.append(f"documents differ: missing {missing[:10]}, unexpected {extra[:10]}")
    if got.stats.total != expected.stats.total:
        problems.append(f"total {got.stats.total}, expected {expected.stats.total}")
    for hit in got.hits:
        want = mine.get(hit.id)
        if want is None:
            continue
        if hit.branches != want.branches:
            problems.append(f"{hit.id}: branches {hit.branches}, expected {want.branches}")
        if hit.rank != want.rank:
            problems.append(f"{hit.id}: rank {hit.rank}, expected {want.rank}")
        if abs(hit.score - want.score) > score_tolerance:
            problems.append(f"{hit.id}: score {hit.score:.6f}, expected {want.score:.6f}")
        clauses = [(c.branch, c.key, c.probe_rank) for c in hit.clauses]
        if clauses != [(c.branch, c.key, c.probe_rank) for c in want.clauses]:
            problems.append(f"{hit.id}: clauses {clauses}, expected "
                            f"{[(c.branch, c.key, c.probe_rank) for c in want.clauses]}")
            continue
        texts = [(t.branch, t.namespace) for t in hit.texts]
        if texts != [(t.branch, t.namespace) for t in want.texts]:
            problems.append(f"{hit.id}: text clauses {texts}, expected "
                            f"{[(t.branch, t.namespace) for t in want.texts]}")
        else:
            for mine_text, want_text in zip(hit.texts, want.texts, strict=True):
                if abs(mine_text.score - want_text.score) > score_tolerance:
                    problems.append(f"{hit.id}: {mine_text.branch} BM25 {mine_text.score:.6f}, "
                                    f"expected {want_text.score:.6f}")
        for mine_clause, want_clause in zip(hit.clauses, want.clauses, strict=True):
            if abs(mine_clause.distance - want_clause.distance) > distance_tolerance:
                problems.append(f"{hit.id}: {mine_clause.branch} distance "
                                f"{mine_clause.distance:.7f}, expected {want_clause.distance:.7f}")
    scores = [mine[h.id].score for h in got.hits if h.id in mine]
    for i, (a, b) in enumerate(itertools.pairwise(scores)):
        if b > a + score_tolerance:
            problems.append(f"order: hit {i + 1} scores {b:.6f} after {a:.6f}")
            break
    return problems
