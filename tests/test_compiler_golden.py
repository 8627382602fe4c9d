"""Golden files: s-expression -> compiled ``_search`` body (tests/golden/compile).

Regenerate after an intended change with ``EBR_UPDATE_GOLDEN=1 pytest tests/test_compiler_golden.py``
and review the diff."""

from __future__ import annotations

import pytest

from ebr import compile_rescore
from support.golden import GOLDEN_DIR, SCHEMA, VECTORS, check_golden, compile_cases, compile_text

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
