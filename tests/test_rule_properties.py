"""Property tests: every rewrite rule preserves the reference evaluator's result exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ebr.planning.planner import logical_plan, plan
from ebr.planning.rules.dedupe import dedupe
from ebr.planning.rules.expand_nn import expand_nn
from ebr.planning.rules.flatten import flatten
from ebr.planning.rules.fold import fold
from ebr.planning.rules.pushdown import push_down
from ebr.planning.rules.simplify import simplify
from ebr.query.nodes import NN, Difference, Match, Node, walk
from ebr.stores.reference import reference_matches
from support.strategies import World, expressions, worlds

RULES = [flatten, dedupe, fold, push_down, simplify, logical_plan]


@settings(max_examples=300, deadline=None)
@given(expressions(), worlds(), st.sampled_from(RULES))
def test_each_rule_preserves_results(expr: Node, world: World, rule: object) -> None:
    expected = reference_matches(expr, world.docs, world.vectors)
    assert reference_matches(rule(expr), world.docs, world.vectors) == expected  # type: ignore[operator]


@settings(max_examples=300, deadline=None)
@given(expressions(), worlds())
def test_pushdown_materialises_the_path_context(expr: Node, world: World) -> None:
    """A store sees one NN node at a time: after push-down its constraint alone must give
    what the path from the root admits (top-K mode's definition)."""
    expected = reference_matches(expr, world.docs, world.vectors, path_context=True)
    pushed = push_down(expr)
    assert reference_matches(pushed, world.docs, world.vectors, path_context=False) == expected


@settings(max_examples=300, deadline=None)
@given(expressions(), worlds())
def test_plan_with_every_cluster_probed_is_exact(expr: Node, world: World) -> None:
    expected = reference_matches(expr, world.docs, world.vectors)
    full = _probe_everything(expr, world.quantizer.nlist)
    executable = plan(full, world.vectors, world.quantizers)
    assert not any(isinstance(n, NN) and n.radius is not None for n in walk(executable))
    assert reference_matches(executable, world.docs, world.vectors, path_context=False) == expected


@settings(max_examples=300, deadline=None)
@given(expressions(with_difference=False), worlds())
def test_probing_fewer_clusters_returns_a_subset(expr: Node, world: World) -> None:
    """Without negation the query is monotone, so approximate NN can only lose documents."""
    exact = reference_matches(expr, world.docs, world.vectors)
    executable = plan(expr, world.vectors, world.quantizers)
    assert reference_matches(executable, world.docs, world.vectors, path_context=False) <= exact


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_rules_are_idempotent(expr: Node) -> None:
    once = logical_plan(expr)
    assert logical_plan(once) == once
    assert simplify(simplify(expr)) == simplify(expr)


@settings(max_examples=300, deadline=None)
@given(expressions(), worlds(max_docs=0))
def test_the_executable_plan_is_a_fixpoint(expr: Node, world: World) -> None:
    """No rule finds anything left to do in an executable plan."""
    executable = plan(expr, world.vectors, world.quantizers)
    assert simplify(executable) == executable
    assert logical_plan(executable) == executable


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_pushed_constraints_are_term_only(expr: Node) -> None:
    for n in walk(logical_plan(expr)):
        if isinstance(n, NN) and n.constraint is not None:
            assert not any(isinstance(m, NN) for m in walk(n.constraint))


def _probe_everything(expr: Node, nlist: int) -> Node:
    import dataclasses

    from ebr.planning.rules.traversal import map_children

    def rule(n: Node) -> Node:
        n = map_children(n, rule)
        if isinstance(n, NN) and n.radius is not None and not n.exact:
            return dataclasses.replace(n, nprobe=nlist)
        return n

    return rule(expr)


def test_strategy_reaches_difference_and_topk() -> None:
    """Guard against a strategy that silently stopped producing the interesting shapes."""
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None)
    @given(expressions())
    def collect(expr: Node) -> None:
        for n in walk(expr):
            if isinstance(n, Difference):
                seen.add("difference")
            if isinstance(n, NN):
                seen.add("topk" if n.k else "radius")
            if isinstance(n, Match):
                seen.add("match top-k" if n.k else "match")

    collect()
    assert seen == {"difference", "topk", "radius", "match", "match top-k"}


@settings(max_examples=300, deadline=None)
@given(expressions(), worlds(max_docs=0))
def test_plan_equals_the_passes_run_separately(expr: Node, world: World) -> None:
    """The planner's passes share what simplify already returned; running each pass on its
    own must give the same plan."""
    separate = simplify(expand_nn(push_down(simplify(expr)), world.vectors, world.quantizers))
    assert plan(expr, world.vectors, world.quantizers) == separate
    assert logical_plan(expr) == push_down(simplify(expr))
