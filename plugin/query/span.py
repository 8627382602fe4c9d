"""Positions in query text."""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A half-open character range ``[start, end)`` of the query text.  Line and column are
    derived from the text only when needed (an error message), keeping reading cheap.

    A NamedTuple rather than a frozen dataclass: every node gets a span, and a tuple costs
    about a third as much to build (immutable all the same; spans are never compared with
    anything but spans).  Hot paths build it with ``tuple.__new__(Span, (start, end))``,
    which skips the Python-level ``__new__`` (half the cost again)."""

    start: int
    end: int

    def location(self, text: str) -> tuple[int, int]:
        """1-based (line, column) of ``start``; columns count characters, not bytes."""
        line = text.count("\n", 0, self.start) + 1
        column = self.start - (text.rfind("\n", 0, self.start) + 1) + 1
        return line, column

    def caret(self, text: str) -> str:
        """The source line holding ``start`` and a caret row under the span (at least one ^)."""
        line, column = self.location(text)
        src = text.split("\n")[line - 1] if text else ""
        width = max(1, min(self.end - self.start, len(src) - (column - 1)))
        # keep tabs in the padding so the caret lines up however the terminal expands them
        pad = "".join(c if c == "\t" else " " for c in src[: column - 1])
        return f"  {src}\n  {pad}{'^' * width}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.start, other.end)
