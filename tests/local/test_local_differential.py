"""Differential tests: the local store returns exactly what the reference evaluator returns
for random plans over random corpora, and every hit names exactly the branches it
satisfies, with the distances and probe ranks the reference computes."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_corpus import expected_score, histories, world_store

from ebr import NN, And, Match, Or, Term, Within, named_branches, plan
from ebr.mappings.schema import cluster_namespace
from ebr.query.nodes import Node, subtracted
from ebr.stores.local import execution
from ebr.stores.reference import cosine_distance, reference_bm25, reference_matches
from support.strategies import KEY, NAMESPACES, VALUES, World, expressions, worlds

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
MORE = settings(SETTINGS, max_examples=300)
#: The cost of a gathered row against a scanned one, as the probing clauses weigh their two
#: ways of reading clusters: never scan, the store's own, always scan.
_GATHER_COSTS = st.sampled_from([0, execution.GATHER_COST, 10**9])


def _cluster(world: World, doc_id: str) -> int | None:
    doc = next(d for d in world.docs if d.id == doc_id)
    return next((int(t.partition(":")[2]) for t in doc.terms
                 if t.startswith(cluster_namespace(KEY) + ":")), None)


@MORE
@given(expressions(), worlds(), st.data())
def test_store_matches_reference(expr: Node, world: World, data: st.DataObject) -> None:
    ranks = {d.id: data.draw(st.sampled_from([0.0, 1.0, 2.5]), label=f"rank {d.id}")
             for d in world.docs}
    history = data.draw(histories(len(world.docs)), label="history")
    gather = data.draw(_GATHER_COSTS, label="gather cost")
    with world_store(world, ranks, history) as store, \
            mock.patch.object(execution, "GATHER_COST", gather):
        # Precondition: the store assigned exactly the world's cluster terms.
        stored = store.get_documents([d.id for d in world.docs])
        for doc, got in zip(world.docs, stored, strict=True):
            assert got is not None
            assert got.terms.get(cluster_namespace(KEY), ()) == (
                () if _cluster(world, doc.id) is None else (str(_cluster(world, doc.id)),))

        executable = plan(expr, world.vectors, store.quantizers, store.schema)
        expected = reference_matches(executable, world.docs, world.vectors, path_context=False)
        result = store.search(executable, world.vectors, size=100)

    assert {h.id for h in result.hits} == expected
    assert result.stats.total == len(expected)

    # Each hit names exactly the branches the reference says it satisfies.
    branches = named_branches(executable)
    per_branch = {name: reference_matches(node, world.docs, world.vectors, path_context=False)
                  for name, node in branches.items()}
    docs = {d.id: d for d in world.docs}
    for hit in result.hits:
        assert set(hit.branches) == {n for n, ids in per_branch.items() if hit.id in ids}
        vector_names = {n for n in hit.branches if isinstance(branches[n], NN | Within)}
        assert {c.branch for c in hit.clauses} == vector_names
        unscored = subtracted(executable)
        assert {t.branch for t in hit.texts} == {
            n for n in hit.branches
            if isinstance(branches[n], Match) and id(branches[n]) not in unscored}
        for text in hit.texts:
            node = branches[text.branch]
            assert isinstance(node, Match)
            truth = reference_bm25(world.docs, node.namespace, node.values)[hit.id]
            assert math.isclose(text.score, truth, rel_tol=1e-9, abs_tol=1e-12)
        for clause in hit.clauses:
            truth = cosine_distance(world.vectors[KEY], docs[hit.id].embeddings[KEY])
            assert math.isclose(clause.distance, truth, abs_tol=1e-6)
            node = branches[clause.branch]
            if isinstance(node, Within) and node.candidates is not None and _probes(node):
                assert clause.probe_rank == _probes(node).index(_cluster(world, hit.id))
            else:
                assert clause.probe_rank is None

    # First-stage order: score (as defined per document), then rank, then id.
    for hit in result.hits:
        want = expected_score(executable, docs[hit.id], world.docs, world.vectors)
        assert math.isclose(hit.score, want, abs_tol=1e-6), hit.id
        assert hit.rank == ranks[hit.id]
    keys = [(-h.score, -h.rank, h.id) for h in result.hits]
    assert keys == sorted(keys)


def _probes(node: Within) -> list[int]:
    """The probe clusters the planner put first among the candidates."""
    ns = cluster_namespace(KEY)
    assert node.candidates is not None
    parts = node.candidates.operands if isinstance(node.candidates, And) else (node.candidates,)
    for part in parts:
        terms = part.operands if isinstance(part, Or) else (part,)
        if all(isinstance(t, Term) and t.namespace == ns for t in terms):
            return [int(t.value) for t in terms]  # type: ignore[attr-defined]
    return []


@SETTINGS
@given(expressions(), worlds(), st.integers(0, 12))
def test_size_cuts_the_full_order(expr: Node, world: World, size: int) -> None:
    with world_store(world) as store:
        executable = plan(expr, world.vectors, store.quantizers, store.schema)
        full = store.search(executable, world.vectors, size=100)
        cut = store.search(executable, world.vectors, size=size)
    assert cut.hits == full.hits[:size]
    assert cut.stats.total == full.stats.total


_constraint = st.one_of(st.none(), st.builds(Term, st.sampled_from(NAMESPACES),
                                             st.sampled_from(VALUES)))


@SETTINGS
@given(worlds(), st.integers(1, 5), st.integers(1, 4), _constraint, _GATHER_COSTS,
       st.data())
def test_probed_top_k_is_exact_over_the_probed_clusters(
        world: World, k: int, nprobe: int, constraint: Node | None, gather: int,
        data: st.DataObject) -> None:
    """With probing forced (no exact threshold), top-K returns the k nearest among the
    admitted documents in the nprobe nearest clusters, or falls back to exact when those
    hold fewer than k; whichever way the clusters are read (bitmap or scan, reported)."""
    node = NN(KEY, k=k, nprobe=nprobe, constraint=constraint)
    history = data.draw(histories(len(world.docs)), label="history")
    with world_store(world, history=history, exact_threshold=0) as store, \
            mock.patch.object(execution, "GATHER_COST", gather):
        result = store.search(node, world.vectors, size=100)
    probes = world.quantizer.probe(world.vectors[KEY], nprobe)
    admitted = reference_matches(constraint, world.docs, world.vectors) if constraint else {
        d.id for d in world.docs}
    admitted = {i for i in admitted if KEY in next(d for d in world.docs if d.id == i).embeddings}
    probed = {i for i in admitted if _cluster(world, i) in probes}
    pool = probed if len(probed) >= k else admitted
    nearest = sorted((cosine_distance(world.vectors[KEY], d.embeddings[KEY]), d.id)
                     for d in world.docs if d.id in pool)[:k]
    assert {h.id for h in result.hits} == {i for _, i in nearest}
    (choice,) = result.stats.topk
    assert choice.strategy == ("probe" if len(probed) >= k and len(admitted) > 0 else "exact")
    if choice.strategy == "probe":
        assert choice.nprobe == nprobe
        for hit in result.hits:
            assert hit.clauses[0].probe_rank == probes.index(_cluster(world, hit.id))


def test_exact_ties_at_the_radius_decide_like_the_reference() -> None:
    """Distances that fall exactly on the radius (60 degrees: 1 - cos = 0.5 up to rounding)
    are decided by the reference's float64 formula, not by the float32 screen."""
    from ebr.quantization.coarse import CentroidQuantizer
    from ebr.stores.reference import ReferenceDocument

    vectors = [[1, 1, 0], [0, 1, 1], [1, 0, 1], [0.5, 0.5, 0], [-1, 0, 0], [0, 0, 1]]
    docs = [ReferenceDocument(f"d{i}", frozenset(), {KEY: np.array(v, np.float32)})
            for i, v in enumerate(vectors)]
    q = np.array([1, 1, 0], np.float32)
    world = World(docs, {KEY: q / np.linalg.norm(q)}, CentroidQuantizer(np.eye(3)))
    with world_store(world) as store:
        for radius in (0.0, 0.5, 1.0, 1.5, 2.0):
            node = Within(KEY, radius)
            want = reference_matches(node, docs, world.vectors)
            assert {h.id for h in store.search(node, world.vectors, 10).hits} == want, radius
