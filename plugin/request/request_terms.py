"""The terms a query's ``match`` clauses ask for, per namespace: what a reranker counts in a
document (:attr:`ebr.ranking.RerankRequest.terms`), read off the plan's ``match`` nodes
(their text already analysed by the namespace's analyzer, as ingest analyses it)."""

from __future__ import annotations

from ebr.query.nodes import Match, Node, walk


def match_terms(plan: Node) -> dict[str, tuple[str, ...]]:
    """``{namespace: terms}`` of every ``match`` in ``plan``, terms in order of first
    appearance (pre-order, left to right)."""
    found: dict[str, dict[str, None]] = {}
    for node in walk(plan):
        if type(node) is Match:
            found.setdefault(node.namespace, {}).update(dict.fromkeys(node.values))
    return {ns: tuple(terms) for ns, terms in found.items()}
