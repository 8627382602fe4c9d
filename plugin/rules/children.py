"""The traversal helpers the rules share: rebuild a node from rewritten children, and apply a
local rewrite bottom-up."""

from __future__ import annotations

from collections.abc import Callable
from operator import is_

from ebr.nodes import NN, And, Difference, Node, Or, Term, Within, rebuild


def map_children(node: Node, rule: Callable[[Node], Node]) -> Node:
    """``node`` with ``rule`` applied to every child (operands, constraint, candidates).
    Returns ``node`` itself when nothing changed, so unchanged trees are not copied and
    callers can tell by identity."""
    if type(node) is Term:  # most nodes: no children
        return node
    if isinstance(node, (And, Or, Difference)):
        return _map_operands(node, node.operands, rule)
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
    return _map_operands(node, node.children, rule)


def _map_operands(node: Node, kids: tuple[Node, ...], rule: Callable[[Node], Node]) -> Node:
    new = [rule(k) for k in kids]
    return node if all(map(is_, new, kids)) else rebuild(node, tuple(new))


def bottom_up(node: Node, step: Callable[[Node], Node]) -> Node:
    """Apply ``step`` to every node, children first (one pass over the tree)."""

    def visit(n: Node) -> Node:
        return step(map_children(n, visit))

    return visit(node)
