"""Constraint push-down into NN nodes (docs/architecture.md, "The query language's semantics").

For an NN node (or a top-K ``match``) reached from the root through ``and``/``or`` nodes (and
the first operand of ``difference``), the term conditions implied by the siblings of every
``and`` on that path (:func:`~ebr.planning.implied_terms.implied_terms`) form a conjunction C
that every result must satisfy anyway.  Setting the NN's ``constraint`` to C never changes
the whole expression's result for radius mode, and defines top-K mode's "K best among the
documents the surrounding constraints admit".  Subtracted operands of ``difference`` start a fresh context
(not monotone).  C is always term-only (a plain filter in either store) and never circular.

>>> from ebr.query.parser import parse
>>> from ebr.query.printer import to_text
>>> to_text(push_down(parse("(and (term a:1) (or (term b:2) (nn m :radius 0.3)))")))
'(and (term a:1) (or (term b:2) (nn m :radius 0.3 :where (term a:1))))'
"""

from __future__ import annotations

from ebr.planning.implied_terms import implied_terms
from ebr.planning.rules.dedupe import unique_nodes
from ebr.planning.rules.simplify import simplify
from ebr.query.nodes import (
    NN,
    And,
    Difference,
    Match,
    Node,
    Or,
    Within,
    holders,
    rebuild,
    takes_constraint,
)


def push_down(node: Node) -> Node:
    targets = holders(node, _beyond_terms)
    if id(node) not in targets:
        return node  # no NN nor top-K match: nothing to push into
    return _push(node, (), targets)


def _beyond_terms(node: Node) -> bool:
    """A clause that is not a term condition: one that takes a constraint, or a ``within``
    (already planned; nothing to push into)."""
    return takes_constraint(node) or type(node) is Within


def _push(
    node: Node, context: tuple[Node, ...], holders: set[int]) -> Node:
    """``holders``: the nodes of the whole tree that are or hold a clause beyond term
    conditions (:func:`_beyond_terms`); the callers skip operands not in it (nothing below
    to push into, and term-only: a context for their siblings as they stand)."""
    if type(node) is NN or type(node) is Match:  # the clauses that take a constraint
        if not context or not takes_constraint(node):
            return node
        existing = () if node.constraint is None else (node.constraint,)
        # simplified, so that pushing down again finds the same constraint (idempotence)
        constraint = conjunction((*existing, *context))
        return node.with_constraint(simplify(constraint))
    if type(node) is And:
        operands = node.operands
        # What each operand implies (itself when term-only), for its siblings' context.
        implied = [c if id(c) not in holders else implied_terms(c) for c in operands]
        pushed = list(operands)
        for i, c in enumerate(operands):
            if id(c) in holders:
                siblings = [p for j, p in enumerate(implied) if j != i and p is not None]
                pushed[i] = _push(c, context + tuple(siblings), holders)
        return rebuild(node, tuple(pushed))
    if type(node) is Or:
        return rebuild(node, tuple([_push(c, context, holders) if id(c) in holders else c
                                    for c in node.operands]))
    if type(node) is Difference:
        first, *rest = node.operands
        return rebuild(node, (_push(first, context, holders) if id(first) in holders
                              else first,
                              *[_push(c, (), holders) if id(c) in holders else c
                                for c in rest]))
    return node  # Within: nothing to push into


def conjunction(parts: tuple[Node, ...]) -> Node:
    """``parts`` as one flat, duplicate-free ``and`` (or the single part)."""
    flat: list[Node] = []
    for p in parts:
        flat.extend(p.operands if type(p) is And else (p,))
    unique = unique_nodes(tuple(flat))
    return unique[0] if len(unique) == 1 else And(unique)
