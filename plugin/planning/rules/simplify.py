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
from ebr.planning.rules.traversal import bottom_up
from ebr.query.nodes import Node


def simplify(node: Node) -> Node:
    return bottom_up(node, simplify_step)


def simplify_step(node: Node) -> Node:
    """Flatten, deduplicate and fold ``node`` itself, its children being simplified already."""
    return fold_step(dedupe_step(flatten_step(node)))
