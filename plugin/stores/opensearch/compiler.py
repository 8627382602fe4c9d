"""Plan -> OpenSearch request bodies.  The only module that builds OpenSearch query JSON.

Translation (docs/architecture.md says what each choice relies on):

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
- ``match`` -> ``bool.should`` of one ``term`` per analyzed term on the namespace's scored
  text field (BM25 as the local store computes it: :mod:`ebr.stores.bm25`; on 2.x each
  clause is boosted by ``1 / (k1 + 1)`` to divide out the old factor) with the clause's
  ``minimum_should_match``; it scores in ``must`` like a vector clause.  Stores search with
  ``dfs_query_then_fetch`` so that every shard uses the index's term statistics.
- ``nothing`` -> ``match_none``.
- a top-K ``nn`` given in ``resolved`` (its documents found beforehand by
  :func:`compile_top_k`'s request) -> ``script_score`` over an ``ids`` query with the exact
  ``knn`` score ``(1 + cos) / 2``: a ``knn`` clause inside a ``bool`` admits ``k`` per shard
  (per segment on native engines; on 2.19's Lucene engine ``ef_search``), so only a top-K
  that is the whole query keeps its meaning as one ``knn`` clause.  A top-K ``match`` is
  always resolved so (OpenSearch has no top-K clause for text) and stands as its scored
  ``bool`` filtered to the ``ids`` found.

Every branch of the boolean tree carries ``_name`` (:func:`ebr.query.nodes.named_branches`), so
``matched_queries`` on a hit says which branches matched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError, UnsupportedError
from ebr.mappings.schema import Hnsw, Schema
from ebr.mappings.space import Space
from ebr.planning.query_vectors import Vectors, query_vector_values
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
    has_vector_match,
    is_top_k,
    named_branches,
    walk,
)
from ebr.query.printer import to_text
from ebr.stores.arguments import check_size
from ebr.stores.bm25 import K1
from ebr.stores.opensearch.versions import (
    BM25_WITHOUT_K1_FACTOR,
    MINIMUM,
    ServerVersion,
    require_supported,
)

Json = dict[str, Any]

# Scores must be >= 0 and a document without the vector would make cosineSimilarity throw.
_GUARDED_SCRIPT = "doc[params.field].size() == 0 ? 0 : " + Space.script_source()
_GUARDED_KNN_SCRIPT = "doc[params.field].size() == 0 ? 0 : " + Space.knn_script_source()
#: Hit order, as the local store orders: score, then static rank, then id.
ID_FIELD = "id"


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
    resolved: Mapping[NN | Match, Sequence[str]] | None = None,
    start: int = 0,
    tie_break: bool = False,
) -> CompiledSearch:
    """The ``_search`` body for an executable plan (radius NN already expanded).

    ``resolved``: the documents of top-K clauses found beforehand (:func:`compile_top_k`);
    every top-K ``match`` must be.
    ``start``: hits to skip (``from``).  ``tie_break``: order equal scores by static rank,
    then id, as the local store does (needs the ``id`` field of ebr's own indices)."""
    require_supported(version)
    check_size(size)
    check_size(start, "start")
    query, scores = _Compiler(schema, vectors, resolved or {}, version).clause(plan, "q", True)
    body: Json = {"size": size, "query": query if scores else _without_score(plan, query)}
    if start:
        body["from"] = start
    if tie_break:
        body["sort"] = [{"_score": "desc"}, {schema.rank_field: "desc"}, {ID_FIELD: "asc"}]
    if rescore:
        body["rescore"] = rescore
    return CompiledSearch(body, plan)


def compile_top_k(node: NN | Match, schema: Schema, vectors: Vectors, *,
                  version: ServerVersion = MINIMUM) -> Json:
    """The ``_search`` body finding a top-K clause's documents on its own: the ``k`` best
    among those its constraint admits, over the whole index (the coordinating node merges
    the shards' candidates), best first with ties to the lower id."""
    require_supported(version)
    if node.k is None:
        raise PlanError("only a top-K clause (:k) is resolved on its own")
    compiler = _Compiler(schema, vectors, {}, version)
    if type(node) is Match:
        clause = compiler.scored_match(node, None)
        if node.constraint is not None:
            clause = {"bool": {"must": [clause], "filter": [compiler.filter(node.constraint)]}}
    else:
        clause, _ = compiler._knn(node, None, True)
    return {"size": node.k, "query": clause, "_source": False,
            "sort": [{"_score": "desc"}, {ID_FIELD: "asc"}]}


def prerequisites(plan: Node) -> tuple[list[NN | Match], bool]:
    """What a plan's search needs before its main request, in one walk of the plan: its top-K
    clauses, each resolved on its own first (:func:`compile_top_k`; equal clauses once), and
    whether it scores text (BM25), which must see the whole index's term statistics
    (``search_type=dfs_query_then_fetch``), not each shard's own."""
    top_k: dict[NN | Match, None] = {}
    text = False
    for n in walk(plan):
        if type(n) is Match:
            text = True
        if is_top_k(n):
            top_k[n] = None  # type: ignore[index]  # is_top_k: an NN or a Match
    return list(top_k), text


def compile_filter(node: Node, schema: Schema) -> Json:
    """A term-only plan as an unnamed filter clause (``knn.filter``, candidates, store filters)."""
    if has_vector_match(node):
        raise PlanError("a filter cannot hold nn or within: " + to_text(node))
    if any(map(is_top_k, walk(node))):
        raise PlanError("a filter cannot hold a top-K clause: " + to_text(node))
    return _Compiler(schema, {}, {}).filter(node)


#: A hit's cosine to the query embedding, or null for a hit without the key's embedding.
_COSINE_SCRIPT = ("if (doc[params.field].size() == 0) { return null; } "
                  "return cosineSimilarity(params.query_value, doc[params.field]);")
#: The name of a key's cosine among a hit's ``fields``.
COSINE_FIELD = "ebr_cosine:"


def compile_cosine_fields(schema: Schema, vectors: Vectors) -> Json:
    """``script_fields`` returning each hit's cosine to ``vectors[key]`` per key (named
    :data:`COSINE_FIELD` + key): computed in the fetch phase for the returned hits only, in
    the same ``_search`` (the reranker's cosine feature without reading vectors back).
    Chosen over a request-level ``rescore``, which the store's tie-broken ``sort`` excludes
    and which would fold the cosine into the score rather than return it, and over
    ``docvalue_fields``, which a ``knn_vector`` field refuses (a 500 on 2.19 and 3.5)."""
    fields: Json = {}
    for key in vectors:
        if schema.key(key) is None:
            raise PlanError(f"unknown embedding key {key!r}")
        fields[COSINE_FIELD + key] = {"script": _script(
            schema.vector_field(key), query_vector_values(key, vectors, schema), _COSINE_SCRIPT)}
    return fields


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
                "script": _script(field, query_vector_values(key, {key: vector}, schema)),
            }},
            "query_weight": query_weight,
            "rescore_query_weight": rescore_query_weight,
            "score_mode": score_mode,
        },
    }


