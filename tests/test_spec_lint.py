"""Everything ebr sends to OpenSearch validates against the OpenSearch API specification
(../shared/data/opensearch-api-spec), including the strict unknown-key pass.  Skips with the
reason when the spec is absent."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from ebr import Match, compile_rescore, compile_search, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, IvfPq, Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body, train_model_body, training_index_body
from ebr.query.nodes import is_top_k, walk
from ebr.stores.opensearch.compiler import compile_cosine_fields, compile_top_k
from support.golden import SCHEMA, VECTORS, compile_cases, compile_text
from support.opensearch_spec import (
    require_spec,
    validate_index_create_body,
    validate_knn_train_body,
    validate_search_body,
)
from support.strategies import DIM, KEY, NAMESPACES, World, expressions, worlds

pytestmark = pytest.mark.spec


@pytest.mark.parametrize(("name", "text"), compile_cases(), ids=[c[0] for c in compile_cases()])
def test_golden_bodies_conform(name: str, text: str) -> None:
    require_spec()
    validate_search_body(compile_text(text))


def test_rescore_conforms() -> None:
    require_spec()
    body = compile_text("(nn title-ivf :k 50)", size=20)
    body["rescore"] = [compile_rescore(SCHEMA, "model-141795009", VECTORS["model-141795009"],
                                       window_size=50, score_mode="multiply")]
    validate_search_body(body)


def test_cosine_script_fields_conform() -> None:
    """The body of a search returning what the reranker reads (``fetch``)."""
    require_spec()
    body = compile_text("(nn title-ivf :k 50)", size=20)
    body["script_fields"] = compile_cosine_fields(SCHEMA, VECTORS)
    body["_source"] = ["clusters", "terms.text"]
    validate_search_body(body)


def test_index_and_model_bodies_conform() -> None:
    require_spec()
    validate_index_create_body(index_body(SCHEMA))
    ivf = SCHEMA.key("title-ivf")
    assert ivf is not None
    validate_knn_train_body(train_model_body(ivf, "title-ivf-training"))
    validate_index_create_body(training_index_body(ivf))


def test_a_broken_body_is_caught() -> None:
    """The lint can fail: a typo the compiler could plausibly make."""
    require_spec()
    body = compile_text("(or (term text:a) (term text:b))")
    should_bool = body["query"]["bool"]["filter"][0]["bool"]
    should_bool["minimum_shuld_match"] = should_bool.pop("minimum_should_match")
    with pytest.raises(AssertionError, match="minimum_shuld_match"):
        validate_search_body(body)


_RANDOM_SCHEMA = Schema.create("diff", tuple(Namespace(n) for n in NAMESPACES),
                               (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=4),
                                             IvfPq("m-model", nlist=4, pq_m=1)),))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), worlds(max_docs=0))
def test_random_compiled_bodies_conform(expr: object, world: World) -> None:
    require_spec()
    executable = plan(expr, world.vectors, world.quantizers, _RANDOM_SCHEMA)  # type: ignore[arg-type]
    top_k = [n for n in walk(executable) if is_top_k(n)]
    resolved = {n: ["d1", "d2"] for n in top_k if isinstance(n, Match)}
    validate_search_body(compile_search(executable, _RANDOM_SCHEMA, world.vectors,
                                        resolved=resolved).body)
    for node in top_k:  # the requests resolving them beforehand
        validate_search_body(compile_top_k(node, _RANDOM_SCHEMA, world.vectors))  # type: ignore[arg-type]
