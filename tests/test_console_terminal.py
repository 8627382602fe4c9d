"""``ebr console`` driven as a person would: keys typed into a pseudo-terminal, the screen
read back (support.terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.console_index import build
from support.terminal import Terminal

PROMPT = r"^ebr>$"  # (the screen is read with trailing spaces stripped)


@pytest.fixture
def index(tmp_path: Path) -> Path:
    return build(tmp_path / "idx")


@pytest.fixture
def console(index: Path, tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal("console", str(index), "--history", str(tmp_path / "history"))
    terminal.wait_for(PROMPT)
    yield terminal
    terminal.close()


def run(console: Terminal, keys: str, expect: str) -> str:
    """Types ``keys`` then Enter on a clear screen; the screen once it shows ``expect``."""
    console.clear()
    console.send(keys + "\r")
    console.wait_for(expect)
    return console.text


def test_a_query_shows_its_hits(console: Terminal) -> None:
    run(console, ":vector m-trigrams=1,0.2", r"m-trigrams: a given 2-d vector\n")
    screen = run(console,
                 '(and (term country:fr) (or (match name "paris") (nn m-trigrams :radius 0.5)))',
                 r"2 hits of 2 matched.*\nebr>")
    assert '1. paris  score 2.4264  via q q.0 q.1 q.1.0 q.1.1  {"name": "Paris"}' in screen
    assert "2. lyon  score 1.9021" in screen
    assert "embed" in run(console, ":timings", r"^total .*ms\nebr>")


def test_an_unclosed_parenthesis_continues_on_the_next_line(console: Terminal) -> None:
    console.clear()
    console.send("(or (term country:it)\r")
    console.wait_for(r"^\.\.\.>$")  # the continuation prompt, no query run yet
    assert "matched" not in console.text
    console.send("    (term name:lyon))\r")
    screen = console.wait_for(r"2 hits of 2 matched").string
    assert "1. lyon" in screen and "2. rome" in screen


def test_a_syntax_error_shows_the_caret_and_the_console_goes_on(console: Terminal) -> None:
    screen = run(console, "(nn m-trigrams :radius 7)", r"\^\nebr>")
    assert "Error: 1:24: :radius must be between 0 and 2; got 7" in screen
    assert "\n  (nn m-trigrams :radius 7)\n                         ^\n" in screen
    assert "1. rome" in run(console, "(term country:it)", r"1 hits of 1 matched")


def test_tab_completes_a_namespace(console: Terminal) -> None:
    console.clear()
    console.send("(term cou\t")
    console.wait_for(r"\(term country:$")
    console.send("it)\r")
    assert "1. rome" in console.wait_for(r"1 hits of 1 matched").string


def test_ctrl_c_cancels_the_input_and_ctrl_d_leaves(console: Terminal, tmp_path: Path) -> None:
    console.send("(term country:fr")
    console.wait_for(r"^ebr> \(term country:fr$")
    console.send("\x03")  # Ctrl-C: the input is dropped, a fresh prompt
    console.clear()
    run(console, "(term country:it)", r"1 hits of 1 matched")
    console.send("\x04")  # Ctrl-D on an empty line
    assert console.ended() == 0
    # The history is kept across sessions; the cancelled input is not in it.
    history = (tmp_path / "history").read_text()
    assert "(term country:it)" in history and "(term country:fr\n" not in history


def test_history_is_kept_across_sessions(index: Path, tmp_path: Path) -> None:
    first = Terminal("console", str(index), "--history", str(tmp_path / "h"))
    first.wait_for(PROMPT)
    run(first, "(term country:it)", r"1 hits of 1 matched")
    first.send(":quit\r")
    assert first.ended() == 0
    second = Terminal("console", str(index), "--history", str(tmp_path / "h"))
    try:
        second.wait_for(PROMPT)
        second.send("\x1b[A")  # Up: the previous session's last input
        second.wait_for(r"^ebr> :quit$")
        second.send("\x1b[A")  # and the query before it
        second.wait_for(r"^ebr> \(term country:it\)$")
        second.send("\r")
        second.wait_for(r"1 hits of 1 matched")
    finally:
        second.close()
