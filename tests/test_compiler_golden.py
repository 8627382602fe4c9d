"""Golden files: s-expression -> compiled ``_search`` body (tests/golden/compile).

Regenerate after an intended change with ``EBR_UPDATE_GOLDEN=1 pytest tests/test_compiler_golden.py``
and review the diff."""

from __future__ import annotations

import pytest

from ebr import Match, PlanError, ServerVersion, compile_rescore, compile_search, parse, plan
from ebr.query.nodes import walk
from ebr.stores.opensearch.compiler import COSINE_FIELD, compile_cosine_fields, compile_top_k
from support.golden import (
    GOLDEN_DIR,
    QUANTIZERS,
    SCHEMA,
    VECTORS,
    check_golden,
    compile_cases,
    compile_text,
)

CASES = compile_cases()


def test_there_are_golden_cases() -> None:
    names = {name for name, _ in CASES}
    assert {"paper_terms", "paper_hybrid"} <= names and len(names) >= 15


@pytest.mark.parametrize(("name", "text"), CASES, ids=[c[0] for c in CASES])
def test_compiled_body_matches_golden(name: str, text: str) -> None:
    check_golden(GOLDEN_DIR / "compile" / f"{name}.json", compile_text(text))


def test_rescore_matches_golden() -> None:
    body = compile_text("(and (term location:seattle) (nn title-ivf :k 50 :nprobe 8))", size=20)
    body["rescore"] = [compile_rescore(SCHEMA, "model-141795009", VECTORS["model-141795009"],
                                       window_size=100, rescore_query_weight=2.0)]
    check_golden(GOLDEN_DIR / "rescore_cosine.json", body)


def test_top_k_match_matches_golden() -> None:
    """A top-K match is resolved on its own (BM25 over its pushed-down filter, best first),
    then stands in the main query as its scored clause filtered to the ids found; on 3.x no
    boost divides out the old BM25 factor."""
    executable = plan(parse('(and (term location:seattle) (match text "john paul" :k 5 '
                            ':minimum-should-match 1))', SCHEMA), VECTORS, QUANTIZERS, SCHEMA)
    top_k = next(n for n in walk(executable) if isinstance(n, Match))
    body = {
        "resolve": compile_top_k(top_k, SCHEMA, VECTORS),
        "main": compile_search(executable, SCHEMA, VECTORS, resolved={top_k: ["d1", "d2"]}).body,
        "main_3x": compile_search(executable, SCHEMA, VECTORS, resolved={top_k: ["d1"]},
                                  version=ServerVersion(3, 5, 0)).body,
    }
    check_golden(GOLDEN_DIR / "match_top_k.json", body)


def test_cosine_fields_name_each_key_and_refuse_an_unknown_one() -> None:
    fields = compile_cosine_fields(SCHEMA, VECTORS)
    assert sorted(fields) == sorted(COSINE_FIELD + key for key in VECTORS)
    script = fields[COSINE_FIELD + "model-141795009"]["script"]
    assert script["params"]["field"] == SCHEMA.vector_field("model-141795009")
    assert script["params"]["query_value"] == pytest.approx(VECTORS["model-141795009"].tolist())
    with pytest.raises(PlanError, match="unknown embedding key 'other'"):
        compile_cosine_fields(SCHEMA, {"other": VECTORS["model-141795009"]})


def test_an_unresolved_top_k_match_is_refused() -> None:
    executable = plan(parse('(match text "john" :k 5)', SCHEMA), VECTORS, QUANTIZERS, SCHEMA)
    with pytest.raises(PlanError, match="resolved on its own first"):
        compile_search(executable, SCHEMA, VECTORS)
