"""The figures a training run reports: batch recall@K, ROC AUC, KNN recall@K over the corpus.

- **Batch recall@K** (Que2Search §5): among a batch's documents, is a query's own document in
  its top K?  Cheap, computed on every training batch and on validation batches.
- **ROC AUC** on labelled pairs (Que2Search §5): how well the cosine separates pairs labelled
  relevant from pairs labelled not, when the data has both.
- **KNN recall@K** (EBR §6): over the whole document corpus, the fraction of a query's
  relevant documents found among its K nearest by cosine (exact, with a Faiss flat index).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch


def batch_recall_at_k(query: torch.Tensor, doc: torch.Tensor, k: int) -> float:
    """The fraction of rows ``i`` whose document ``i`` ranks in the top ``k`` of row ``i``'s
    scores over ``doc`` (ties count against: rank = how many other documents score at least as
    high, so embeddings collapsed to one point score 0, not 1)."""
    with torch.no_grad():
        scores = query @ doc.T  # (batch, batch)
        positive = scores.diagonal().unsqueeze(1)  # (batch, 1)
        rank = (scores >= positive).sum(dim=1) - 1  # (batch,); the diagonal itself is not counted
        return float((rank < k).float().mean())


def roc_auc(
    scores: Sequence[float] | npt.NDArray[np.floating], labels: Sequence[bool] | npt.NDArray[np.bool_]
) -> float | None:
    """Area under the ROC curve of ``scores`` for the binary ``labels`` (the Mann-Whitney U
    statistic, ties counted half); None when only one class is present."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    # Average ranks (1-based) over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[y].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def knn_recall_at_k(
    queries: npt.NDArray[np.float32],
    relevant: Sequence[set[int]],
    corpus: npt.NDArray[np.float32],
    k: int,
) -> float:
    """Mean over queries (those with a relevant document) of |top-k ∩ relevant| / |relevant|;
    ``relevant[i]`` holds row numbers of ``corpus``; embeddings are unit norm (cosine = dot)."""
    import faiss

    rows = [i for i, r in enumerate(relevant) if r]
    if not rows:
        return 0.0
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(np.ascontiguousarray(corpus, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(queries[rows], dtype=np.float32), min(k, len(corpus)))
    found = [len(relevant[i].intersection(ids[j].tolist())) / len(relevant[i]) for j, i in enumerate(rows)]
    return float(np.mean(found))
