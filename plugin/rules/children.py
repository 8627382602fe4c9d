"""The traversal helpers the rules share: rebuild a node from rewritten children, and apply a
local rewrite bottom-up."""

from __future__ import annotations

from collections.abc import Callable

from ebr.nodes import NN, Node, Term, Within, rebuild


def map_children(node: Node, rule: Callable[[Node], Node]) -> Node:
    """``node`` with ``rule`` applied to every child (operands, constraint, candidates).
    Returns ``node`` itself when nothing changed, so unchanged trees are not copied and
    callers can tell by identity."""
    if type(node) is Term:  # most nodes: no children
        return node
    if isinstance(node, NN):
        if node.constraint is None:
            return node
        c = rule(node.constraint)
        return node if c is node.constraint else node.with_constraint(c)
    if isinstance(node, Within):
        if node.candidates is None:
            return node
        c = rule(node.candidates)
        return node if c is node.candidates else node.with_candidates(c)
    kids = node.children
    if not kids:
        return node
    new = tuple([rule(k) for k in kids])
    for a, b in zip(new, kids):  # noqa: B905 - same length by construction
        if a is not b:
            return rebuild(node, new)
    return node


def bottom_up(node: Node, step: Callable[[Node], Node]) -> Node:
    """Apply ``step`` to every node, children first (one pass over the tree)."""

    def visit(n: Node) -> Node:
        return step(map_children(n, visit))

    return visit(node)
