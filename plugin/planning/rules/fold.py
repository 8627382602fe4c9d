"""Constant folding of the empty set.

``(and .. nothing ..)`` -> nothing; ``nothing`` operands of ``or`` and subtracted ``nothing``
are dropped; ``(difference nothing ..)`` -> nothing; ``(difference a .. a ..)`` -> nothing;
an NN, top-K ``match`` or ``within`` whose constraint or candidates are empty is empty.
``(difference a a)`` is not folded when ``a`` holds a top-K clause: the first operand ranks
within the outer context, the subtracted copy over everything, so the two can differ.

>>> from ebr.query.nodes import Nothing, Or, Term
>>> fold(Or((Nothing(), Term("a", "1"))))
Term(namespace='a', value='1')
"""

from __future__ import annotations

from ebr.planning.rules.traversal import bottom_up
from ebr.query.nodes import (
    NN,
    And,
    Difference,
    Match,
    Node,
    Nothing,
    Or,
    Within,
    is_top_k,
    rebuild,
    walk,
)


def fold(node: Node) -> Node:
    return bottom_up(node, fold_step)


def fold_step(node: Node) -> Node:
    """Fold ``node`` itself, its children being folded already."""
    if type(node) is And:
        if Nothing in map(type, node.operands):
            return Nothing(node.span)
    elif type(node) is Or:
        if len(node.operands) > 1 and Nothing not in map(type, node.operands):
            return node
        kept = tuple(c for c in node.operands if type(c) is not Nothing)
        if not kept:
            return Nothing(node.span)
        if len(kept) == 1:
            return kept[0]
        return rebuild(node, kept)
    elif type(node) is Difference:
        first, *rest = node.operands
        if type(first) is Nothing or (first in rest and not _holds_top_k(first)):
            return Nothing(node.span)
        kept = tuple(c for c in rest if type(c) is not Nothing)
        if not kept:
            return first
        if len(kept) != len(rest):
            return Difference((first, *kept), node.span)
    elif (type(node) is NN or type(node) is Match) and type(node.constraint) is Nothing:
        return Nothing(node.span)
    elif type(node) is Within and type(node.candidates) is Nothing:
        return Nothing(node.span)
    return node


def _holds_top_k(node: Node) -> bool:
    return any(map(is_top_k, walk(node)))
