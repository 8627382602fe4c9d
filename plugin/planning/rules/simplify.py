"""Flatten, deduplicate and fold in one bottom-up pass (the three local rules together).

>>> from ebr.query.parser import parse
>>> from ebr.query.printer import to_text
>>> to_text(simplify(parse("(or (term a:1) (or (term a:1) (and (term b:2))))")))
'(or (term a:1) (term b:2))'
"""

from __future__ import annotations

from ebr.planning.rules.dedupe import dedupe_step
from ebr.planning.rules.flatten import flatten_step
from ebr.planning.rules.fold import fold_step
from ebr.planning.rules.traversal import map_children
from ebr.query.nodes import Node

#: Nodes known to be simplified, by ``id`` (the values hold them alive, so ids stay unique).
Simplified = dict[int, Node]


def simplify(node: Node, simplified: Simplified | None = None) -> Node:
    """``simplified``: nodes known to need nothing, returned as they are; every node this call
    returns is added to it.  Simplify is idempotent (a property test), so whatever one call
    returned, a later call on a tree sharing those nodes can keep: the planner's passes
    share one such dict within one plan."""
    known: Simplified = {} if simplified is None else simplified

    def visit(n: Node) -> Node:
        if id(n) in known:  # map_children passes no terms: no local rule rewrites a term
            return n
        out = fold_step(dedupe_step(flatten_step(map_children(n, visit))))
        known[id(out)] = out
        return out

    return visit(node)
