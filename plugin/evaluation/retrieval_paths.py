"""Judged queries through retrieval paths: what ``ebr eval`` measures.

A *path* is a query template (:mod:`ebr.request.templates`) run for every judged query through
a :class:`~ebr.request.Searcher`, with or without its reranker; its ranked ids per query are
scored with :func:`ebr.evaluation.metrics.evaluate_rankings`.  The radius sweep (Que2Search
§6.3) runs a path's radius-mode ``nn`` clauses at each of several radii and reports how many
documents the query matched beside the recall, so a radius can be chosen on judged queries
before any online test.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ebr.errors import EbrError
from ebr.evaluation.metrics import MIN_RELEVANCE, RELEVANT_AT, RetrievalReport, evaluate_rankings
from ebr.query.nodes import NN, walk
from ebr.query.parser import parse
from ebr.request.nn_settings import NNSettings
from ebr.request.searcher import Searcher

#: Recall cut-offs reported; the deepest is how many hits each query retrieves.
KS = (10, 100, 1000)
#: The default paths by name: terms only, nn only, hybrid (``{ns}``: the text namespace,
#: ``{k}``: the deepest cut-off, ``{radius}`` / ``{nprobe}``: the hybrid's nn settings).
DEFAULT_TEMPLATES = {
    "terms": "(match {ns} $q :minimum-should-match 1 :k {k})",
    "nn": "(nn $key :k {k})",
    "hybrid": "(or (match {ns} $q :minimum-should-match 1 :k {k}) "
              "(nn $key :radius {radius} :nprobe {nprobe}))",
}
#: The name of the hybrid path run through the reranker, when there is one.
RERANKED = "hybrid+reranker"

#: Called once per query run.
Progress = Callable[[], None]


@dataclass(frozen=True)
class EvalPath:
    name: str
    template: str
    rerank: bool = False


@dataclass
class PathRun:
    """One path over the queries: ranked ids and scores per query, documents matched per
    query, and the queries whose request failed (query -> message; scored as empty runs)."""

    path: EvalPath
    ranked: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepPoint:
    """One radius of the sweep: documents matched per query (mean, median) and the recall
    of the first-stage order at each cut-off."""

    path: str
    radius: float
    mean_matched: float
    median_matched: float
    recall: Mapping[int, float]


def default_paths(namespace: str, *, radius: float, nprobe: int, reranked: bool,
                  k: int = KS[-1]) -> list[EvalPath]:
    values = {"ns": namespace, "k": k, "radius": radius, "nprobe": nprobe}
    paths = [EvalPath(name, t.format(**values)) for name, t in DEFAULT_TEMPLATES.items()]
    if reranked:
        paths.append(EvalPath(RERANKED, paths[-1].template, rerank=True))
    return paths


def run_path(searcher: Searcher, path: EvalPath, queries: Sequence[str], *, depth: int = KS[-1],
             nn: NNSettings | None = None, progress: Progress | None = None) -> PathRun:
    """Every query through ``path``: the first ``depth`` hits each.  A query whose request
    fails (say, its text has no terms for ``match``) is recorded and scored as an empty run;
    when every query fails the first error is raised (the template is wrong)."""
    run = PathRun(path)
    first_error: EbrError | None = None
    for query in queries:
        try:
            response = searcher.search(path.template, text=query, size=depth, nn=nn,
                                       rerank=path.rerank)
        except EbrError as e:
            first_error = first_error or e
            run.failed[query] = str(e).splitlines()[0]
        else:
            run.ranked[query] = response.ids
            run.scores[query] = [h.score for h in response.hits]
            run.matched[query] = response.total
        if progress:
            progress()
    if first_error is not None and not run.ranked:
        raise first_error
    return run


def score(run: PathRun, qrels: Mapping[str, Mapping[str, float]], *, ks: Sequence[int] = KS,
          relevant_at: float = RELEVANT_AT, min_relevance: float = MIN_RELEVANCE) -> RetrievalReport:
    return evaluate_rankings(run.ranked, qrels, ks, relevant_at=relevant_at, min_relevance=min_relevance)


def has_radius_nn(searcher: Searcher, path: EvalPath) -> bool:
    """Whether ``path``'s query holds a radius-mode ``nn`` clause (filled with a stand-in
    text: which clauses a query has does not depend on its text)."""
    query = searcher.render(path.template, "x")
    return any(type(n) is NN and n.radius is not None for n in walk(parse(query, searcher.store.schema)))


def radius_sweep(searcher: Searcher, path: EvalPath, qrels: Mapping[str, Mapping[str, float]],
                 radii: Sequence[float], *, ks: Sequence[int] = KS, relevant_at: float = RELEVANT_AT,
                 min_relevance: float = MIN_RELEVANCE,
                 progress: Progress | None = None) -> list[SweepPoint]:
    """``path`` (first stage, not reranked) at each radius of ``radii``."""
    first_stage = EvalPath(path.name, path.template)
    points = []
    for radius in radii:
        run = run_path(searcher, first_stage, list(qrels), depth=max(ks),
                       nn=NNSettings(radius=radius), progress=progress)
        report = score(run, qrels, ks=ks, relevant_at=relevant_at, min_relevance=min_relevance)
        matched = list(run.matched.values()) or [0]
        points.append(SweepPoint(path.name, radius, statistics.fmean(matched),
                                 statistics.median(matched), dict(report.recall)))
    return points
