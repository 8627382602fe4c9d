"""Flatten nested boolean nodes.

``(and a (and b c))`` -> ``(and a b c)``; ``(or a (or b))`` -> ``(or a b)``; a single-operand
``and``/``or`` is its operand; ``(difference (difference a b) c)`` -> ``(difference a b c)``.

>>> from ebr.query.parser import parse
>>> from ebr.query.printer import to_text
>>> to_text(flatten(parse("(and (term a:1) (and (term a:2) (or (term a:3))))")))
'(and (term a:1) (term a:2) (term a:3))'
"""

from __future__ import annotations

from ebr.planning.rules.traversal import bottom_up
from ebr.query.nodes import And, Difference, Node, Or, rebuild


def flatten(node: Node) -> Node:
    return bottom_up(node, flatten_step)


def flatten_step(node: Node) -> Node:
    """Flatten ``node`` itself, its children being flat already.  Returns ``node`` itself when
    it is flat already (callers compare by identity)."""
    if type(node) is And or type(node) is Or:
        kind = type(node)
        ops = node.operands
        if kind not in map(type, ops):
            return ops[0] if len(ops) == 1 else node
        operands: list[Node] = []
        for child in ops:
            if type(child) is kind:
                operands.extend(child.children)
            else:
                operands.append(child)
        if len(operands) == 1:
            return operands[0]
        return rebuild(node, tuple(operands))
    if type(node) is Difference and type(node.operands[0]) is Difference:
        inner = node.operands[0]
        return Difference((*inner.operands, *node.operands[1:]), node.span)
    return node