def _script(field: str, vector: list[float], source: str = _GUARDED_SCRIPT,
            branch: str | None = None) -> Json:
    """``branch``: the clause's branch name, as a parameter the script does not read.  It keeps
    two clauses of one query from being equal: Lucene 10 (OpenSearch 3.x) merges equal
    ``must`` clauses into one boosted clause, whose ``min_score`` then applies to the boosted
    score and admits documents outside the radius (measured on 3.5.0)."""
    params: Json = {"field": field, "query_value": vector}
    if branch is not None:
        params["branch"] = branch
    return {"source": source, "params": params}


class _Compiler:
    """One compilation: the schema and the query embeddings its clauses read."""

    __slots__ = ("resolved", "schema", "text_boost", "vectors")

    def __init__(self, schema: Schema, vectors: Vectors,
                 resolved: Mapping[NN | Match, Sequence[str]],
                 version: ServerVersion = MINIMUM) -> None:
        self.schema = schema
        self.vectors = vectors
        self.resolved = resolved
        # OpenSearch 2.x multiplies BM25 by (k1 + 1): divided out, so scores are the local store's
        self.text_boost = None if version >= BM25_WITHOUT_K1_FACTOR else 1.0 / (K1 + 1.0)

    def clause(self, node: Node, name: str | None, scoring: bool = False) -> tuple[Json, bool]:
        """Compile ``node``: its clause, and whether the clause scores (it holds a branch's nn
        or within, so it belongs in ``must``).

        ``name`` is the branch name (:func:`~ebr.query.nodes.named_branches`), or None inside a
        copied constraint or candidate set, where nothing scores.  ``scoring``: whether the
        clause stands where OpenSearch adds its score.  A clause that does not score comes out
        the same either way; where it stands in a scoring position its caller wraps it
        (:func:`_without_score`).  So one pass learns both what a clause is and where it goes,
        without walking subtrees twice."""
        compile_node = NODE_HANDLERS.get(type(node))
        if compile_node is None:
            raise UnsupportedError(f"the OpenSearch compiler cannot express {type(node).__name__}")
        return compile_node(self, node, name, scoring)

    def filter(self, node: Node) -> Json:
        """An unnamed clause: a constraint, a candidate set or a store filter."""
        return self.clause(node, None)[0]

    def _term(self, node: Term, name: str | None, scoring: bool) -> tuple[Json, bool]:
        body = {"value": node.value, "_name": name} if name else {"value": node.value}
        return {"term": {self.schema.term_field(node.namespace): body}}, False

    def _nothing(self, node: Nothing, name: str | None, scoring: bool) -> tuple[Json, bool]:
        return {"match_none": {"_name": name} if name else {}}, False

    def _and(self, node: And, name: str | None, scoring: bool) -> tuple[Json, bool]:
        clauses: Json = {}
        any_scores = False
        for i, operand in enumerate(node.operands):
            clause, scores = self.clause(operand, f"{name}.{i}" if name else None, scoring)
            clauses.setdefault("must" if scores else "filter", []).append(clause)
            any_scores = any_scores or scores
        return _bool(clauses, name), any_scores

    def _or(self, node: Or, name: str | None, scoring: bool) -> tuple[Json, bool]:
        if name is None and (terms := self._same_field_terms(node)) is not None:
            return terms, False
        operands = node.operands
        should: list[Json] = []
        term_only: list[int] = []  # positions of the operands that do not score
        for i, operand in enumerate(operands):
            clause, scores = self.clause(operand, f"{name}.{i}" if name else None, scoring)
            should.append(clause)
            if not scores:
                term_only.append(i)
        any_scores = len(term_only) < len(should)
        if scoring and any_scores:  # the operands' scores add up
            for i in term_only:
                should[i] = _without_score(operands[i], should[i])
        return _bool({"should": should, "minimum_should_match": 1}, name), any_scores

    def _difference(self, node: Difference, name: str | None, scoring: bool) -> tuple[Json, bool]:
        first, *rest = node.operands
        first_clause, any_scores = self.clause(first, f"{name}.0" if name else None, scoring)
        clauses: Json = {"must" if any_scores else "filter": [first_clause]}
        must_not = clauses["must_not"] = []
        for i, operand in enumerate(rest, 1):
            clause, scores = self.clause(operand, f"{name}.{i}" if name else None)
            must_not.append(clause)
            any_scores = any_scores or scores
        return _bool(clauses, name), any_scores

    def _same_field_terms(self, node: Or) -> Json | None:
        """An unnamed ``or`` of terms in one namespace as a single ``terms`` query (probe
        lists, location lists): smaller and faster than a ``should`` of ``term`` clauses."""
        operands = node.operands
        if not operands or type(operands[0]) is not Term:
            return None
        namespace = operands[0].namespace
        values = [op.value for op in operands if type(op) is Term and op.namespace == namespace]
        if len(values) < len(operands):
            return None
        return {"terms": {self.schema.term_field(namespace): values}}

    def _match(self, node: Match, name: str | None, scoring: bool) -> tuple[Json, bool]:
        if node.k is None:
            return self.scored_match(node, name), name is not None
        ids = self.resolved.get(node)
        if ids is None:
            raise PlanError("a top-K match must be resolved on its own first "
                            "(compile_top_k), then passed in resolved")
        body: Json = {"must": [self.scored_match(node, None)], "filter": [_ids(ids)]}
        return _bool(body, name), name is not None

    def scored_match(self, node: Match, name: str | None) -> Json:
        """The documents holding at least ``minimum_should_match`` of the terms, scored by
        BM25 over the namespace's scored field."""
        field = self.schema.scored_field(node.namespace)
        body: Json = {"should": [{"term": {field: v}} for v in node.values],
                      "minimum_should_match": node.minimum_should_match}
        if self.text_boost is not None:
            body["boost"] = self.text_boost
        return _bool(body, name)

    def _within(self, node: Within, name: str | None, scoring: bool) -> tuple[Json, bool]:
        field = self.schema.vector_field(node.key)
        inner: list[Json] = [{"exists": {"field": field}}]
        candidates = node.candidates
        parts = candidates.operands if isinstance(candidates, And) else (candidates,)
        inner += [self.filter(c) for c in parts if c is not None]
        body: Json = {
            "query": {"bool": {"filter": inner}},
            "script": _script(field, query_vector_values(node.key, self.vectors, self.schema),
                              branch=name),
            "min_score": Space.radius_to_script_min_score(node.radius),
        }
        if name:
            body["_name"] = name
        return {"script_score": body}, name is not None

    def _knn(self, node: NN, name: str | None, scoring: bool) -> tuple[Json, bool]:
        if node.k is None:
            raise PlanError("radius-mode nn must be planned (probe clusters chosen) before "
                            "compiling; use ebr.planning.planner.plan")
        spec = self.schema.key(node.key)
        if spec is None:
            raise PlanError(f"unknown embedding key {node.key!r}")
        if self.resolved and (ids := self.resolved.get(node)) is not None:
            return self._resolved(node, ids, name), name is not None
        body: Json = {"vector": query_vector_values(node.key, self.vectors, self.schema),
                      "k": node.k}
        if node.constraint is not None:
            body["filter"] = self.filter(node.constraint)
        if isinstance(spec.ann, Hnsw):
            # :nprobe has no HNSW counterpart; the breadth is ef_search, at least k.
            body["method_parameters"] = {"ef_search": max(spec.ann.ef_search, node.k)}
        elif node.nprobe is not None:
            body["method_parameters"] = {"nprobes": node.nprobe}
        if name:
            body["_name"] = name
        return {"knn": {self.schema.vector_field(node.key): body}}, name is not None


    def _resolved(self, node: NN, ids: Sequence[str], name: str | None) -> Json:
        field = self.schema.vector_field(node.key)
        body: Json = {
            "query": _ids(ids),
            "script": _script(field, query_vector_values(node.key, self.vectors, self.schema),
                              _GUARDED_KNN_SCRIPT, name),
        }
        if name:
            body["_name"] = name
        return {"script_score": body}


