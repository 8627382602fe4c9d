"""Positions in query text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` of the source, with the 1-based line and
    column of ``start`` (columns count characters, not bytes)."""

    start: int
    end: int
    line: int
    column: int

    def caret(self, text: str) -> str:
        """The source line holding ``start`` and a caret row under the span (at least one ^)."""
        lines = text.split("\n")
        src = lines[self.line - 1] if 0 < self.line <= len(lines) else ""
        width = max(1, min(self.end - self.start, len(src) - (self.column - 1)))
        return f"  {src}\n  {' ' * (self.column - 1)}{'^' * width}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.start, other.end, self.line, self.column)
