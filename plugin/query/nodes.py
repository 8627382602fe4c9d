"""Expression nodes: the typed AST the parser builds and the logical plan the rules rewrite.

Query-language nodes: :class:`Term`, :class:`And`, :class:`Or`, :class:`Difference`,
:class:`NN`, :class:`Match` (free text, analyzed by the parser into its namespace's terms).
Plan-only nodes, introduced by rewrite rules: :class:`Within` (exact radius verification over
candidates) and :class:`Nothing` (the empty set).

Nodes are frozen and hashable; children are tuples; spans are excluded from equality so a
rewritten or re-read tree compares equal to the original.  The node classes are final: the
traversals here and in the rules dispatch on ``type(node) is ...``, which costs a fraction of
``isinstance`` on the hot paths and is exact only while nothing subclasses them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import final

from ebr.query.span import Span


class Node:
    """Base of every expression node."""

    __slots__ = ()
    span: Span | None  # a dataclass field in every subclass

    @property
    def children(self) -> tuple[Node, ...]:
        return ()


@final
@dataclass(frozen=True, slots=True)
class Term(Node):
    """Documents holding the term ``namespace:value``."""

    namespace: str
    value: str
    span: Span | None = field(default=None, compare=False, repr=False)


@final
@dataclass(frozen=True, slots=True)
class And(Node):
    """Intersection of one or more operands."""

    operands: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.operands


@final
@dataclass(frozen=True, slots=True)
class Or(Node):
    """Union of one or more operands."""

    operands: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.operands


@final
@dataclass(frozen=True, slots=True)
class Difference(Node):
    """Documents in the first operand and in none of the others."""

    operands: tuple[Node, ...]
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def children(self) -> tuple[Node, ...]:
        return self.operands


@final
@dataclass(frozen=True, slots=True)
class NN(Node):
    """Nearest-neighbour match on embedding ``key``.

    Radius mode (``radius`` set): documents with cosine distance ``<= radius``, approximated
    by probing the ``nprobe`` nearest coarse clusters unless ``exact``.  Top-K mode (``k``
    set): the ``k`` nearest documents among those the surrounding constraints admit.
    ``constraint`` is filled by the push-down rule: a term-only expression every result must
    satisfy anyway, so NN evaluation may look only at documents matching it.
    """

    key: str
    radius: float | None = None
    k: int | None = None
    nprobe: int | None = None
    exact: bool = False
    constraint: Node | None = None
    span: Span | None = field(default=None, compare=False, repr=False)

    def with_constraint(self, constraint: Node | None) -> NN:
        """This node with another constraint (cheaper than ``dataclasses.replace``)."""
        return NN(self.key, self.radius, self.k, self.nprobe, self.exact, constraint, self.span)


@final
@dataclass(frozen=True, slots=True)
class Match(Node):
    """Free text in namespace ``namespace``, analyzed into ``values`` (distinct terms, in
    order): documents holding at least ``minimum_should_match`` of them, scored by BM25
    (:mod:`ebr.stores.bm25`).  Top-K mode (``k`` set): the ``k`` best by BM25 (then id) among
    the matching documents the surrounding constraints admit; ``constraint`` is filled by the
    push-down rule, as for a top-K :class:`NN`.
    """

    namespace: str
    values: tuple[str, ...]
    minimum_should_match: int
    k: int | None = None
    constraint: Node | None = None
    #: The text as written, for printing: it reads back to these ``values`` through the
    #: namespace's analyzer (the values themselves might not: stemming is not idempotent).
    text: str = field(default="", compare=False, repr=False)
    span: Span | None = field(default=None, compare=False, repr=False)

    def with_constraint(self, constraint: Node | None) -> Match:
        return Match(self.namespace, self.values, self.minimum_should_match, self.k, constraint,
                     self.text, self.span)


@final
@dataclass(frozen=True, slots=True)
class Within(Node):
    """Plan node: documents among ``candidates`` (all documents with a ``key`` embedding when
    ``None``) whose exact cosine distance to the query embedding is ``<= radius``."""

    key: str
    radius: float
    candidates: Node | None = None
    span: Span | None = field(default=None, compare=False, repr=False)

    def with_candidates(self, candidates: Node | None) -> Within:
        return Within(self.key, self.radius, candidates, self.span)


@final
@dataclass(frozen=True, slots=True)
class Nothing(Node):
    """Plan node: the empty set (constant folding's result)."""

    span: Span | None = field(default=None, compare=False, repr=False)


Boolean = And | Or | Difference


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, pre-order, including constraints and candidates."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if type(n) is Term:  # most nodes: nothing below
            continue
        if type(n) is And or type(n) is Or or type(n) is Difference:
            stack.extend(reversed(n.operands))
        elif (type(n) is NN or type(n) is Match) and n.constraint is not None:
            stack.append(n.constraint)
        elif type(n) is Within and n.candidates is not None:
            stack.append(n.candidates)


def size(node: Node) -> int:
    """The number of nodes :func:`walk` yields (recursive: a plan's depth is bounded)."""
    if type(node) is And or type(node) is Or or type(node) is Difference:
        operands = node.operands
        n = 1 + len(operands)  # most operands are terms: count them here, recurse for the rest
        for c in operands:
            if type(c) is not Term:
                n += size(c) - 1
        return n
    if type(node) is Match:  # one clause per term in OpenSearch
        return 1 + len(node.values) + (0 if node.constraint is None else size(node.constraint))
    if type(node) is NN and node.constraint is not None:
        return 1 + size(node.constraint)
    if type(node) is Within and node.candidates is not None:
        return 1 + size(node.candidates)
    return 1


def has_vector_match(node: Node) -> bool:
    """Whether the tree holds an NN or Within node (anything needing a query embedding)."""
    return any(isinstance(n, NN | Within) for n in walk(node))


def is_top_k(node: Node) -> bool:
    """A top-K clause: the K best among the documents its context admits (so it needs the
    push-down constraint, and means something else outside that context)."""
    return (type(node) is NN or type(node) is Match) and node.k is not None


def is_scoring(node: Node) -> bool:
    """A clause adding to a hit's first-stage score: ``nn``, ``within`` and ``match``."""
    return type(node) is NN or type(node) is Within or type(node) is Match


def takes_constraint(node: Node) -> bool:
    """A clause push-down gives a constraint: every ``nn`` (radius mode probes within it) and
    a top-K ``match``."""
    return type(node) is NN or (type(node) is Match and node.k is not None)


def holders(root: Node, leaf: Callable[[Node], bool]) -> set[int]:
    """``id()`` of every node of the boolean tree that is, or holds, a node for which ``leaf``
    is true, in one pass, so a traversal can ask per node without walking subtrees again
    (valid while ``root`` lives).  Constraints and candidates are not searched."""
    found_ids: set[int] = set()
    _hold(root, leaf, found_ids)
    return found_ids


def _hold(n: Node, leaf: Callable[[Node], bool], found_ids: set[int]) -> bool:
    """:func:`holders` below ``n``: whether it holds a leaf.  A module function rather than a
    closure calling itself, which would be a reference cycle left to the garbage collector on
    every search."""
    if leaf(n):
        found_ids.add(id(n))
        return True
    if not (type(n) is And or type(n) is Or or type(n) is Difference):
        return False  # Term, Nothing, and clauses that are not leaves here
    found = False
    for c in n.operands:
        if type(c) is not Term and _hold(c, leaf, found_ids):  # terms: never leaves
            found = True
    if found:
        found_ids.add(id(n))
    return found


def rebuild(node: Node, operands: tuple[Node, ...]) -> Node:
    """The same boolean node with new operands (keeps the span)."""
    return type(node)(operands, node.span)  # type: ignore[call-arg]


def subtracted(root: Node) -> set[int]:
    """``id()`` of every node of the boolean tree under a subtracted operand of a
    ``difference``: they decide which documents match but never add to a hit's score."""
    out: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        n, under = stack.pop()
        if under:
            out.add(id(n))
        stack.extend((c, under or (type(n) is Difference and i > 0))
                     for i, c in enumerate(n.children))
    return out


def branch_order(name: str) -> tuple[int, ...]:
    """Sort key putting branch names in tree order (``q``, ``q.0``, ``q.0.1``, ``q.1``...)."""
    return tuple(int(part) for part in name.split(".")[1:])


def named_branches(root: Node) -> dict[str, Node]:
    """Stable branch names for every node of the boolean tree: ``q`` for the root, then
    ``q.<i>`` for operand ``i``.  Constraints and candidates are copies of other branches and
    are not named.  Both stores report matches with these names."""
    names: dict[str, Node] = {}
    stack = [("q", root)]
    while stack:
        name, n = stack.pop()
        names[name] = n
        stack.extend((f"{name}.{i}", c) for i, c in enumerate(n.children))
    return names
