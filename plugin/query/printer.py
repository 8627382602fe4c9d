"""Nodes -> canonical s-expression text.

``to_text`` gives one line; ``pretty`` breaks lines past a width.  Query-language nodes
print as text the reader reads back to an equal AST (a ``match`` prints the text it was
given, which its namespace's analyzer turns into the same terms again).  Plan-only nodes
(``within``, ``nothing``, a pushed-down ``:where``) print in the same style for ``explain``
but are not part of the query language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ebr.query.nodes import NN, And, Difference, Match, Node, Nothing, Or, Term, Within
from ebr.query.reader import NUMBER as _NUMBER

_BARE = re.compile(r"[^\s()\";]+\Z")


def to_text(node: Node) -> str:
    """Canonical one-line text of ``node``."""
    return _pieces(node, None, 0)


def pretty(node: Node, width: int = 80) -> str:
    """Canonical text, broken over indented lines where one line would exceed ``width``."""
    return _pieces(node, width, 0)


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float (``0.24``, ``1.0``)."""
    return repr(float(value))


def term_text(namespace: str, value: str) -> str:
    return atom_text(f"{namespace}:{value}")


def atom_text(raw: str) -> str:
    """``raw`` as a bare symbol when it reads back as that symbol, else as a string."""
    if _BARE.match(raw) and not raw.startswith(":") and not _NUMBER.match(raw):
        return raw
    return '"' + raw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
        "\t", "\\t") + '"'


def _pieces(node: Node, width: int | None, indent: int) -> str:
    head, args, kids = _parts(node)
    flat = "(" + " ".join([head, *args, *(to_text(k) for k in kids)]) + ")"
    if width is None or indent + len(flat) <= width or not kids:
        return flat
    pad = " " * (indent + 2)
    inner = [_pieces(k, width, indent + 2) for k in kids]
    return "(" + " ".join([head, *args]) + "".join("\n" + pad + s for s in inner) + ")"


Parts = tuple[str, list[str], list[Node]]


def _parts(node: Node) -> Parts:
    """(operator, atom arguments, node arguments) of a node."""
    parts = NODE_HANDLERS.get(type(node))
    if parts is None:
        raise TypeError(f"cannot print {type(node).__name__}")
    return parts(node)


def _nn(node: NN) -> Parts:
    args = [atom_text(node.key)]
    if node.radius is not None:
        args += [":radius", format_number(node.radius)]
    if node.k is not None:
        args += [":k", str(node.k)]
    if node.nprobe is not None:
        args += [":nprobe", str(node.nprobe)]
    if node.exact:
        args += [":exact", "true"]
    if node.constraint is None:
        return "nn", args, []
    return "nn", [*args, ":where"], [node.constraint]


def _match(node: Match) -> Parts:
    args = [atom_text(node.namespace), atom_text(node.text or " ".join(node.values))]
    if node.minimum_should_match != len(node.values):
        args += [":minimum-should-match", str(node.minimum_should_match)]
    if node.k is not None:
        args += [":k", str(node.k)]
    if node.constraint is None:
        return "match", args, []
    return "match", [*args, ":where"], [node.constraint]


def _within(node: Within) -> Parts:
    args = [atom_text(node.key), format_number(node.radius)]
    if node.candidates is None:
        return "within", args, []
    return "within", [*args, ":over"], [node.candidates]


#: Each node type's parts: node -> (operator, atom arguments, node arguments).
NODE_HANDLERS: dict[type[Node], Callable[[Any], Parts]] = {
    Term: lambda node: ("term", [term_text(node.namespace, node.value)], []),
    And: lambda node: ("and", [], list(node.operands)),
    Or: lambda node: ("or", [], list(node.operands)),
    Difference: lambda node: ("difference", [], list(node.operands)),
    NN: _nn,
    Match: _match,
    Within: _within,
    Nothing: lambda node: ("nothing", [], []),
}
