"""Drop duplicate operands (structural equality), keeping the first occurrence.

``(or a b a)`` -> ``(or a b)``; in ``difference`` only the subtracted operands are deduplicated.

>>> from ebr.query.parser import parse
>>> from ebr.query.printer import to_text
>>> to_text(dedupe(parse("(or (term a:1) (term a:2) (term a:1))")))
'(or (term a:1) (term a:2))'
"""

from __future__ import annotations

from ebr.planning.rules.traversal import bottom_up
from ebr.query.nodes import And, Difference, Node, Or, Term, rebuild


def dedupe(node: Node) -> Node:
    return bottom_up(node, dedupe_step)


def dedupe_step(node: Node) -> Node:
    """Deduplicate ``node``'s own operands; ``node`` itself when they are distinct already."""
    if type(node) is And or type(node) is Or:
        unique = unique_nodes(node.operands)
        if len(unique) == 1:
            return unique[0]
        return node if unique is node.operands else rebuild(node, unique)
    if type(node) is Difference:
        rest = node.operands[1:]
        unique = unique_nodes(rest)
        if unique is not rest:
            return Difference((node.operands[0], *unique), node.span)
    return node


def unique_nodes(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """``nodes`` without repeats, first occurrence kept; ``nodes`` itself when they are
    distinct already."""
    if len(nodes) > 8:
        # Term lists (probes, match terms): (namespace, value) is the equality key, and
        # hashing it skips a Python-level __hash__ call per node.
        if all([type(n) is Term for n in nodes]):
            keys = {(n.namespace, n.value) for n in nodes}  # type: ignore[attr-defined]
            if len(keys) == len(nodes):
                return nodes
        unique = tuple(dict.fromkeys(nodes))
        return nodes if len(unique) == len(nodes) else unique
    # Few operands: equality fails fast on differing nodes, where hashing would walk every
    # subtree in full (node hashes are not cached).
    kept: list[Node] = []
    for n in nodes:
        if n not in kept:
            kept.append(n)
    return nodes if len(kept) == len(nodes) else tuple(kept)
