"""Offline retrieval metrics: recall@k, graded nDCG@k, MRR@k, and a report averaged over queries.

The per-query functions are pure and take a ranked list of document ids (best first) plus the
judgments of one query.  :func:`evaluate_rankings` applies the Home Depot protocol (docs/architecture.md):

- a document is *relevant* when its relevance is ``>= RELEVANT_AT`` (2.5 on the 1-3 scale);
- ``recall@K`` = |top-K ∩ relevant| / |relevant|;
- ``ndcg@10`` uses the linear gain ``relevance - MIN_RELEVANCE`` (unjudged documents gain 0),
  the discount ``1 / log2(rank + 1)`` and the ideal DCG of the query's judged gains;
- ``mrr@10`` is 1 / the rank of the first relevant document (0 when none is in the top 10);
- every figure is averaged over the queries with at least one relevant document; a query with
  judgments but no relevant document is excluded, a query without a run counts as an empty run.

>>> recall_at_k(["a", "b", "c"], {"b", "z"}, k=2)
0.5
>>> mrr_at_k(["a", "b", "c"], {"c"}, k=10)
0.3333333333333333
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_RELEVANCE",
    "RELEVANT_AT",
    "RetrievalReport",
    "dcg",
    "evaluate_rankings",
    "mrr_at_k",
    "ndcg_at_k",
    "ranked_lists",
    "recall_at_k",
    "top_k_indices",
]

#: Relevance at or above which a judged document counts as relevant (Home Depot 1-3 scale).
RELEVANT_AT = 2.5
#: The lowest relevance grade; nDCG's gain is ``relevance - MIN_RELEVANCE``.
MIN_RELEVANCE = 1.0

D = TypeVar("D", bound=Hashable)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")


def _top(ranked: Sequence[D], k: int) -> Sequence[D]:
    """The first ``k`` ids; a repeated id would be counted twice, so it is an error."""
    _check_k(k)
    top = ranked[:k]
    if len(set(top)) != len(top):
        raise ValueError("the ranked list repeats a document id")
    return top


def recall_at_k(ranked: Sequence[D], relevant: Collection[D], k: int) -> float:
    """|top-k ∩ relevant| / |relevant|.  A list shorter than ``k`` is scored as it is.

    Raises ``ValueError`` when ``relevant`` is empty (recall is undefined there).
    """
    if not relevant:
        raise ValueError("recall is undefined for a query without relevant documents")
    rel = set(relevant)
    return sum(1 for d in _top(ranked, k) if d in rel) / len(rel)


def dcg(gains: Iterable[float]) -> float:
    """Discounted cumulative gain of gains in rank order: sum of ``g / log2(rank + 1)``."""
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def ndcg_at_k(ranked: Sequence[D], gains: Mapping[D, float], k: int) -> float:
    """DCG@k of ``ranked`` over the ideal DCG@k of the judged ``gains`` (unjudged ids gain 0).

    Linear gains (not ``2**g - 1``), as the protocol states.  Raises ``ValueError`` when no
    judged gain is positive (the ideal DCG is 0, nDCG undefined).
    """
    top = _top(ranked, k)
    ideal = dcg(sorted((g for g in gains.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        raise ValueError("nDCG is undefined for a query without a positive gain")
    return dcg(gains.get(d, 0.0) for d in top) / ideal


def mrr_at_k(ranked: Sequence[D], relevant: Collection[D], k: int) -> float:
    """1 / rank of the first relevant id within the top ``k`` (rank from 1); 0 when there is none."""
    rel = set(relevant)
    for rank, d in enumerate(_top(ranked, k), start=1):
        if d in rel:
            return 1.0 / rank
    return 0.0


@dataclass(frozen=True)
class RetrievalReport:
    """Averages over the ``queries`` queries that have at least one relevant document."""

    queries: int
    recall: Mapping[int, float]  # K -> mean recall@K
    ndcg: float
    mrr: float
    ndcg_k: int = 10
    mrr_k: int = 10
    #: Evaluated queries absent from the runs (scored as empty rankings, not dropped).
    missing_runs: int = 0
    #: Per-query values in the same order of metrics as :meth:`columns` (for paired tests).
    per_query: Mapping[str, tuple[float, ...]] = field(default_factory=dict, repr=False, compare=False)

    def columns(self) -> list[str]:
        return ([f"recall@{k}" for k in self.recall] + [f"ndcg@{self.ndcg_k}", f"mrr@{self.mrr_k}"])

    def values(self) -> list[float]:
        return [*self.recall.values(), self.ndcg, self.mrr]

    def markdown_header(self) -> str:
        cols = ["system", "queries", *self.columns()]
        return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)

    def markdown_row(self, system: str) -> str:
        return "| " + " | ".join([system, str(self.queries), *(f"{v:.3f}" for v in self.values())]) + " |"


def evaluate_rankings(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, float]],
    ks: Sequence[int] = (10, 100, 1000),
    *,
    ndcg_k: int = 10,
    mrr_k: int = 10,
    relevant_at: float = RELEVANT_AT,
    min_relevance: float = MIN_RELEVANCE,
) -> RetrievalReport:
    """Average the metrics over the queries of ``qrels`` with a document at ``>= relevant_at``.

    ``runs`` maps a query to its ranked document ids (best first; only the top ``max(ks)`` matter);
    ``qrels`` maps a query to ``{doc id: graded relevance}``.  Runs of unjudged queries are ignored.
    """
    for k in (*ks, ndcg_k, mrr_k):
        _check_k(k)
    per_query: dict[str, tuple[float, ...]] = {}
    missing = 0
    for query, judged in qrels.items():
        relevant = {d for d, r in judged.items() if r >= relevant_at}
        if not relevant:
            continue  # recall and MRR are undefined: excluded from every average, as in the protocol
        if query not in runs:
            missing += 1
        ranked = runs.get(query, ())
        gains = {d: r - min_relevance for d, r in judged.items()}
        per_query[query] = (
            *(recall_at_k(ranked, relevant, k) for k in ks),
            ndcg_at_k(ranked, gains, ndcg_k),
            mrr_at_k(ranked, relevant, mrr_k),
        )
    n = len(per_query)
    if n == 0:
        raise ValueError("no judged query has a relevant document")
    means = np.asarray(list(per_query.values()), dtype=np.float64).mean(axis=0)
    return RetrievalReport(
        queries=n,
        recall={k: float(m) for k, m in zip(ks, means[: len(ks)], strict=True)},
        ndcg=float(means[len(ks)]),
        mrr=float(means[len(ks) + 1]),
        ndcg_k=ndcg_k,
        mrr_k=mrr_k,
        missing_runs=missing,
        per_query=per_query,
    )


def top_k_indices(scores: npt.ArrayLike, k: int) -> npt.NDArray[np.int64]:
    """Column indices of the ``k`` highest scores of each row, best first, shape ``(rows, min(k, cols))``.

    Higher is better (pass ``-distance`` for a distance).  Ties are broken by the lower column
    index, so results do not depend on ``argpartition``'s arbitrary order at the boundary.

    >>> top_k_indices([[0.1, 0.9, 0.9, 0.5]], 2).tolist()
    [[1, 2]]
    """
    _check_k(k)
    s = np.atleast_2d(np.asarray(scores))
    rows, cols = s.shape
    k = min(k, cols)
    out = np.empty((rows, k), dtype=np.int64)
    if k == 0:
        return out
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(s, part, axis=1).min(axis=1)  # the k-th best score of each row
    for i in range(rows):
        cand = np.flatnonzero(s[i] >= kth[i])  # every tie at the boundary, in index order
        out[i] = cand[np.argsort(-s[i, cand], kind="stable")[:k]]
    return out


def ranked_lists(
    queries: Sequence[str], indices: npt.ArrayLike, doc_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Map row ``i`` of a ``(queries, k)`` index array to ``queries[i] -> [doc_ids[j], ...]``.

    Negative indices (Faiss's padding when fewer than k results exist) end the list.
    """
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[0] != len(queries):
        raise ValueError(f"indices must have shape ({len(queries)}, k); got {idx.shape}")
    out: dict[str, list[str]] = {}
    for query, row in zip(queries, idx.tolist(), strict=True):
        ranked: list[str] = []
        for j in row:
            if j < 0:
                break
            ranked.append(doc_ids[j])
        out[query] = ranked
    return out
