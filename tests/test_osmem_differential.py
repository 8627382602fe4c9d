"""Differential test on osmem-server: the compiled boolean structure selects exactly the
documents the reference evaluator selects, and hits name exactly the branches they match.

osmem cannot run ``knn`` or ``cosineSimilarity``, so each vector clause of the compiled body
is replaced by ``bool.filter[<the clause's own compiled filter>, ids(<exact set>)]``: the
compiled candidate filters (``exists``, probe cluster terms, pushed-down constraints), every
``bool``, ``minimum_should_match``, ``must_not`` and ``_name`` still run on the emulator;
only the cosine arithmetic is done by the reference.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings

from ebr import (
    NN,
    CentroidQuantizer,
    Match,
    Node,
    Within,
    compile_filter,
    compile_search,
    named_branches,
    parse,
    plan,
    to_text,
)
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body
from ebr.query.nodes import walk
from ebr.stores.reference import ReferenceDocument, cosine_distance, reference_matches
from support.osmem import load_documents, search_hits, search_ids
from support.strategies import DIM, KEY, NAMESPACES, World, expressions, worlds

SCHEMA = Schema.create("diff", tuple(Namespace(n) for n in NAMESPACES),
                       (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=4)),))
_counter = itertools.count()


def _mappings(schema: Schema = SCHEMA) -> dict[str, Any]:
    mappings = copy.deepcopy(index_body(schema)["mappings"])
    # osmem has no knn_vector; a float array keeps `exists` on the vector field meaningful.
    mappings["properties"]["vectors"]["properties"] = {k.name: {"type": "float"}
                                                       for k in schema.keys}
    # ... nor custom analyzers: a keyword sub-field holds the same terms as the scored text
    # sub-field (one token per term), so `match` selects the same documents.
    for field in mappings["properties"]["terms"]["properties"].values():
        field["fields"] = {name: {"type": "keyword"} for name in field["fields"]}
    return mappings


def _resolved(executable: Node, world: World) -> dict[NN | Match, list[str]]:
    """Every top-K match's documents, as the store finds them beforehand (exactly here)."""
    return {n: _exact_set(n, world) for n in walk(executable) if type(n) is Match
            and n.k is not None}


def _source(doc: ReferenceDocument, key: str = KEY) -> dict[str, Any]:
    terms: dict[str, list[str]] = {}
    clusters: dict[str, str] = {}
    for t in sorted(doc.terms):
        ns, _, value = t.partition(":")
        if ns == key + ".cluster":
            clusters[key] = value
        else:
            terms.setdefault(ns, []).append(value)
    source: dict[str, Any] = {"terms": terms, "clusters": clusters}
    if key in doc.embeddings:
        source["vectors"] = {key: [float(x) for x in doc.embeddings[key]]}
    return source


def _exact_set(node: Node, world: World) -> list[str]:
    if isinstance(node, Within):  # the radius over every document; candidates stay compiled
        q = world.vectors[node.key]
        return sorted(d.id for d in world.docs if node.key in d.embeddings
                      and cosine_distance(q, d.embeddings[node.key]) <= node.radius)
    return sorted(reference_matches(node, world.docs, world.vectors, path_context=False))


def _replace_vector_clauses(query: Any, branches: dict[str, Node], world: World) -> Any:
    if isinstance(query, list):
        return [_replace_vector_clauses(q, branches, world) for q in query]
    if not isinstance(query, dict):
        return query
    if "script_score" in query:
        clause = query["script_score"]
        name = clause["_name"]
        return {"bool": {"filter": [clause["query"],
                                    {"ids": {"values": _exact_set(branches[name], world)}}],
                         "_name": name}}
    if "knn" in query:
        (clause,) = query["knn"].values()
        name = clause["_name"]
        parts = [clause["filter"]] if "filter" in clause else []
        parts.append({"ids": {"values": _exact_set(branches[name], world)}})
        return {"bool": {"filter": parts, "_name": name}}
    return {k: _replace_vector_clauses(v, branches, world) for k, v in query.items()}


def _filters(executable: Node) -> list[Node]:
    found: list[Node] = []
    for n in walk(executable):
        if isinstance(n, NN) and n.constraint is not None:
            found.append(n.constraint)
        elif isinstance(n, Within) and n.candidates is not None:
            found.append(n.candidates)
    return found


