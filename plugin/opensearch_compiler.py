"""Plan -> OpenSearch request bodies.  The only module that builds OpenSearch query JSON.

Translation (see opensearch-notes.md for why each choice):

- ``term`` -> ``term`` on the namespace's keyword field.  Term-only subtrees never score (no
  BM25 noise): they go in ``filter`` of an ``and``, and where they stand in a scoring
  position (the root, an operand of an ``or`` holding NN) they are wrapped in
  ``bool.filter``.  Operands holding NN go in ``must``, so the first-stage score is the sum
  of the matched NN clauses' scores (``1 + cos`` for ``within``, ``(1 + cos) / 2`` for knn).
- ``or`` -> ``bool.should`` with ``minimum_should_match: 1`` always (its default is 0 beside
  ``must``/``filter``).
- ``difference`` -> ``bool`` with the first operand and ``must_not`` for the rest.
- ``within`` -> ``script_score`` over the candidates with exact ``cosineSimilarity`` and
  ``min_score`` = the radius as a score (:class:`~ebr.mappings.space.Space`); this honours
  ``nprobe`` (the candidates hold the probe cluster terms) where native radial search on IVF
  would not.
- top-K ``nn`` -> native ``knn`` with ``k``, the pushed-down constraint as ``filter`` and
  ``method_parameters`` (``nprobes`` for IVF-PQ fields; ``ef_search`` for HNSW, where
  ``:nprobe`` has no counterpart and is not sent).  The native ``k`` applies per segment and
  shard, so a clause can match more than ``k`` documents; the store trims to ``k`` by score.
- ``nothing`` -> ``match_none``.

Every branch of the boolean tree carries ``_name`` (:func:`ebr.nodes.named_branches`), so
``matched_queries`` on a hit says which branches matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError, UnsupportedError
from ebr.mappings.schema import Hnsw, Schema
from ebr.mappings.space import Space
from ebr.nodes import (
    NN,
    And,
    Difference,
    Node,
    Nothing,
    Or,
    Term,
    Within,
    has_vector_match,
    named_branches,
    vector_holders,
)
from ebr.printer import to_text
from ebr.query_vectors import Vectors, query_vector
from ebr.server_version import MINIMUM, ServerVersion, require_supported

Json = dict[str, Any]

# Scores must be >= 0 and a document without the vector would make cosineSimilarity throw.
_GUARDED_SCRIPT = "doc[params.field].size() == 0 ? 0 : " + Space.script_source()


@dataclass(frozen=True)
class CompiledSearch:
    """A ``_search`` body and the plan it came from."""

    body: Json
    plan: Node

    def branches(self) -> dict[str, str]:
        """For each ``_name`` in the body, the canonical text of its branch."""
        return {name: to_text(n) for name, n in named_branches(self.plan).items()}


def compile_search(
    plan: Node,
    schema: Schema,
    vectors: Vectors,
    *,
    size: int = 10,
    version: ServerVersion = MINIMUM,
    rescore: list[Json] | None = None,
) -> CompiledSearch:
    """The ``_search`` body for an executable plan (radius NN already expanded)."""
    require_supported(version)
    if size < 0:
        raise PlanError(f"size must be >= 0, got {size}")
    compiler = _Compiler(schema, vectors, vector_holders(plan))
    body: Json = {"size": size, "query": compiler.query(plan, "q", scoring=True)}
    if rescore:
        body["rescore"] = rescore
    return CompiledSearch(body, plan)


def compile_filter(node: Node, schema: Schema) -> Json:
    """A term-only plan as an unnamed filter clause (``knn.filter``, candidates, store filters)."""
    if has_vector_match(node):
        raise PlanError("a filter cannot hold nn or within: " + to_text(node))
    return _Compiler(schema, {}, set()).query(node, None)


def compile_rescore(
    schema: Schema,
    key: str,
    vector: npt.NDArray[np.floating],
    *,
    window_size: int = 100,
    query_weight: float = 1.0,
    rescore_query_weight: float = 1.0,
    score_mode: str = "total",
) -> Json:
    """A request-level ``rescore`` adding the exact cosine of ``key`` (``1 + cos``) to the
    first-stage score of the top ``window_size`` hits per shard.  Keep ``window_size`` >=
    ``from + size`` and fixed across pages: hits past the window keep only the first-stage
    score and are re-sorted with the rescored ones."""
    if schema.key(key) is None:
        raise PlanError(f"unknown embedding key {key!r}")
    if window_size < 1:
        raise PlanError(f"window_size must be >= 1, got {window_size}")
    if score_mode not in ("total", "multiply", "avg", "max", "min"):
        raise PlanError(f"unknown score_mode {score_mode!r}")
    field = schema.vector_field(key)
    return {
        "window_size": window_size,
        "query": {
            "rescore_query": {"script_score": {
                "query": {"exists": {"field": field}},
                "script": _script(field, query_vector(key, {key: vector}, schema).tolist()),
            }},
            "query_weight": query_weight,
            "rescore_query_weight": rescore_query_weight,
            "score_mode": score_mode,
        },
    }


def _script(field: str, vector: list[float]) -> Json:
    return {"source": _GUARDED_SCRIPT, "params": {"field": field, "query_value": vector}}


class _Compiler:
    def __init__(self, schema: Schema, vectors: Vectors, holders: set[int]) -> None:
        self.schema = schema
        self.vectors = vectors
        self.holders = holders  # ids of nodes holding nn/within: they go in scoring context

    def query(self, node: Node, name: str | None, scoring: bool = False) -> Json:
        """Compile ``node``; ``name`` is its branch name (:func:`~ebr.nodes.named_branches`),
        or None inside a copied constraint or candidate set; ``scoring``: whether the clause
        stands where OpenSearch would add its score."""
        if isinstance(node, Term):
            if scoring:  # a term-only and/difference compiles to filter/must_not, which never score
                return {"bool": {"filter": [self.query(node, name)]}}
            body: Json = {"value": node.value}
            if name:
                body["_name"] = name
            return {"term": {self.schema.term_field(node.namespace): body}}
        if isinstance(node, And):
            clauses: Json = {}
            for i, c in enumerate(node.operands):
                vector = id(c) in self.holders
                clauses.setdefault("must" if vector else "filter", []).append(
                    self.query(c, _child(name, i), scoring and vector))
            return self._bool(clauses, name)
        if isinstance(node, Or):
            if scoring and id(node) not in self.holders:
                return {"bool": {"filter": [self.query(node, name)]}}
            if name is None and (terms := self._same_field_terms(node)) is not None:
                return terms
            should = [self.query(c, _child(name, i), scoring)
                      for i, c in enumerate(node.operands)]
            return self._bool({"should": should, "minimum_should_match": 1}, name)
        if isinstance(node, Difference):
            first, *rest = node.operands
            vector = id(first) in self.holders
            return self._bool({
                "must" if vector else "filter": [self.query(first, _child(name, 0),
                                                            scoring and vector)],
                "must_not": [self.query(c, _child(name, i)) for i, c in enumerate(rest, 1)],
            }, name)
        if isinstance(node, Nothing):
            return {"match_none": {"_name": name} if name else {}}
        if isinstance(node, Within):
            return self._within(node, name)
        if isinstance(node, NN):
            return self._knn(node, name)
        raise UnsupportedError(f"the OpenSearch compiler cannot express {type(node).__name__}")

    def _same_field_terms(self, node: Or) -> Json | None:
        """An unnamed ``or`` of terms in one namespace as a single ``terms`` query (probe
        lists, location lists): smaller and faster than a ``should`` of ``term`` clauses."""
        ops = node.operands
        if set(map(type, ops)) != {Term}:
            return None
        namespaces = set(map(_namespace, ops))
        if len(namespaces) != 1:
            return None
        field = self.schema.term_field(namespaces.pop())
        return {"terms": {field: list(map(_value, ops))}}

    @staticmethod
    def _bool(clauses: Json, name: str | None) -> Json:
        if name:
            clauses["_name"] = name
        return {"bool": clauses}

    def _within(self, node: Within, name: str | None) -> Json:
        field = self.schema.vector_field(node.key)
        inner: list[Json] = [{"exists": {"field": field}}]
        candidates = node.candidates
        parts = candidates.operands if isinstance(candidates, And) else (candidates,)
        inner += [self.query(c, None) for c in parts if c is not None]
        body: Json = {
            "query": {"bool": {"filter": inner}},
            "script": _script(field, query_vector(node.key, self.vectors, self.schema).tolist()),
            "min_score": Space.radius_to_script_min_score(node.radius),
        }
        if name:
            body["_name"] = name
        return {"script_score": body}

    def _knn(self, node: NN, name: str | None) -> Json:
        if node.k is None:
            raise PlanError("radius-mode nn must be planned (probe clusters chosen) before "
                            "compiling; use ebr.planner.plan")
        spec = self.schema.key(node.key)
        if spec is None:
            raise PlanError(f"unknown embedding key {node.key!r}")
        body: Json = {"vector": query_vector(node.key, self.vectors, self.schema).tolist(),
                      "k": node.k}
        if node.constraint is not None:
            body["filter"] = self.query(node.constraint, None)
        if isinstance(spec.ann, Hnsw):
            # :nprobe has no HNSW counterpart; the breadth is ef_search, at least k.
            body["method_parameters"] = {"ef_search": max(spec.ann.ef_search, node.k)}
        elif node.nprobe is not None:
            body["method_parameters"] = {"nprobes": node.nprobe}
        if name:
            body["_name"] = name
        return {"knn": {self.schema.vector_field(node.key): body}}


_namespace, _value = attrgetter("namespace"), attrgetter("value")  # of Term


def _child(name: str | None, i: int) -> str | None:
    return None if name is None else f"{name}.{i}"
