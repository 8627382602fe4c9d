"""Tests for tests/support/opensearch_spec.py, the offline OpenSearch request-body linter.

Every test that needs the spec calls ``require_spec()`` first, so the module skips with a visible
reason when ../shared/data/opensearch-api-spec (or $EBR_SHARED_DIR) is absent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import opensearch_spec
from support.opensearch_spec import (
    INDEX_CREATE_BODY,
    SpecViolation,
    require_spec,
    spec_violations,
    validate_against,
    validate_index_create_body,
    validate_knn_train_body,
    validate_query,
    validate_search_body,
)

pytestmark = pytest.mark.spec

Path_ = tuple[str | int, ...]

# ------------------------------------------------------------------------------------ bodies

TERM_FILTER: dict[str, Any] = {"terms": {"attrs.color": ["red", "blue"], "_name": "colors"}}
NAMED_TERM: dict[str, Any] = {"term": {"attrs.size": {"value": "x", "_name": "n"}}}
KNN: dict[str, Any] = {
    "knn": {
        "vectors.m1": {
            "vector": [0.1, 0.2],
            "k": 10,
            "filter": {"bool": {"filter": [{"term": {"attrs.color": "red"}}]}},
            "method_parameters": {"nprobes": 8},
            "_name": "n",
        }
    }
}
SCRIPT_SCORE: dict[str, Any] = {
    "script_score": {
        "query": {"bool": {"filter": [TERM_FILTER]}},
        "script": {
            "source": "1.0 + cosineSimilarity(params.q, doc[params.f])",
            "params": {"q": [0.1], "f": "vectors.m1"},
        },
        "min_score": 1.5,
    }
}
BOOL: dict[str, Any] = {
    "bool": {
        "filter": [TERM_FILTER],
        "should": [NAMED_TERM, KNN],
        "minimum_should_match": 1,
        "must_not": [{"term": {"attrs.color": "green"}}],
    }
}


def fresh(body: dict[str, Any]) -> dict[str, Any]:
    # Not copy.deepcopy: it keeps shared sub-dicts shared (TERM_FILTER occurs twice), and a test
    # mutating one occurrence must not mutate the other.
    result: dict[str, Any] = json.loads(json.dumps(body))
    return result


def search_body() -> dict[str, Any]:
    """A body shaped like the compiler's output: boolean skeleton, nn branch, exact rescoring."""
    return fresh(
        {
            "size": 10,
            "query": BOOL,
            "rescore": {
                "window_size": 100,
                "query": {
                    "rescore_query": SCRIPT_SCORE,
                    "query_weight": 0.0,
                    "rescore_query_weight": 1.0,
                    "score_mode": "total",
                },
            },
        }
    )


def index_body() -> dict[str, Any]:
    return fresh(
        {
            "settings": {"index": {"knn": True, "number_of_replicas": 0}},
            "mappings": {
                "_meta": {"ebr_schema_version": 1, "quantizers": {"m2": "centroids-1"}},
                "properties": {
                    "attrs": {
                        "type": "object",
                        "properties": {"color": {"type": "keyword"}, "size": {"type": "keyword"}},
                    },
                    "vectors": {
                        "properties": {
                            "m1": {
                                "type": "knn_vector",
                                "dimension": 2,
                                "method": {
                                    "name": "hnsw",
                                    "engine": "faiss",
                                    "space_type": "cosinesimil",
                                    "parameters": {"m": 16, "ef_construction": 128},
                                },
                            },
                            "m2": {"type": "knn_vector", "model_id": "abc"},
                        }
                    },
                    "price": {"type": "float"},
                },
            },
        }
    )


def train_body() -> dict[str, Any]:
    return {
        "training_index": "ebr-train",
        "training_field": "v",
        "dimension": 8,
        "description": "IVF-PQ for m2",
        "method": {
            "name": "ivf",
            "engine": "faiss",
            "space_type": "cosinesimil",
            "parameters": {
                "nlist": 4,
                "nprobes": 2,
                "encoder": {"name": "pq", "parameters": {"m": 2, "code_size": 8}},
            },
        },
    }


def at(body: Any, path: Path_) -> Any:
    for part in path:
        body = body[part]
    return body


def raised(check: Any, body: Any, **kwargs: Any) -> SpecViolation:
    with pytest.raises(SpecViolation) as excinfo:
        check(body, **kwargs)
    return excinfo.value


# ------------------------------------------------------------------------------------ locating


def test_require_spec_returns_the_spec_folder() -> None:
    spec_dir = require_spec()
    assert spec_dir == opensearch_spec.SPEC_DIR
    assert (spec_dir / "spec" / "namespaces" / "_core.yaml").is_file()


def test_require_spec_skips_with_the_missing_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Needs no spec: it checks the skip itself.
    monkeypatch.setattr(opensearch_spec, "SPEC_DIR", None)
    with pytest.raises(pytest.skip.Exception, match="OpenSearch API spec not found at .+: "):
        require_spec()