def _under_must_not(body: Any, inside: bool = False) -> set[str]:
    """Names of clauses inside a must_not (osmem does not report those)."""
    found: set[str] = set()
    if isinstance(body, list):
        for b in body:
            found |= _under_must_not(b, inside)
    elif isinstance(body, dict):
        if inside and isinstance(body.get("_name"), str):
            found.add(body["_name"])
        for k, v in body.items():
            found |= _under_must_not(v, inside or k == "must_not")
    return found


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(expressions(), worlds(max_docs=10))
def test_compiled_structure_matches_reference(osmem_client: Any, expr: Node, world: World) -> None:
    executable = plan(expr, world.vectors, world.quantizers, SCHEMA)
    expected = reference_matches(executable, world.docs, world.vectors, path_context=False)

    compiled = compile_search(executable, SCHEMA, world.vectors, size=100,
                              resolved=_resolved(executable, world))
    branches = named_branches(executable)
    query = _replace_vector_clauses(compiled.body["query"], branches, world)

    index = f"diff-{next(_counter)}"
    load_documents(osmem_client, index, _mappings(), [(d.id, _source(d)) for d in world.docs])
    try:
        hits = search_hits(osmem_client, index, query, size=100)
        # Each pushed-down constraint / candidate set, compiled alone as the filter it becomes
        # inside knn or script_score, selects what the reference says: the exact ids above
        # would hide a filter that lets too much through.
        for inner in _filters(executable):
            got = search_ids(osmem_client, index, compile_filter(inner, SCHEMA), size=100)
            assert got == reference_matches(inner, world.docs, world.vectors), to_text(inner)
    finally:
        osmem_client.indices.delete(index=index)
    assert {h["_id"] for h in hits} == expected

    # Every hit names exactly the branches it satisfies (outside must_not, see above).
    hidden = _under_must_not(query)
    per_branch = {name: reference_matches(node, world.docs, world.vectors, path_context=False)
                  for name, node in branches.items() if name not in hidden}
    for hit in hits:
        reported = set(hit.get("matched_queries", []))
        should = {name for name, ids in per_branch.items() if hit["_id"] in ids}
        assert reported - hidden == should, hit["_id"]


def test_mapping_used_here_is_the_real_one_but_for_vectors_and_scoring() -> None:
    real = index_body(SCHEMA)["mappings"]
    ours = _mappings()
    for ns in NAMESPACES:
        mine, theirs = real["properties"]["terms"]["properties"][ns], ours["properties"][
            "terms"]["properties"][ns]
        assert mine["type"] == theirs["type"] == "keyword"
        assert mine["fields"].keys() == theirs["fields"].keys()
    assert real["properties"]["clusters"] == ours["properties"]["clusters"]
    assert real["dynamic"] == ours["dynamic"] == "strict"


def test_paper_hybrid_query_names_the_matching_branches(osmem_client: Any) -> None:
    """EBR §4.2.1 on a hand-made corpus: the misspelled 'john smithe' finds John Smith in
    Seattle through the nn branch only; expected ids and branch names written out by hand."""
    schema = Schema.create("people", (Namespace("text"), Namespace("location")),
                           (EmbeddingKey("model-141795009", 2, CoarseQuantizerSpec(nlist=2)),))
    key = "model-141795009"
    near, far = np.array([1.0, 0.1]), np.array([0.0, 1.0])
    people = [  # id, terms, embedding
        ("smith-seattle", {"text:john", "text:smith", "location:seattle"}, near),
        ("smithe-menlo", {"text:john", "text:smithe", "location:menlo_park"}, far),
        ("smith-boston", {"text:john", "text:smith", "location:boston"}, near),
        ("jane-seattle", {"text:jane", "location:seattle"}, far),
    ]
    quantizer = CentroidQuantizer(np.eye(2, dtype=np.float32))
    docs = [ReferenceDocument(i, frozenset(t | {f"{key}.cluster:{int(quantizer.assign(e[None])[0])}"}),
                     {key: e}) for i, t, e in people]
    world = World(docs, {key: np.array([1.0, 0.0], np.float32)}, quantizer)
    text = ("(and (or (term location:seattle) (term location:menlo_park)) "
            "(or (and (term text:john) (term text:smithe)) "
            "(nn model-141795009 :radius 0.24 :nprobe 1)))")
    executable = plan(parse(text, schema), world.vectors, {key: quantizer}, schema)
    branches = named_branches(executable)
    query = _replace_vector_clauses(compile_search(executable, schema, world.vectors).body[
        "query"], branches, world)
    load_documents(osmem_client, "paper", _mappings(schema), [(d.id, _source(d, key))
                                                               for d in docs])
    try:
        hits = {h["_id"]: set(h.get("matched_queries", []))
                for h in search_hits(osmem_client, "paper", query, size=10)}
    finally:
        osmem_client.indices.delete(index="paper")
    # q.0 = the location or; q.1 = (or terms nn); q.1.0 = the john+smithe and; q.1.1 = nn
    assert hits == {
        "smith-seattle": {"q", "q.0", "q.0.0", "q.1", "q.1.0.0", "q.1.1"},
        "smithe-menlo": {"q", "q.0", "q.0.1", "q.1", "q.1.0", "q.1.0.0", "q.1.0.1"},
    }
