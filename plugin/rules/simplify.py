"""Flatten, deduplicate and fold in one bottom-up pass (the three local rules together).

>>> from ebr.analyzer import parse
>>> from ebr.printer import to_text
>>> to_text(simplify(parse("(or (term a:1) (or (term a:1) (and (term b:2))))")))
'(or (term a:1) (term b:2))'
"""

from __future__ import annotations

from ebr.nodes import Node, Term
from ebr.rules.children import map_children
from ebr.rules.dedupe import dedupe_step
from ebr.rules.flatten import flatten_step
from ebr.rules.fold import fold_step


def simplify(node: Node) -> Node:
    if type(node) is Term:  # most nodes: no local rule rewrites a term
        return node
    return fold_step(dedupe_step(flatten_step(map_children(node, simplify))))
