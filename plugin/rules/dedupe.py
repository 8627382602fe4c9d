"""Drop duplicate operands (structural equality), keeping the first occurrence.

``(or a b a)`` -> ``(or a b)``; in ``difference`` only the subtracted operands are deduplicated.

>>> from ebr.analyzer import parse
>>> from ebr.printer import to_text
>>> to_text(dedupe(parse("(or (term a:1) (term a:2) (term a:1))")))
'(or (term a:1) (term a:2))'
"""

from __future__ import annotations

from ebr.nodes import And, Difference, Node, Or, rebuild
from ebr.rules.children import bottom_up


def dedupe(node: Node) -> Node:
    return bottom_up(node, dedupe_step)


def dedupe_step(node: Node) -> Node:
    """Deduplicate ``node``'s own operands."""
    if isinstance(node, And | Or):
        unique = unique_nodes(node.operands)
        if len(unique) == 1:
            return unique[0]
        return node if len(unique) == len(node.operands) else rebuild(node, unique)
    if isinstance(node, Difference):
        rest = unique_nodes(node.operands[1:])
        if len(rest) + 1 != len(node.operands):
            return Difference((node.operands[0], *rest), node.span)
    return node


def unique_nodes(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """``nodes`` without repeats, first occurrence kept."""
    if len(nodes) > 8:
        return tuple(dict.fromkeys(nodes))
    # Few operands: equality fails fast on differing nodes, where hashing would walk every
    # subtree in full (node hashes are not cached).
    kept: list[Node] = []
    for n in nodes:
        if n not in kept:
            kept.append(n)
    return nodes if len(kept) == len(nodes) else tuple(kept)
