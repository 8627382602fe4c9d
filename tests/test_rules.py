"""Each rewrite rule on hand-written cases (the properties are in test_rule_properties)."""

from __future__ import annotations

import numpy as np
import pytest

from ebr import NN, And, Nothing, Or, PlanError, Term, Within, parse, to_text
from ebr.planning.planner import logical_plan, plan
from ebr.planning.rules.dedupe import dedupe
from ebr.planning.rules.expand_nn import expand_nn
from ebr.planning.rules.flatten import flatten
from ebr.planning.rules.fold import fold
from ebr.planning.rules.pushdown import push_down
from ebr.quantization.coarse import CentroidQuantizer
from ebr.query.nodes import Difference
from ebr.stores.reference import ReferenceDocument, reference_matches

A, B, C = Term("a", "1"), Term("b", "2"), Term("c", "3")


def p(text: str) -> str:
    return to_text(logical_plan(parse(text)))


@pytest.mark.parametrize(("rule", "before", "after"), [
    (flatten, And((A, And((B, C)))), And((A, B, C))),
    (flatten, Or((Or((A,)), B)), Or((A, B))),
    (flatten, And((Or((A, B)),)), Or((A, B))),
    (flatten, And((A, Or((B, C)))), And((A, Or((B, C))))),
    (flatten, Difference((Difference((A, B)), C)), Difference((A, B, C))),
    (flatten, Difference((A, Difference((B, C)))), Difference((A, Difference((B, C))))),
    (dedupe, Or((A, B, A)), Or((A, B))),
    (dedupe, And((A, A)), A),
    (dedupe, Difference((A, B, B)), Difference((A, B))),
    (fold, And((A, Nothing())), Nothing()),
    (fold, Or((Nothing(), A, Nothing())), A),
    (fold, Or((Nothing(),)), Nothing()),
    (fold, Difference((Nothing(), A)), Nothing()),
    (fold, Difference((A, B, A)), Nothing()),
    (fold, Difference((A, Nothing())), A),
    (fold, NN("m", k=3, constraint=Nothing()), Nothing()),
    (fold, Within("m", 0.2, Nothing()), Nothing()),
])
def test_rule_cases(rule: object, before: object, after: object) -> None:
    assert rule(before) == after  # type: ignore[operator]


def test_pushdown_collects_and_siblings_along_the_path() -> None:
    assert p("(and (term a:1) (or (term b:2) (and (term c:3) (nn m :k 5))))") == (
        "(and (term a:1) (or (term b:2) (and (term c:3) (nn m :k 5 :where "
        "(and (term a:1) (term c:3))))))")


def test_pushdown_ignores_or_siblings_and_nn_siblings() -> None:
    assert p("(or (term a:1) (nn m :k 5))") == "(or (term a:1) (nn m :k 5))"
    assert p("(and (nn m :k 5) (nn n :radius 0.2))") == "(and (nn m :k 5) (nn n :radius 0.2))"


def test_pushdown_takes_the_terms_a_sibling_implies() -> None:
    assert p("(and (nn m :k 1) (or (term a:1) (and (term a:2) (nn n :radius 0.1))))") == (
        "(and (nn m :k 1 :where (or (term a:1) (term a:2))) (or (term a:1) (and (term a:2) "
        "(nn n :radius 0.1 :where (term a:2)))))")
    # an or with a branch that implies nothing implies nothing
    assert p("(and (nn m :k 1) (or (term a:1) (nn n :radius 0.1)))") == (
        "(and (nn m :k 1) (or (term a:1) (nn n :radius 0.1)))")


def test_topk_context_does_not_depend_on_nesting() -> None:
    """Found by hypothesis: flattening must not change which documents top-K ranks."""
    docs = [
        ReferenceDocument("near", frozenset(), {"m": np.array([1.0, 0.0])}),
        ReferenceDocument("far", frozenset({"a:1"}), {"m": np.array([0.0, 1.0])}),
    ]
    q = {"m": np.array([0.0, 1.0])}
    nested = parse("(and (nn m :k 1) (and (term a:1) (nn m :radius 0.5 :exact true)))")
    flat = parse("(and (nn m :k 1) (term a:1) (nn m :radius 0.5 :exact true))")
    assert reference_matches(nested, docs, q) == reference_matches(flat, docs, q) == {"far"}
    assert reference_matches(push_down(nested), docs, q, path_context=False) == {"far"}


