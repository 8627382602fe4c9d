"""The README's Python examples run as written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


def run(code: str) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def block(marker: str) -> str:
    found = [b for b in BLOCKS if marker in b]
    assert len(found) == 1, marker
    return found[0]


def test_every_python_block_is_tested() -> None:
    assert len(BLOCKS) == 3


def test_the_planning_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run(block("ebr.compile_search"))
    assert "within model-141795009 0.24" in capsys.readouterr().out
    assert namespace["body"]["size"] == 50  # type: ignore[index]


def test_the_request_example_prints_what_its_comments_say(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the block's index goes there
    code = block("ebr.Searcher")
    run(code)
    out = capsys.readouterr().out.splitlines()
    # the printed values the block's comments show
    commented = [line.split("#")[1].split("  (")[0].strip() for line in code.splitlines()
                 if line.startswith("print(") and "each hit" not in line]
    assert out[0] == commented[0]
    assert out[-2:] == commented[1:]
    assert out[1].startswith("1. ") and "name-trigrams: distance" in out[2]


def test_the_reranking_example_prints_what_the_readme_shows(
        capsys: pytest.CaptureFixture[str]) -> None:
    run(block("LinearReranker"))
    out = capsys.readouterr().out
    assert "\n" + out in README.read_text(encoding="utf-8")  # line for line
    assert [line.split()[0] for line in out.splitlines()] == ["a", "c", "b"]
