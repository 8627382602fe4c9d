"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS)
def test_readme_python_block_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    if "compile_search" in code:  # planning and compiling the paper's query
        assert "within model-141795009 0.24" in out
        assert namespace["body"]["size"] == 50  # type: ignore[index]
    if "LinearReranker" in code:  # reranking: the README shows this output, line for line
        shown = README.read_text(encoding="utf-8")
        assert "\n" + out in shown
        assert [line.split()[0] for line in out.splitlines()] == ["a", "c", "b"]