def test_pushdown_enters_the_first_operand_of_difference_only() -> None:
    assert p("(and (term a:1) (difference (nn m :k 2) (term b:2)))") == (
        "(and (term a:1) (difference (nn m :k 2 :where (term a:1)) (term b:2)))")
    # The subtracted side is not monotone: its nn sees only its own and-siblings.
    assert p("(and (term a:1) (difference (term b:2) (and (term c:3) (nn m :k 2))))") == (
        "(and (term a:1) (difference (term b:2) (and (term c:3) (nn m :k 2 :where "
        "(term c:3)))))")


def test_topk_in_a_subtracted_operand_is_not_narrowed_by_outer_constraints() -> None:
    """(and a:1 (difference b:2 (nn m :k 1))): the nearest document overall is removed, even
    though it lacks a:1 — pushing a:1 into the subtracted nn would remove another one."""
    docs = [
        ReferenceDocument("near", frozenset({"b:2"}), {"m": np.array([1.0, 0.0])}),
        ReferenceDocument("far", frozenset({"a:1", "b:2"}), {"m": np.array([0.0, 1.0])}),
    ]
    q = {"m": np.array([1.0, 0.0])}
    expr = parse("(and (term a:1) (difference (term b:2) (nn m :k 1)))")
    assert reference_matches(expr, docs, q) == {"far"}
    assert reference_matches(push_down(expr), docs, q, path_context=False) == {"far"}


def test_expand_radius_into_probes_and_within() -> None:
    quantizer = CentroidQuantizer(np.eye(3, dtype=np.float32))
    vec = {"m": np.array([0.9, 0.3, 0.1], np.float32)}
    out = expand_nn(logical_plan(parse("(and (term a:1) (nn m :radius 0.3 :nprobe 2))")), vec,
                    {"m": quantizer})
    assert to_text(out) == ("(and (term a:1) (within m 0.3 :over (and (or (term m.cluster:0) "
                            "(term m.cluster:1)) (term a:1))))")
    exact = expand_nn(parse("(nn m :radius 0.3 :exact true)"), vec, {})
    assert exact == Within("m", 0.3, None)


def test_expand_clamps_nprobe_to_nlist_and_uses_the_schema_default() -> None:
    from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Schema

    quantizer = CentroidQuantizer(np.eye(3, dtype=np.float32))
    vec = {"m": np.array([0.9, 0.3, 0.1], np.float32)}
    out = plan(parse("(nn m :radius 0.3 :nprobe 50)"), vec, {"m": quantizer})
    assert to_text(out).count("m.cluster:") == 3
    schema = Schema.create("x", keys=(EmbeddingKey("m", 3, CoarseQuantizerSpec(default_nprobe=1)),))
    out = plan(parse("(nn m :radius 0.3)"), vec, {"m": quantizer}, schema)
    assert to_text(out) == "(within m 0.3 :over (term m.cluster:0))"


def test_expand_needs_a_vector_and_a_quantizer() -> None:
    with pytest.raises(PlanError, match="no query embedding for key 'm'"):
        plan(parse("(nn m :radius 0.3)"), {}, {})
    with pytest.raises(PlanError, match="no coarse quantizer for key 'm'"):
        plan(parse("(nn m :radius 0.3)"), {"m": np.ones(3, np.float32)}, {})
    # top-K and exact radius need no quantizer
    plan(parse("(or (nn m :k 3) (nn m :radius 0.2 :exact true))"), {}, {})


def test_probe_order_is_nearest_first_with_deterministic_ties() -> None:
    q = CentroidQuantizer(np.array([[1, 0], [0, 1], [1, 0], [-1, 0]], np.float32))
    assert q.probe(np.array([1, 0], np.float32), 3) == [0, 2, 1]
    assert q.probe(np.array([1, 0], np.float32), 10) == [0, 2, 1, 3]
    assert q.assign(np.array([[0, 1], [-1, 0.1]], np.float32)).tolist() == [1, 3]


def test_difference_of_equal_operands_holding_top_k_is_not_folded() -> None:
    """The first operand ranks within the outer context, the subtracted copy over all."""
    docs = [
        ReferenceDocument("d0", frozenset({"t:1"}), {"m": np.array([0.0, 1.0])}),
        ReferenceDocument("d1", frozenset(), {"m": np.array([1.0, 0.0])}),
    ]
    q = {"m": np.array([1.0, 0.0])}
    expr = parse("(and (term t:1) (difference (nn m :k 1) (nn m :k 1)))")
    assert reference_matches(expr, docs, q) == {"d0"}
    assert reference_matches(logical_plan(expr), docs, q, path_context=False) == {"d0"}
    assert fold(parse("(difference (term t:1) (term t:1))")) == Nothing()