def test_shared_dir_env_var_is_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(opensearch_spec.ENV_VAR, str(tmp_path))
    assert opensearch_spec._spec_dir_candidate() == tmp_path / "data" / "opensearch-api-spec"


# ------------------------------------------------------------------------------------ valid bodies


def test_compiled_search_body_passes() -> None:
    require_spec()
    validate_search_body(search_body())


@pytest.mark.parametrize(
    "clause",
    [TERM_FILTER, NAMED_TERM, KNN, SCRIPT_SCORE, BOOL, {"bool": {"must_not": [NAMED_TERM]}}],
    ids=["terms", "named-term", "knn", "script_score", "bool", "only-must-not"],
)
def test_single_clauses_pass(clause: dict[str, Any]) -> None:
    require_spec()
    validate_query(clause)


def test_overlapping_one_of_is_not_an_error() -> None:
    # SortCombinations' oneOf branches overlap: {"_score": {...}} is SortOptions and FieldWithOrder.
    require_spec()
    validate_search_body({"query": BOOL, "sort": [{"_score": {"order": "desc"}}, "_doc"]})


def test_index_create_body_passes_including_model_backed_field() -> None:
    require_spec()
    validate_index_create_body(index_body())


def test_yaml_1_1_booleans_do_not_leak_into_enums() -> None:
    # TermVectorOption lists `no`; PyYAML's YAML 1.1 rules would read it as False.
    require_spec()
    body = {"mappings": {"properties": {"t": {"type": "text", "term_vector": "no"}}}}
    validate_index_create_body(body)


def test_knn_train_body_passes() -> None:
    require_spec()
    validate_knn_train_body(train_body())


def test_any_component_can_be_checked() -> None:
    require_spec()
    rescore = "schemas/_core.search.yaml#/components/schemas/Rescore"
    validate_against(rescore, search_body()["rescore"])
    with pytest.raises(SpecViolation, match=r"\$\.window_size: 'big' is not of type 'integer'"):
        validate_against(rescore, {"window_size": "big", "query": {"rescore_query": KNN}})
    with pytest.raises(LookupError, match="NoSuchSchema"):
        validate_against("schemas/_core.search.yaml#/components/schemas/NoSuchSchema", {})


# ------------------------------------------------------------------------------------ invalid bodies

SHOULD_KNN: Path_ = ("query", "bool", "should", 1, "knn", "vectors.m1")


def _set(path: Path_, value: Any) -> Any:
    def mutate(body: dict[str, Any]) -> None:
        at(body, path[:-1])[path[-1]] = value

    return mutate


def _rename(path: Path_, new: str) -> Any:
    def mutate(body: dict[str, Any]) -> None:
        parent = at(body, path[:-1])
        parent[new] = parent.pop(path[-1])

    return mutate


@pytest.mark.parametrize(
    ("mutate", "where", "says"),
    [
        (_set(("size",), "ten"), "$.size", "'ten' is not of type 'integer'"),
        (
            _set((*SHOULD_KNN, "k"), "10"),
            "$.query.bool.should[1].knn['vectors.m1'].k",
            "'10' is not of type 'integer'",
        ),
        (
            _rename(("query", "bool", "minimum_should_match"), "minimum_shuld_match"),
            "$.query.bool.minimum_shuld_match",
            "unknown key 'minimum_shuld_match' (did you mean 'minimum_should_match'?)",
        ),
        (
            _set(("query", "bool", "minimum_should_match"), {"at_least": 1}),
            "$.query.bool.minimum_should_match",
            "is not valid under any of the given schemas",
        ),
        (
            _set(("rescore", "query", "score_mode"), "sum"),
            "$.rescore.query.score_mode",
            "'sum' is not one of",
        ),
        (
            _rename(("query", "bool"), "boool"),
            "$.query.boool",
            "unknown key 'boool' (did you mean 'bool'?)",
        ),
    ],
    ids=["size-type", "knn-k-type", "bool-typo", "msm-object", "score-mode-enum", "query-typo"],
)
def test_invalid_search_body_names_the_path(mutate: Any, where: str, says: str) -> None:
    require_spec()
    body = search_body()
    mutate(body)
    error = raised(validate_search_body, body)
    assert isinstance(error, AssertionError)
    assert error.paths == (where,), str(error)  # exactly one violation, at the right place
    assert f"{where}: " in str(error)
    assert says in str(error)


def test_every_violation_is_listed() -> None:
    require_spec()
    body = search_body()
    body["size"] = "ten"
    at(body, SHOULD_KNN)["k"] = "10"
    bool_ = at(body, ("query", "bool"))
    bool_["minimum_shuld_match"] = bool_.pop("minimum_should_match")
    at(body, ("query", "bool", "must_not", 0, "term"))["attrs.color"] = {"valu": "green"}
    error = raised(validate_search_body, body)
    assert set(error.paths) == {
        "$.size",
        "$.query.bool.should[1].knn['vectors.m1'].k",
        "$.query.bool.minimum_shuld_match",
        "$.query.bool.must_not[0].term['attrs.color']",  # 'value' is required ...
        "$.query.bool.must_not[0].term['attrs.color'].valu",  # ... and 'valu' is unknown
    }, str(error)


