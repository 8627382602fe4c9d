"""Keeping the work done on a query text: a service runs the same few templates all day.

:func:`ebr.query.parser.parse` keeps the ASTs of recent texts (by text, schema and limits)
and :func:`ebr.planning.planner.plan` the logical plans of recent ASTs (by identity: an AST
is immutable, and the one a kept parse returns is the same object each time), so a repeated
query text costs two look-ups before the per-query work (probe selection for its vectors).
Each keeps at most :data:`KEPT_NODES` plan nodes in all, least recently used out first (a
larger query is not kept); errors are not kept: a bad text is read again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import cachetools

#: Nodes kept by each cache, over all its entries (about 100 bytes a node).
KEPT_NODES = 1 << 16

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


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


def kept(nodes: Callable[[Any], int]) -> Callable[[F], F]:
    """Keep ``function``'s results by its arguments, thread-safely, up to
    :data:`KEPT_NODES` nodes in all (``nodes`` of a result)."""
    def wrap(function: F) -> F:
        cache: cachetools.LRUCache[Any, Any] = cachetools.LRUCache(KEPT_NODES, getsizeof=nodes)
        return cachetools.cached(cache, lock=threading.Lock())(function)  # type: ignore[return-value]
    return wrap