def test_probe_ties_at_the_cut_off_go_to_the_lowest_ids() -> None:
    q = CentroidQuantizer(np.tile(np.eye(4, dtype=np.float32), (50, 1)))  # 50 copies of e_i
    assert q.probe(np.array([1, 0, 0, 0], np.float32), 3) == [0, 4, 8]


def test_probing_ignores_the_query_length() -> None:
    q = CentroidQuantizer(np.array([[1, 0], [0.5, 0.5]], np.float32))  # centroids of unequal norm
    v = np.array([0.6, 0.4], np.float32)
    assert q.probe(v, 1) == q.probe(10 * v, 1) == [1]
    assert q.assign(np.stack([v, 10 * v])).tolist() == [1, 1]


def test_wrong_query_dimensions_are_plan_errors() -> None:
    from ebr import compile_search
    from ebr.mappings import EmbeddingKey, Schema

    schema = Schema.create("x", keys=(EmbeddingKey("m", 3),))
    quantizer = CentroidQuantizer(np.eye(3, dtype=np.float32))
    two_d = {"m": np.ones(2, np.float32)}
    with pytest.raises(PlanError, match="dimension 2; the schema says 3"):
        plan(parse("(nn m :radius 0.3)"), two_d, {"m": quantizer}, schema)
    with pytest.raises(PlanError, match="coarse quantizer for key 'm' has dimension 3"):
        plan(parse("(nn m :radius 0.3)"), two_d, {"m": quantizer})
    with pytest.raises(PlanError, match="dimension 2; the schema says 3"):
        compile_search(plan(parse("(nn m :k 3)"), two_d, {}), schema, two_d)
    with pytest.raises(PlanError, match="finite and non-zero"):
        plan(parse("(nn m :radius 0.3)"), {"m": np.array([0, np.nan, 1])}, {"m": quantizer})


def test_plan_size_is_limited() -> None:
    from ebr import Limits

    quantizer = CentroidQuantizer(np.eye(3, dtype=np.float32))
    text = "(or " + " ".join(f"(nn m :radius 0.{i} :nprobe 3)" for i in range(1, 9)) + ")"
    vec = {"m": np.ones(3, np.float32)}
    plan(parse(text), vec, {"m": quantizer})
    with pytest.raises(PlanError, match="more than the limit of 20"):
        plan(parse(text), vec, {"m": quantizer}, limits=Limits(max_plan_nodes=20))


def test_assign_in_chunks_equals_assign_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import ebr.quantization.coarse

    rng = np.random.default_rng(0)
    q = CentroidQuantizer(rng.standard_normal((7, 5)).astype(np.float32))
    rows = rng.standard_normal((1000, 5)).astype(np.float32)
    whole = q.assign(rows)
    stores = q.assign(ebr.quantization.coarse.unit_rows(rows))  # what the stores' assign is
    monkeypatch.setattr(ebr.quantization.coarse, "ASSIGN_CHUNK_FLOATS", 20)  # 2 rows per chunk
    assert q.assign(rows).tolist() == whole.tolist()
    assert q.assign(rows[3]).tolist() == [whole[3]]
    assigned = ebr.quantization.coarse.assign(q, rows)
    assert assigned.dtype == np.int32 and assigned.tolist() == stores.tolist()
    assert ebr.quantization.coarse.assign(q, rows[:0]).shape == (0,)


@pytest.mark.parametrize("vector", [
    [0.5, -1.0, 2.0], [0.0, 0.0, 1e-45], [3e38, 3e38, 3e38], [0.0, 0.0, 0.0], [1.0, np.nan, 0.0],
    [np.inf, 1.0, 0.0], [-np.inf, np.inf, 0.0], [1.0, 2.0], [[1.0, 2.0, 3.0]], [1e-46, 0.0, 0.0],
])
def test_query_vector_values_accepts_and_refuses_as_query_vector(vector: list[float]) -> None:
    from ebr.mappings import EmbeddingKey, Schema
    from ebr.planning.query_vectors import query_vector, query_vector_values

    schema = Schema.create("x", keys=(EmbeddingKey("m", 3),))
    vectors = {"m": np.array(vector, np.float64)}

    def outcome(fn: object) -> object:
        try:
            return list(fn("m", vectors, schema))  # type: ignore[operator]
        except PlanError as err:
            return str(err)

    assert outcome(query_vector_values) == outcome(query_vector)