def test_strict_false_skips_only_the_unknown_key_pass() -> None:
    require_spec()
    body = search_body()
    at(body, ("query", "bool"))["minimum_shuld_match"] = 1
    validate_search_body(body, strict=False)
    body["size"] = "ten"
    assert raised(validate_search_body, body, strict=False).paths == ("$.size",)


# The unknown-key pass, position by position: renaming any key of the valid bodies must be caught,
# except where the spec (rightly) accepts any key: field names, script params, settings, _meta.
OPEN_PARENTS = {"term", "terms", "knn", "params", "method_parameters", "properties", "parameters"}
OPEN_PARENTS |= {"_meta", "quantizers", "settings", "index"}


def key_positions(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from key_positions(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from key_positions(value, (*path, index))


def closed_positions(body: dict[str, Any]) -> list[Path_]:
    def parent(path: Path_) -> str | int | None:
        named = [p for p in path[:-1] if isinstance(p, str)]
        return named[-1] if named else None

    return [p for p in key_positions(body) if parent(p) not in OPEN_PARENTS]


def _typo_cases() -> Iterator[Any]:
    for check, body in (
        (validate_search_body, search_body()),
        (validate_index_create_body, index_body()),
    ):
        for path in closed_positions(body):
            yield pytest.param(check, body, path, id=f"{check.__name__}:{'/'.join(map(str, path))}")


@pytest.mark.parametrize(("check", "body", "path"), list(_typo_cases()))
def test_a_renamed_key_is_reported_where_it_is(
    check: Any, body: dict[str, Any], path: Path_
) -> None:
    require_spec()
    body = copy.deepcopy(body)
    typo = f"{path[-1]}x"
    _rename(path, typo)(body)
    error = raised(check, body)
    expected = opensearch_spec._json_path((*path[:-1], typo))
    unknown = [v.path for v in error.violations if v.kind == "unknown-key"]
    assert expected in unknown, str(error)
    # Nothing unrelated is flagged. Siblings may be: a mapping field without "type" is an object
    # field (the discriminator's default), for which e.g. "model_id" is unknown too.
    siblings = {opensearch_spec._json_path((*path[:-1], key)) for key in at(body, path[:-1])}
    assert set(unknown) <= siblings, str(error)


def test_typo_positions_cover_the_nested_clauses() -> None:
    # Guards the test above against silently shrinking (e.g. if OPEN_PARENTS grew too much).
    positions = {"/".join(map(str, p)) for p in closed_positions(search_body())}
    assert "query/bool/should/1/knn/vectors.m1/method_parameters" in positions
    assert "rescore/query/rescore_query/script_score/min_score" in positions
    assert "query/bool/should/0/term/attrs.size/_name" in positions
    assert len(positions) >= 25


# ------------------------------------------------------------------------------------ index bodies


def test_knn_vector_needs_dimension_unless_model_backed() -> None:
    require_spec()
    body = index_body()
    vectors = at(body, ("mappings", "properties", "vectors", "properties"))
    vectors["m3"] = {"type": "knn_vector"}
    error = raised(validate_index_create_body, body)
    assert error.paths == ("$.mappings.properties.vectors.properties.m3",)
    assert "'dimension' is a required property" in str(error)


def test_index_body_errors_are_reported_at_the_field() -> None:
    require_spec()
    body = index_body()
    fields = at(body, ("mappings", "properties"))
    fields["attrs"]["properties"]["size"]["type"] = "keywrd"
    fields["price"]["doc_values"] = "no"
    fields["vectors"]["properties"]["m1"]["dimension"] = "2"
    error = raised(validate_index_create_body, body)
    assert set(error.paths) == {
        "$.mappings.properties.attrs.properties.size.type",
        "$.mappings.properties.price.doc_values",
        "$.mappings.properties.vectors.properties.m1.dimension",
    }, str(error)
    assert "'keywrd' is not a known 'type'" in str(error)


def test_index_create_body_location_is_the_indices_create_request() -> None:
    require_spec()
    assert spec_violations(INDEX_CREATE_BODY, index_body()) == []
    assert [v.path for v in spec_violations(INDEX_CREATE_BODY, {"mapings": {}})] == ["$.mapings"]


# ------------------------------------------------------------------------------------ train body


def test_knn_train_body_errors() -> None:
    require_spec()
    body = train_body()
    del body["training_field"]
    body["method"]["nme"] = body["method"].pop("name")
    error = raised(validate_knn_train_body, body)
    assert set(error.paths) == {"$", "$.method", "$.method.nme"}, str(error)
    assert "'training_field' is a required property" in str(error)