#: How each node type compiles: (compiler, node, branch name, scoring) -> (clause, scores).
NODE_HANDLERS: dict[type[Node], Callable[[_Compiler, Any, str | None, bool], tuple[Json, bool]]] = {
    Term: _Compiler._term,
    And: _Compiler._and,
    Or: _Compiler._or,
    Difference: _Compiler._difference,
    Nothing: _Compiler._nothing,
    Within: _Compiler._within,
    NN: _Compiler._knn,
    Match: _Compiler._match,
}


def _ids(ids: Sequence[str]) -> Json:
    """The documents a top-K clause resolved to.  None is not an empty ``ids`` query: that
    becomes ``match_none`` when the request is parsed, and takes every named clause beside
    it along (their documents would no longer report them in ``matched_queries``)."""
    if not ids:
        return {"bool": {"must_not": [{"match_all": {}}]}}
    return {"ids": {"values": list(ids)}}


def _bool(clauses: Json, name: str | None) -> Json:
    if name:
        clauses["_name"] = name
    return {"bool": clauses}


def _without_score(node: Node, clause: Json) -> Json:
    """A term-only ``clause`` for where OpenSearch would add its score: a ``term`` or a
    ``should`` is wrapped in ``bool.filter`` so that it matches without scoring (no BM25
    noise); the other term-only clauses (``filter``, ``must_not``, ``match_none``) never score."""
    return {"bool": {"filter": [clause]}} if isinstance(node, Term | Or) else clause
