"""First-stage order of the hits, and each hit's explanation.

Order: score descending, then static rank descending, then id ascending (code-point
order).  Ids are unique, so the order is total: the same index and plan always give the
same hits in the same order, whatever the internal document numbers.

Score: what OpenSearch computes for the compiled plan (:mod:`ebr.stores.opensearch.compiler`), so
both stores rank alike.  A ``within`` clause scores ``1 + cos = 2 - distance`` (its
``script_score``), a top-K ``nn`` clause ``(1 + cos) / 2 = 1 - distance / 2`` (the native
``knn`` score for cosine), a ``match`` clause its BM25 (:mod:`ebr.stores.bm25`), and a hit's
score is the sum over the scoring clauses it satisfies together with every ancestor of the
clause, as a ``bool`` query sums its matching ``must``/``should`` clauses.  Term-only
branches score nothing (filter context) and neither do clauses under a subtracted operand of
``difference`` (``must_not``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
import numpy.typing as npt

from ebr.mappings.space import Space
from ebr.query.nodes import (
    NN,
    Difference,
    Match,
    Node,
    Or,
    Within,
    branch_order,
    holders,
    is_scoring,
    named_branches,
    subtracted,
)
from ebr.stores.local.bitmaps import Bits, DocNums, to_array
from ebr.stores.local.execution import Execution
from ebr.stores.local.selection import select
from ebr.stores.protocol import ClauseMatch, Hit, LazyHits, TextMatch

F64 = npt.NDArray[np.float64]


def clause_score(distances: F64, topk: bool) -> F64:
    """As OpenSearch scores the compiled clause (the conversions live in Space)."""
    return Space.knn_score(distances) if topk else Space.within_score(distances)  # type: ignore[no-any-return]


def build_hits(plan: Node, ex: Execution, size: int) -> LazyHits:
    """The first ``size`` hits of ``plan`` (already executed by ``ex``): ordered and their ids
    read now, explained (:class:`Hit` objects) on first access."""
    root = ex.bitmap(plan)
    docs = to_array(root)
    snapshot = ex.snapshot
    scores = first_stage_scores(plan, ex, root, docs)
    ranks = snapshot.ranks[docs.astype(np.int64)]
    ids = snapshot.ids
    chosen = select(size, [-scores, -ranks], lambda i: ids[int(docs[i])], len(docs))
    chosen_docs = docs[chosen]
    hit_ids = list(map(ids.__getitem__, chosen_docs.tolist()))
    return LazyHits(hit_ids, partial(_explained, plan, ex, hit_ids, chosen_docs,
                                     scores[chosen].tolist(), ranks[chosen].tolist()))


def _explained(plan: Node, ex: Execution, ids: list[str], docs: DocNums, scores: list[float],
               ranks: list[float]) -> tuple[Hit, ...]:
    """The hits ``ids`` (documents ``docs``, in order, with their scores and ranks), each
    with the branches it satisfies and how it matched the scoring ones."""
    named = sorted(named_branches(plan).items(), key=lambda item: branch_order(item[0]))
    unscored = subtracted(plan)
    # Per branch, which of the hits it matched, and (for a scoring clause) how: worked out
    # for all of them at once.
    matches: list[tuple[str, npt.NDArray[np.bool_], list[ClauseMatch | TextMatch | None]]] = []
    doc_list = docs.tolist()
    for name, node in named:
        matched = ex.bitmap(node)  # a few look-ups: cheaper than np.isin on small arrays
        member = np.fromiter((d in matched for d in doc_list), np.bool_, len(doc_list))
        details: list[ClauseMatch | TextMatch | None] = [None] * len(doc_list)
        rows = np.flatnonzero(member)
        found: Sequence[ClauseMatch | TextMatch] = ()
        if isinstance(node, NN | Within):
            found = _clauses(ex, name, node, docs[rows])
        elif isinstance(node, Match) and id(node) not in unscored:
            found = _texts(ex, name, node, docs[rows])
        for row, detail in zip(rows.tolist(), found, strict=False):  # found: empty or one each
            details[row] = detail
        matches.append((name, member, details))
    hits = []
    for row, (id_, score, rank) in enumerate(zip(ids, scores, ranks, strict=True)):
        held = [(name, details[row]) for name, member, details in matches if member[row]]
        hits.append(Hit(id_, score, rank, tuple(name for name, _ in held),
                        tuple(d for _, d in held if isinstance(d, ClauseMatch)),
                        tuple(d for _, d in held if isinstance(d, TextMatch))))
    return tuple(hits)


def first_stage_scores(plan: Node, ex: Execution, root: Bits, docs: DocNums) -> F64:
    """The score of each of ``docs`` (the plan's matches, ascending)."""
    total = np.zeros(len(docs), np.float64)
    _Scores(ex, docs, total, holders(plan, is_scoring)).add(plan, root, True)
    return total


class _Scores:
    """:func:`first_stage_scores`'s walk: an object rather than a closure calling itself,
    which would be a reference cycle (holding the execution and its arrays) left to the
    garbage collector on every search."""

    __slots__ = ("ex", "docs", "total", "scoring")

    def __init__(self, ex: Execution, docs: DocNums, total: F64, scoring: set[int]) -> None:
        self.ex, self.docs, self.total, self.scoring = ex, docs, total, scoring

    def add(self, node: Node, mask: Bits, whole: bool) -> None:
        """Add ``node``'s scores to the documents of ``mask``; ``whole``: ``mask`` is all of
        ``docs`` (then no look-ups are needed to place them)."""
        if id(node) not in self.scoring or not mask:
            return
        ex, docs, total = self.ex, self.docs, self.total
        if type(node) is NN or type(node) is Within:
            match = ex.match(node)
            if whole and len(match.docs) == len(docs):  # mask lies inside them: the same
                total[:] += clause_score(match.distances, match.topk)
                return
            members = docs if whole else to_array(mask)  # inside the clause's own matches
            distances = match.distances[np.searchsorted(match.docs, members)]
            at = slice(None) if whole else np.searchsorted(docs, members)
            total[at] += clause_score(distances, match.topk)
            return
        if type(node) is Match:
            text = ex.text(node)
            members = docs if whole else to_array(mask)
            at = slice(None) if whole else np.searchsorted(docs, members)
            total[at] += text.scores[np.searchsorted(text.docs, members)]
            return
        if type(node) is Or:
            for child in node.operands:
                self.add(child, mask & ex.bitmap(child), False)
            return
        # An ``and``'s operands, and a ``difference``'s first one, match all it matches.
        for child in node.children[:1] if type(node) is Difference else node.children:
            self.add(child, mask, whole)


def _clauses(ex: Execution, name: str, node: NN | Within, docnums: DocNums) -> list[ClauseMatch]:
    """How each of ``docnums`` (all matched by the clause) matched it."""
    match = ex.match(node)
    distances = match.distances[np.searchsorted(match.docs, docnums)].tolist()
    ranks: list[int | None] = [None] * len(docnums)
    if match.probes is not None:
        table = ex.snapshot.tables[node.key]
        position = {c: r for r, c in enumerate(match.probes)}
        ranks = [position.get(c) for c in table.clusters[table.row_of(docnums)].tolist()]
    return [ClauseMatch(name, node.key, d, r) for d, r in zip(distances, ranks, strict=True)]


def _texts(ex: Execution, name: str, node: Match, docnums: DocNums) -> list[TextMatch]:
    text = ex.text(node)
    return [TextMatch(name, node.namespace, s)
            for s in text.scores[np.searchsorted(text.docs, docnums)].tolist()]
