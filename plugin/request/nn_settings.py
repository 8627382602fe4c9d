"""Settings a request imposes on every ``nn`` clause of its query, and how they depend on the
page asked for.

Que2Search §6.4: the first page must be fast, so its nearest-neighbour search probes few
clusters with a tight radius; users who scroll on get a wider, more expensive search.
:class:`PageSettings` maps the first page each setting applies from to an :class:`NNSettings`
(``{1: NNSettings(nprobe=8), 2: NNSettings(nprobe=32, radius=0.7)}``); a page takes the
setting of the largest page number not above it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from ebr.errors import PlanError
from ebr.mappings.space import MAX_RADIUS, MIN_RADIUS
from ebr.planning.rules.traversal import bottom_up
from ebr.query.nodes import NN, Node
from ebr.query.parser import MAX_NPROBE


@dataclass(frozen=True)
class NNSettings:
    """``nprobe`` replaces the clusters probed by every approximate ``nn`` clause (not those
    marked ``:exact``); ``radius`` replaces the radius of every radius-mode clause.  None
    keeps what the query says."""

    nprobe: int | None = None
    radius: float | None = None

    def __post_init__(self) -> None:
        if self.nprobe is not None and not 1 <= self.nprobe <= MAX_NPROBE:
            raise PlanError(f"nprobe must be between 1 and {MAX_NPROBE}; got {self.nprobe}")
        if self.radius is not None and not MIN_RADIUS <= self.radius <= MAX_RADIUS:
            raise PlanError(f"radius must be between {MIN_RADIUS:g} and {MAX_RADIUS:g}; "
                            f"got {self.radius}")

    def apply(self, node: Node) -> Node:
        """``node`` with these settings on each of its ``nn`` clauses."""
        if self.nprobe is None and self.radius is None:
            return node

        def step(n: Node) -> Node:
            if type(n) is not NN:
                return n
            changes: dict[str, object] = {}
            if self.nprobe is not None and not n.exact:
                changes["nprobe"] = self.nprobe
            if self.radius is not None and n.radius is not None:
                changes["radius"] = self.radius
            return dataclasses.replace(n, **changes) if changes else n  # type: ignore[arg-type]

        return bottom_up(node, step)


class PageSettings:
    """``NNSettings`` by the first page (from 1) they apply to."""

    def __init__(self, by_first_page: Mapping[int, NNSettings] | None = None) -> None:
        pages = dict(by_first_page or {})
        if any(p < 1 for p in pages):
            raise PlanError(f"page settings start at page 1; got pages {sorted(pages)}")
        self._pages = sorted(pages.items())

    def for_page(self, page: int) -> NNSettings:
        chosen = NNSettings()
        for first, settings in self._pages:
            if first > page:
                break
            chosen = settings
        return chosen
