"""Operating points: the cheapest setting that keeps a share of exact recall.

Cheapest means fewest documents scanned per query (EBR §4.1: the cost to compare), then
fewest bytes per scored vector, then fewer clusters and probes.  Exact search against
itself has recall 1, so a target of 0.95 asks for recall >= 0.95 against exact search;
against a given ground truth it asks for 0.95 of what exact cosine search reaches there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ebr.tuning.sweep import ONE_RECALL_K, RECALL_K, RadiusPoint, SweepResult, TopKPoint

#: Shares of exact recall recommended for by default.
DEFAULT_TARGETS = (0.9, 0.95, 0.99)

P = TypeVar("P", TopKPoint, RadiusPoint)


@dataclass(frozen=True)
class OperatingPoint:
    """The cheapest setting whose ``metric`` reaches ``required`` (``target`` x exact), or
    None when none of the sweep does."""

    metric: str
    target: float
    required: float
    topk: TopKPoint | None = None
    radius: RadiusPoint | None = None


def cheapest(points: Sequence[P], value: Callable[[P], float | None], required: float
             ) -> P | None:
    """The point of least cost whose ``value`` is at least ``required``."""
    eligible = [p for p in points if (v := value(p)) is not None and v >= required - 1e-12]
    return min(eligible, key=_cost, default=None)


def recommend(result: SweepResult, targets: Sequence[float] = DEFAULT_TARGETS
              ) -> list[OperatingPoint]:
    """For each target: top-K settings by 1-recall@10 and recall@100 (against exact search,
    and against the given ground truth when there is one), and radius settings per radius."""
    metrics: list[tuple[str, Callable[[TopKPoint], float | None], float]] = [
        (f"1-recall@{ONE_RECALL_K}", lambda p: p.one_recall_at_10, 1.0),
        (f"recall@{_k(result)}", lambda p: p.recall_at_100, 1.0)]
    truth = list(result.exact_vs_truth.values())
    if truth:
        metrics += [(f"1-recall@{ONE_RECALL_K} vs ground truth",
                     lambda p: p.truth_one_recall_at_10, truth[0]),
                    (f"recall@{_k(result)} vs ground truth", lambda p: p.truth_recall_at_100,
                     truth[1])]
    out: list[OperatingPoint] = []
    for target in targets:
        for name, value, exact in metrics:
            best = cheapest(result.topk, value, target * exact)
            out.append(OperatingPoint(name, target, target * exact, topk=best))
        for r in result.radii:
            at = [p for p in result.radius if p.radius == r]
            out.append(OperatingPoint(f"radius {r:g} recall", target, target,
                                      radius=cheapest(at, lambda p: p.recall, target)))
    return out


def _k(result: SweepResult) -> int:
    return min(RECALL_K, result.documents)


def _cost(p: TopKPoint | RadiusPoint) -> tuple[float, int, int, int]:
    if isinstance(p, TopKPoint):
        return (p.scanned, p.code_bytes, p.nlist, p.nprobe)
    return (p.scanned, 0, p.nlist, p.nprobe)
