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
- ``match``: documents holding at least ``minimum_should_match`` of its terms; in top-K mode
  the ``k`` with the highest BM25 (:func:`reference_bm25`; then id ascending) among those
  admitted, as for a top-K ``nn``.
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
from ebr.query.nodes import (
    NN,
    And,
    Difference,
    Match,
    Node,
    Nothing,
    Or,
    Term,
    Within,
    is_top_k,
    walk,
)
from ebr.stores import bm25


@dataclass(frozen=True)
class ReferenceDocument:
    """A document as the evaluator sees it: terms as ``"ns:value"`` strings, embeddings by key."""

    id: str
    terms: frozenset[str] = frozenset()
    embeddings: Mapping[str, npt.NDArray[np.floating]] = field(default_factory=dict)


def cosine_distance(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> float:
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(1.0 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def reference_bm25(docs: Sequence[ReferenceDocument], namespace: str,
                   values: Sequence[str]) -> dict[str, float]:
    """Each document's BM25 for ``values`` in ``namespace``, straight from the definition in
    :mod:`ebr.stores.bm25` (documents holding none of the values score 0)."""
    prefix = namespace + ":"
    lengths = {d.id: sum(t.startswith(prefix) for t in d.terms) for d in docs}
    holders = [d for d in docs if lengths[d.id]]
    if not holders:
        return {d.id: 0.0 for d in docs}
    average = sum(lengths[d.id] for d in holders) / len(holders)
    weights = {v: bm25.idf(sum(prefix + v in d.terms for d in holders), len(holders))
               for v in dict.fromkeys(values)}
    scores = {}
    for d in docs:
        dl = float(bm25.stored_length(np.array([lengths[d.id]]))[0])
        share = 1.0 / (1.0 + bm25.K1 * (1.0 - bm25.B + bm25.B * dl / average))
        scores[d.id] = sum(w * share for v, w in weights.items() if prefix + v in d.terms)
    return scores


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
            if self.path_context and any(map(is_top_k, walk(c))):
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

    def _match(self, node: Match, admitted: set[str] | None) -> set[str]:
        terms = [f"{node.namespace}:{v}" for v in node.values]
        matched = {d.id for d in self.docs
                   if sum(t in d.terms for t in terms) >= node.minimum_should_match}
        if node.k is None:
            return matched
        if node.constraint is not None:
            matched &= self.eval(node.constraint, None)
        if admitted is not None and self.path_context:
            matched &= admitted
        scores = reference_bm25(self.docs, node.namespace, node.values)
        return set(sorted(matched, key=lambda i: (-scores[i], i))[:node.k])

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
    Match: _Evaluator._match,
    Within: _Evaluator._within,
    Nothing: _Evaluator._nothing,
}
