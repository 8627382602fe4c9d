"""Keeping the work done on a query text: a service runs the same few templates all day.

:func:`ebr.query.parser.parse` keeps the ASTs of the last :data:`KEPT` texts (by text, schema
and limits) and :func:`ebr.planning.planner.plan` the logical plans of the last :data:`KEPT`
ASTs (by identity: an AST is immutable, and the one a kept parse returns is the same
object each time), so a repeated query text costs two look-ups before the per-query work
(probe selection for its vectors).  Errors are not kept: a bad text is read again.
"""

from __future__ import annotations

from typing import Generic, TypeVar

#: Texts (and logical plans) kept, least recently used out first.
KEPT = 1024

T = TypeVar("T")


class Same(Generic[T]):
    """A cache key part standing for one object, hashed and compared by identity: cheaper
    than hashing a schema or an AST whole, and an equal copy is merely a miss."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.value is self.value
