"""Parsed texts and logical plans are kept (ebr.query.kept) and never confused."""

from __future__ import annotations

import numpy as np
import pytest

from ebr import CentroidQuantizer, QuerySyntaxError, logical_plan, parse, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.query.parser import parse_uncached
from ebr.query.reader import Limits


def _schema(name: str) -> Schema:
    return Schema.create(name, (Namespace("loc"),), (EmbeddingKey("e", 2, CoarseQuantizerSpec(nlist=2)),))


TEXT = "(and (term loc:x) (nn e :radius 0.5 :nprobe 1))"


def test_the_same_text_schema_and_limits_give_the_same_ast() -> None:
    schema = _schema("a")
    first = parse(TEXT, schema)
    assert parse(TEXT, schema) is first and first == parse_uncached(TEXT, schema)
    assert parse(TEXT, _schema("a")) is not first  # an equal schema object: looked up apart
    assert parse(TEXT, schema, Limits(max_depth=50)) is not first
    assert parse(TEXT + " ", schema) is not first


def test_a_text_the_schema_refuses_is_refused_every_time() -> None:
    wrong = "(term nowhere:x)"
    for _ in range(2):
        with pytest.raises(QuerySyntaxError):
            parse(wrong, _schema("b"))
    assert parse(wrong) == parse_uncached(wrong)  # without a schema any namespace reads


def test_plans_of_a_kept_ast_follow_the_vectors() -> None:
    schema = _schema("c")
    quantizer = CentroidQuantizer(np.array([[1, 0], [0, 1]], np.float32))
    ast = parse(TEXT, schema)
    near_first = plan(ast, {"e": np.array([1, 0.1], np.float32)}, {"e": quantizer}, schema)
    near_second = plan(ast, {"e": np.array([0.1, 1], np.float32)}, {"e": quantizer}, schema)
    assert near_first != near_second  # the probe follows each query's vector
    fresh = plan(parse_uncached(TEXT, schema), {"e": np.array([1, 0.1], np.float32)},
                 {"e": quantizer}, schema)
    assert near_first == fresh
    assert logical_plan(ast) == logical_plan(parse_uncached(TEXT, schema))


def test_the_kept_asts_hold_at_most_kept_nodes() -> None:
    from ebr.query import parser
    from ebr.query.kept import KEPT_NODES
    from ebr.query.nodes import size

    schema = _schema("d")
    terms = " ".join(f"(term loc:v{i})" for i in range(1000))
    for n in range(80):  # 80 distinct texts of 1,002 nodes each: more than KEPT_NODES
        ast = parse(f"(or (term loc:w{n}) {terms})", schema)
        assert size(ast) == 1002
    cache = parser._kept.cache  # type: ignore[attr-defined]
    assert 0 < cache.currsize <= KEPT_NODES < 80 * 1002
