"""What ``ebr tune`` writes: a table for people, the JSON for machines, a PNG plot.

The plot (matplotlib's Agg canvas, no display needed) has recall against documents scanned
(log scale) per (nlist, codes): 1-recall@10, recall@100, and radius recall per radius.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ebr.tuning.recommend import OperatingPoint
from ebr.tuning.sweep import SweepResult, TopKPoint


def table_lines(result: SweepResult) -> list[str]:
    """The top-K and radius tables, one setting a line."""
    truth = bool(result.exact_vs_truth)
    head = f"{'nlist':>6} {'codes':>11} {'bytes':>5} {'nprobe':>6} {'scanned':>9} {'%':>6} " \
           f"{'1-R@10':>7} {'R@100':>6}" + (f" {'GT 1-R@10':>9} {'GT R@100':>8}" if truth else "")
    lines = [head]
    for p in result.topk:
        line = f"{p.nlist:>6} {p.codes:>11} {p.code_bytes:>5} {p.nprobe:>6} {p.scanned:>9,.0f} " \
               f"{100 * p.scanned / result.documents:>6.2f} {p.one_recall_at_10:>7.3f} " \
               f"{p.recall_at_100:>6.3f}"
        if truth:
            line += f" {p.truth_one_recall_at_10:>9.3f} {p.truth_recall_at_100:>8.3f}"
        lines.append(line)
    if result.radius:
        lines += ["", f"{'radius':>7} {'nlist':>6} {'nprobe':>6} {'scanned':>9} "
                      f"{'exact matched':>13} {'matched':>8} {'recall':>6}"]
        lines += [f"{p.radius:>7g} {p.nlist:>6} {p.nprobe:>6} {p.scanned:>9,.0f} "
                  f"{p.exact_matched:>13,.1f} {p.matched:>8,.1f} {p.recall:>6.3f}"
                  for p in result.radius]
    return lines


def recommendation_lines(points: Sequence[OperatingPoint]) -> list[str]:
    """One line per operating point: the target, then the setting or that none reaches it."""
    lines = []
    for op in points:
        want = f"{op.metric} >= {op.required:.3f} ({op.target:g} of exact)"
        if op.topk is not None:
            p = op.topk
            lines.append(f"{want}: nlist {p.nlist}, {p.codes}, nprobe {p.nprobe} "
                         f"({p.scanned:,.0f} scanned; 1-R@10 {p.one_recall_at_10:.3f}, "
                         f"R@100 {p.recall_at_100:.3f})")
        elif op.radius is not None:
            r = op.radius
            lines.append(f"{want}: nlist {r.nlist}, nprobe {r.nprobe} ({r.scanned:,.0f} "
                         f"scanned; recall {r.recall:.3f}, {r.matched:,.1f} of "
                         f"{r.exact_matched:,.1f} matched)")
        else:
            lines.append(f"{want}: no setting of the sweep reaches it (raise nprobe)")
    return lines


def to_json(result: SweepResult, points: Sequence[OperatingPoint],
            source: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, the settings swept and the recommendations."""
    settings = dataclasses.asdict(result.settings)
    settings["codes"] = [c.name for c in result.settings.codes]
    return {
        "source": source,
        "documents": result.documents, "dimension": result.dimension,
        "queries": result.queries, "metric": "cosine (rows L2-normalised)",
        "seconds": round(result.seconds, 3), "settings": settings,
        "radii": list(result.radii),
        "exact_vs_ground_truth": dict(result.exact_vs_truth) or None,
        "topk": [dataclasses.asdict(p) for p in result.topk],
        "radius": [dataclasses.asdict(p) for p in result.radius],
        "recommendations": [dataclasses.asdict(p) for p in points],
    }


def plot(result: SweepResult, path: Path) -> None:
    """Recall against documents scanned, one line per (nlist, codes); written as PNG."""
    from matplotlib.figure import Figure

    panels: list[tuple[str, str]] = [("one_recall_at_10", "1-recall@10"),
                                     ("recall_at_100", "recall@100")]
    fig = Figure(figsize=(6 * (len(panels) + bool(result.radius)), 5), layout="constrained")
    axes = fig.subplots(1, len(panels) + bool(result.radius), squeeze=False)[0]
    codes = list(dict.fromkeys(p.codes for p in result.topk))
    nlists = list(dict.fromkeys(p.nlist for p in result.topk))
    styles = ["-", "--", ":", "-."]
    for ax, (attr, label) in zip(axes, panels, strict=False):
        for c_index, name in enumerate(codes):
            for n_index, nlist in enumerate(nlists):
                line: list[TopKPoint] = [p for p in result.topk
                                         if p.codes == name and p.nlist == nlist]
                ax.plot([p.scanned for p in line], [getattr(p, attr) for p in line],
                        color=f"C{c_index % 10}", linestyle=styles[n_index % len(styles)],
                        marker="o", markersize=3, label=f"IVF{nlist},{name}")
        ax.set(xscale="log", xlabel="documents scanned per query", ylabel=label,
               title=f"{label} vs exact search", ylim=(0, 1.02))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize="small")
    if result.radius:
        ax = axes[-1]
        for r_index, radius in enumerate(result.radii):
            for n_index, nlist in enumerate(nlists):
                rline = [p for p in result.radius if p.radius == radius and p.nlist == nlist]
                ax.plot([p.scanned for p in rline], [p.recall for p in rline],
                        color=f"C{r_index % 10}", linestyle=styles[n_index % len(styles)],
                        marker="o", markersize=3,
                        label=f"radius {radius:g} (~{rline[0].exact_matched:,.0f} matches), "
                              f"nlist {nlist}")
        ax.set(xscale="log", xlabel="documents scanned per query", ylabel="recall",
               title="radius recall vs exact radius search", ylim=(0, 1.02))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"ebr tune: {result.documents:,} x {result.dimension}-d, "
                 f"{result.queries:,} queries")
    fig.savefig(path, format="png", dpi=100)
