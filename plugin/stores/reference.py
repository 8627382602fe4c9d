"""The reference evaluator: executes any query AST or plan exactly over a small list of
documents.  It is the executable specification both stores are tested against, so it favours
being obviously right over being fast: plain Python sets and float64 cosine.

Semantics (docs/architecture.md, "The query language's semantics"):

- ``term``: documents holding the term; ``and``/``or``/``difference``: set algebra.
- ``nn`` radius mode: exact cosine distance ``1 - cos <= radius`` (probing is an
  approximation of this; the exact answer is the reference), restricted to ``constraint``.
- ``nn`` top-K mode: the ``k`` nearest documents (distance, then id, ascending) among those
  *admitted*: documents satisfying the term conditions implied
  (:func:`~ebr.planning.implied_terms.implied_terms`) by the siblings of every ``and`` on the path
  from the root (through ``and``, ``or`` and the first operand of ``difference``) and the
  node's own ``constraint``.  With ``path_context=False`` only the node's constraint counts —
  how a store that sees one plan node at a time executes it; push-down makes the two agree.
- ``within``: exact radius over ``candidates`` (or every document with the embedding).
- ``nothing``: the empty set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError
from ebr.planning.implied_terms import implied_terms
from ebr.query.nodes import NN, And, Difference, Node, Nothing, Or, Term, Within, has_vector_match


@dataclass(frozen=True)
class ReferenceDocument:
    """A document as the evaluator sees it: terms as ``"ns:value"`` strings, embeddings by key."""

    id: str
    terms: frozenset[str] = frozenset()
    embeddings: Mapping[str, npt.NDArray[np.floating]] = field(default_factory=dict)


def cosine_distance(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(1.0 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def reference_matches(
    node: Node,
    docs: Sequence[ReferenceDocument],
    vectors: Mapping[str, npt.NDArray[np.floating]],
    path_context: bool = True,
) -> set[str]:
    """The ids of the documents ``node`` matches."""
    return _Evaluator(docs, vectors, path_context).eval(node, None)


class _Evaluator:
    def __init__(self, docs: Sequence[ReferenceDocument], vectors: Mapping[str, npt.NDArray[np.floating]],
                 path_context: bool) -> None:
        self.docs = docs
        self.vectors = vectors
        self.path_context = path_context
        self.all = {d.id for d in docs}

    def eval(self, node: Node, admitted: set[str] | None) -> set[str]:
        """``admitted``: what the path's term-only ``and`` siblings allow (None = everything)."""
        evaluate = NODE_HANDLERS.get(type(node))
        if evaluate is None:
            raise TypeError(f"cannot evaluate {type(node).__name__}")
        return evaluate(self, node, admitted)

    def _term(self, node: Term, admitted: set[str] | None) -> set[str]:
        t = f"{node.namespace}:{node.value}"
        return {d.id for d in self.docs if t in d.terms}

    def _nothing(self, node: Nothing, admitted: set[str] | None) -> set[str]:
        return set()

    def _and(self, node: And, admitted: set[str] | None) -> set[str]:
        result = set(self.all)
        for i, c in enumerate(node.operands):
            inner = admitted
            if self.path_context and has_vector_match(c):
                for j, sibling in enumerate(node.operands):
                    implied = implied_terms(sibling) if j != i else None
                    if implied is not None:
                        allowed = self.eval(implied, None)
                        inner = allowed if inner is None else inner & allowed
            result &= self.eval(c, inner)
        return result

    def _or(self, node: Or, admitted: set[str] | None) -> set[str]:
        return set().union(*(self.eval(c, admitted) for c in node.operands))

    def _difference(self, node: Difference, admitted: set[str] | None) -> set[str]:
        first, *rest = node.operands
        result = self.eval(first, admitted)
        for c in rest:
            result -= self.eval(c, None)
        return result

    def _nn(self, node: NN, admitted: set[str] | None) -> set[str]:
        allowed = self.all if node.constraint is None else self.eval(node.constraint, None)
        if node.radius is not None:
            return self._radius(node.key, node.radius, allowed)
        if admitted is not None and self.path_context:
            allowed = allowed & admitted
        assert node.k is not None  # the parser gives an nn exactly one of radius and k
        return self._top_k(node.key, node.k, allowed)

    def _within(self, node: Within, admitted: set[str] | None) -> set[str]:
        allowed = self.all if node.candidates is None else self.eval(node.candidates, None)
        return self._radius(node.key, node.radius, allowed)

    def _distances(self, key: str, allowed: set[str]) -> list[tuple[float, str]]:
        if key not in self.vectors:
            raise PlanError(f"no query embedding for key {key!r}")
        q = self.vectors[key]
        return [(cosine_distance(q, d.embeddings[key]), d.id)
                for d in self.docs if d.id in allowed and key in d.embeddings]

    def _radius(self, key: str, radius: float, allowed: set[str]) -> set[str]:
        return {i for dist, i in self._distances(key, allowed) if dist <= radius}

    def _top_k(self, key: str, k: int, allowed: set[str]) -> set[str]:
        return {i for _, i in sorted(self._distances(key, allowed))[:k]}


#: How each node type evaluates: (evaluator, node, admitted) -> matching ids.
NODE_HANDLERS: dict[type[Node], Callable[[_Evaluator, Any, set[str] | None], set[str]]] = {
    Term: _Evaluator._term,
    And: _Evaluator._and,
    Or: _Evaluator._or,
    Difference: _Evaluator._difference,
    NN: _Evaluator._nn,
    Within: _Evaluator._within,
    Nothing: _Evaluator._nothing,
}
