"""Drop duplicate operands (structural equality), keeping the first occurrence.

``(or a b a)`` -> ``(or a b)``; in ``difference`` only the subtracted operands are deduplicated.

>>> from ebr.analyzer import parse
>>> from ebr.printer import to_text
>>> to_text(dedupe(parse("(or (term a:1) (term a:2) (term a:1))")))
'(or (term a:1) (term a:2))'
"""

from __future__ import annotations

from ebr.nodes import And, Difference, Node, Or, rebuild
from ebr.rules.children import map_children


def dedupe(node: Node) -> Node:
    node = map_children(node, dedupe)
    if isinstance(node, And | Or):
        unique = tuple(dict.fromkeys(node.operands))
        if len(unique) == 1:
            return unique[0]
        return node if len(unique) == len(node.operands) else rebuild(node, unique)
    if isinstance(node, Difference):
        rest = tuple(dict.fromkeys(node.operands[1:]))
        if len(rest) + 1 != len(node.operands):
            return Difference((node.operands[0], *rest), node.span)
    return node
