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

import numpy as np
import numpy.typing as npt

from ebr.mappings.space import Space
from ebr.query.nodes import (
    NN,
    Difference,
    Match,
    Node,
    Within,
    branch_order,
    holders,
    is_scoring,
    named_branches,
    subtracted,
)
from ebr.stores.local.bitmaps import DocNums, to_array
from ebr.stores.local.execution import Bits, Execution
from ebr.stores.local.selection import select
from ebr.stores.protocol import ClauseMatch, Hit, TextMatch

F64 = npt.NDArray[np.float64]


def clause_score(distances: F64, topk: bool) -> F64:
    """As OpenSearch scores the compiled clause (the conversions live in Space)."""
    return Space.knn_score(distances) if topk else Space.within_score(distances)  # type: ignore[no-any-return]


def build_hits(plan: Node, ex: Execution, size: int) -> tuple[Hit, ...]:
    """The first ``size`` hits of ``plan`` (already executed by ``ex``), explained."""
    root = ex.bitmap(plan)
    docs = to_array(root)
    snapshot = ex.snapshot
    scores = first_stage_scores(plan, ex, root, docs)
    ranks = snapshot.ranks[docs.astype(np.int64)]
    ids = snapshot.ids
    chosen = select(size, [-scores, -ranks], lambda i: ids[int(docs[i])], len(docs))

    named = sorted(named_branches(plan).items(), key=lambda item: branch_order(item[0]))
    branches = [(name, ex.bitmap(node), node) for name, node in named]
    unscored = subtracted(plan)
    hits = []
    for i in chosen:
        docnum = int(docs[i])
        matched = [(name, node) for name, bm, node in branches if docnum in bm]
        hits.append(Hit(ids[docnum], float(scores[i]), float(ranks[i]),
                        tuple(name for name, _ in matched),
                        tuple(_clause(ex, name, node, docnum) for name, node in matched
                              if isinstance(node, NN | Within)),
                        tuple(_text(ex, name, node, docnum) for name, node in matched
                              if isinstance(node, Match) and id(node) not in unscored)))
    return tuple(hits)


def first_stage_scores(plan: Node, ex: Execution, root: Bits, docs: DocNums) -> F64:
    """The score of each of ``docs`` (the plan's matches, ascending)."""
    total = np.zeros(len(docs), np.float64)
    scoring = holders(plan, is_scoring)

    def visit(node: Node, mask: Bits) -> None:
        if id(node) not in scoring or not mask:
            return
        if isinstance(node, NN | Within):
            match = ex.match(node)
            members = to_array(mask)  # mask lies inside the clause's own matches
            distances = match.distances[np.searchsorted(match.docs, members)]
            total[np.searchsorted(docs, members)] += clause_score(distances, match.topk)
            return
        if isinstance(node, Match):
            text = ex.text(node)
            members = to_array(mask)
            total[np.searchsorted(docs, members)] += text.scores[
                np.searchsorted(text.docs, members)]
            return
        children = node.children[:1] if isinstance(node, Difference) else node.children
        for child in children:
            visit(child, mask & ex.bitmap(child))

    visit(plan, root)
    return total


def _clause(ex: Execution, name: str, node: NN | Within, docnum: int) -> ClauseMatch:
    match = ex.match(node)
    distance = float(match.distances[np.searchsorted(match.docs, docnum)])
    probe_rank = None
    if match.probes is not None:
        table = ex.snapshot.tables[node.key]
        cluster = int(table.clusters[table.row_of(np.array([docnum], np.uint32))[0]])
        probe_rank = match.probes.index(cluster) if cluster in match.probes else None
    return ClauseMatch(name, node.key, distance, probe_rank)


def _text(ex: Execution, name: str, node: Match, docnum: int) -> TextMatch:
    text = ex.text(node)
    return TextMatch(name, node.namespace,
                     float(text.scores[np.searchsorted(text.docs, docnum)]))
