"""The package's one error root and the user-facing errors under it.

Every error a user can cause derives from :class:`EbrError`; the CLI turns these into one
clean message at one boundary.  Anything else escaping is a bug in ebr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ebr.query.span import Span


class EbrError(Exception):
    """Root of every error ebr raises on purpose."""


class QuerySyntaxError(EbrError):
    """A query text that cannot be read or analysed, with the place it went wrong.

    ``str(err)`` gives ``line:column: message`` followed by the offending line and a caret.
    """

    def __init__(self, message: str, span: Span, text: str) -> None:
        self.message = message
        self.span = span
        self.text = text
        self.line, self.column = span.location(text)
        super().__init__(f"{self.line}:{self.column}: {message}\n{span.caret(text)}")


class IncompleteInputError(QuerySyntaxError):
    """The text ended inside an open form; a console can ask for another line."""


class SchemaError(EbrError):
    """An index schema that is inconsistent or cannot be read."""


class PlanError(EbrError):
    """A plan that cannot be built or executed with what was given (missing vector, quantizer...)."""


class UnsupportedError(EbrError):
    """A back end or server version that cannot express what the plan asks for."""


class StoreError(EbrError):
    """An index that cannot be created, opened or written (missing, exists, locked, closed,
    not an ebr index, too few vectors to train)."""


class RerankerError(EbrError):
    """A reranker that cannot be trained, read or used: judgments with nothing to learn from,
    a reranker file that is not one, or one trained for other features than the index gives."""
class TuningError(EbrError):
    """An ANN sweep (``ebr tune``) that cannot run on what it was given: unreadable or
    inconsistent vectors, queries or ground truth, or settings the data cannot support."""


class IndexDamagedError(StoreError):
    """A local index whose files are damaged: it is refused rather than served (the message
    names what is damaged and how to rebuild it)."""
