"""The term-only condition an expression implies: what push-down may push, and what top-K
mode's "documents the surrounding constraints admit" means.

``implied_terms(e)`` is a term-only expression (no NN) satisfied by every document ``e``
matches, or ``None`` when ``e`` implies no term condition.  It is defined on the structure so
that it does not change when the structure is flattened, deduplicated or folded:

- a term, or ``nothing``, implies itself;
- ``and`` implies the conjunction of what its operands imply (operands implying nothing
  add nothing);
- ``or`` implies the union of what its operands imply, if every operand implies something;
- ``difference`` implies what its first operand implies;
- ``match`` implies itself (a term condition: at least so many of its terms), except in
  top-K mode;
- ``nn``, ``within`` and a top-K ``match`` imply nothing (their own constraints are derived
  from their context, so using them would be circular).

>>> from ebr.query.parser import parse
>>> from ebr.query.printer import to_text
>>> to_text(implied_terms(parse("(and (term a:1) (or (term b:2) (and (term b:3) (nn m :k 3))))")))
'(and (term a:1) (or (term b:2) (term b:3)))'
"""

from __future__ import annotations

from operator import is_

from ebr.query.nodes import NN, And, Difference, Match, Node, Nothing, Or, Term, Within, rebuild


def implied_terms(node: Node) -> Node | None:
    """``node`` itself when it is term-only (no copy: push-down and the simplify pass after it
    then meet a node they already know)."""
    if type(node) is Term or type(node) is Nothing:
        return node
    if type(node) is Match:
        return None if node.k is not None else node
    if type(node) is NN or type(node) is Within:
        return None
    if type(node) is And:
        parts: list[Node] = []
        for c in node.operands:
            if (p := implied_terms(c)) is not None:
                parts.append(p)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else _rebuilt(node, parts)
    if type(node) is Or:
        branches: list[Node] = []
        for c in node.operands:
            if (p := implied_terms(c)) is None:
                return None  # this branch may match without any term condition
            branches.append(p)
        return branches[0] if len(branches) == 1 else _rebuilt(node, branches)
    if type(node) is Difference:
        return implied_terms(node.operands[0])
    raise TypeError(f"implied_terms does not know {type(node).__name__}")


def _rebuilt(node: And | Or, operands: list[Node]) -> Node:
    """``node`` with ``operands``, or ``node`` itself when they are its own."""
    if len(operands) == len(node.operands) and all(map(is_, operands, node.operands)):
        return node
    return rebuild(node, tuple(operands))
