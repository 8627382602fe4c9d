"""The traversal helpers the rules share: rebuild a node from rewritten children, and apply a
local rewrite bottom-up."""

from __future__ import annotations

from collections.abc import Callable

from ebr.query.nodes import NN, And, Difference, Match, Node, Or, Term, Within, rebuild


def map_children(node: Node, rule: Callable[[Node], Node]) -> Node:
    """``node`` with ``rule`` applied to every child (operands, constraint, candidates) but
    terms: no rule rewrites a term, and most operands are terms, so skipping them saves a call
    each.  Returns ``node`` itself when nothing changed, so unchanged trees are not copied and
    callers can tell by identity."""
    if type(node) is And or type(node) is Or or type(node) is Difference:
        # A loop rather than a comprehension and a comparison: this runs on every node of
        # every pass, and most operands are terms or come back unchanged.
        operands = node.operands
        new: list[Node] | None = None
        for i, child in enumerate(operands):
            if type(child) is not Term and (c := rule(child)) is not child:
                if new is None:
                    new = list(operands)
                new[i] = c
        return node if new is None else rebuild(node, tuple(new))
    if type(node) is NN or type(node) is Match:
        if node.constraint is None:
            return node
        c = rule(node.constraint)
        return node if c is node.constraint else node.with_constraint(c)
    if type(node) is Within:
        if node.candidates is None:
            return node
        c = rule(node.candidates)
        return node if c is node.candidates else node.with_candidates(c)
    return node  # Term, Nothing: no children


def bottom_up(node: Node, step: Callable[[Node], Node]) -> Node:
    """Apply ``step`` to every node, children first (one pass over the tree), except the
    terms below the root, which :func:`map_children` passes over."""
    return _BottomUp(step)(node)


class _BottomUp:
    """:func:`bottom_up`'s visit, an object rather than a closure calling itself: such a closure
    holds itself through its cell, a reference cycle that every plan would leave to the cyclic
    garbage collector, whose runs then land inside searches (their slowest percentile)."""

    __slots__ = ("step",)

    def __init__(self, step: Callable[[Node], Node]) -> None:
        self.step = step

    def __call__(self, n: Node) -> Node:
        return self.step(map_children(n, self))
