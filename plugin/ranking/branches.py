"""How a hit matched the plan: through term branches, ``nn`` branches or both.

A hit matched through a kind of branch when, at some ``or`` offering both kinds that it
satisfied, it satisfied an alternative of that kind: one holding a vector clause
(``nn``/``within``) is an ``nn`` alternative, any other a ``terms`` one.  An ``or`` of one kind
(a location constraint ``(or (term loc:a) (term loc:b))``) is no choice of how to match.
Without such an ``or`` a hit matched the plan whole, through ``nn`` if it holds a vector
clause.  Both stores name branches alike, so both agree.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from ebr.query.nodes import NN, Node, Or, Within, named_branches, walk

MatchKind = Literal["terms", "nn"]


def _kind(node: Node) -> MatchKind:
    return "nn" if any(isinstance(n, NN | Within) for n in walk(node)) else "terms"


class BranchKinds:
    """The kinds of every ``or`` alternative of one plan, found once, asked per hit."""

    def __init__(self, plan: Node) -> None:
        self._alternatives: list[tuple[str, str, MatchKind]] = []
        for name, node in named_branches(plan).items():
            if isinstance(node, Or):
                kinds = [_kind(child) for child in node.children]
                if len(set(kinds)) == 2:
                    self._alternatives += [(name, f"{name}.{i}", kind)
                                           for i, kind in enumerate(kinds)]
        self._whole: MatchKind = _kind(plan)

    def of(self, branches: Collection[str]) -> frozenset[MatchKind]:
        """The kinds of branch through which a hit reporting ``branches`` matched."""
        matched = set(branches)
        kinds = {kind for parent, alternative, kind in self._alternatives
                 if parent in matched and alternative in matched}
        return frozenset(kinds) if kinds else frozenset((self._whole,))
