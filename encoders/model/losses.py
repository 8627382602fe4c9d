"""Training losses over query and document embeddings.

Each loss is a small module taking embeddings (any norm: they are L2-normalised here, so the
dot products are cosines) and returning a scalar:

- :class:`TripletLoss` — EBR §2 Eq. 2 with the cosine distance ``1 − cos`` and a margin.
- :class:`InBatchSoftmaxLoss` — Que2Search Eq. 2: the other documents of the batch are the
  negatives; cross-entropy over ``scale · cos``.
- :class:`SymmetricInBatchSoftmaxLoss` — Que2Search Eq. 3: Eq. 2 averaged with its
  document → query counterpart.
- :class:`MixedNegativesSoftmaxLoss` — in-batch negatives plus random corpus negatives shared
  by the whole batch (mixed negative sampling), which corrects the popularity bias of purely
  in-batch negatives.
- :class:`HardestNegativeMarginLoss` — Que2Search §3.3 Eq. 5, curriculum stage 2: each query's
  most similar other document in the batch as the negative, margin-rank loss, summed.

The in-batch losses assume row ``i`` of ``doc`` is the positive of row ``i`` of ``query`` and
every other row is a negative; a batch holding the same document twice makes it a false
negative, so batches should not repeat documents.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ebr.encoders.errors import EncoderConfigError, EncoderInputError

REDUCTIONS = ("mean", "sum")


def cosine_matrix(query: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
    """``query`` (batch, dim), ``doc`` (candidates, dim) → cosines (batch, candidates)."""
    return F.normalize(query, dim=-1) @ F.normalize(doc, dim=-1).T


class TripletLoss(nn.Module):
    """``max(0, D(q, d⁺) − D(q, d⁻) + margin)`` with ``D(u, v) = 1 − cos(u, v)`` (EBR §2).

    ``negative`` is (batch, dim) — one negative per query — or (batch, negatives, dim), every
    negative forming its own triplet with the query and its positive.  EBR found the margin
    worth tuning: 5-10% recall between margins.
    """

    def __init__(self, margin: float = 0.2, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = _non_negative("margin", margin)
        self.reduction = _reduction(reduction)

    def forward(self, query: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        _check_pairs(query, positive, "positive")
        if negative.dim() == 2:
            negative = negative.unsqueeze(1)  # (batch, 1, dim)
        if negative.dim() != 3 or negative.shape[0] != query.shape[0] or negative.shape[2] != query.shape[1]:
            raise EncoderInputError(f"negative must be (batch, dim) or (batch, negatives, dim) matching "
                                    f"query {tuple(query.shape)}, got {tuple(negative.shape)}")
        q = F.normalize(query, dim=-1)  # (batch, dim)
        pos_cos = (q * F.normalize(positive, dim=-1)).sum(dim=-1)  # (batch,)
        neg_cos = torch.einsum("bd,bkd->bk", q, F.normalize(negative, dim=-1))  # (batch, negatives)
        # D(q, d⁺) − D(q, d⁻) = (1 − pos_cos) − (1 − neg_cos) = neg_cos − pos_cos
        losses = F.relu(neg_cos - pos_cos.unsqueeze(1) + self.margin)  # (batch, negatives)
        return _reduce(losses, self.reduction)


class InBatchSoftmaxLoss(nn.Module):
    """Scaled in-batch softmax cross-entropy, Que2Search Eq. 2, averaged over the batch.

    ``loss_i = −log( exp(s·cos(q_i, d_i)) / Σ_j exp(s·cos(q_i, d_j)) )``; the scale ``s``
    (15-20 in the paper) is what lets cosines in [−1, 1] give a peaked softmax.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = _positive("scale", scale)

    def forward(self, query: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
        _check_pairs(query, doc, "doc")
        logits = self.scale * cosine_matrix(query, doc)  # (batch, batch); row i: query i
        targets = torch.arange(query.shape[0], device=query.device)  # (batch,)
        return F.cross_entropy(logits, targets)


class SymmetricInBatchSoftmaxLoss(nn.Module):
    """Que2Search Eq. 3: the mean of the query → document and document → query in-batch
    softmax losses (the latter normalises each document's column over the batch's queries).

    Optional ``corpus_negatives`` (extra, dim) join the query → document candidates, as in
    :class:`MixedNegativesSoftmaxLoss`; the document → query direction has only the batch's
    queries to choose from.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = _positive("scale", scale)

    def forward(self, query: torch.Tensor, doc: torch.Tensor,
                corpus_negatives: torch.Tensor | None = None) -> torch.Tensor:
        _check_pairs(query, doc, "doc")
        candidates = doc if corpus_negatives is None else _with_negatives(query, doc, corpus_negatives)
        logits = self.scale * cosine_matrix(query, candidates)  # (batch, batch + extra)
        targets = torch.arange(query.shape[0], device=query.device)  # (batch,)
        backward = logits[:, : query.shape[0]].T  # (batch docs, batch queries)
        return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(backward, targets))


class MixedNegativesSoftmaxLoss(nn.Module):
    """In-batch softmax whose candidate set is the batch's documents followed by
    ``corpus_negatives`` (extra, shared, typically sampled uniformly from the corpus).

    ``query`` (batch, dim), ``doc`` (batch, dim), ``corpus_negatives`` (extra, dim); the
    logits are ``scale · cos`` over the (batch + extra) candidates and query ``i``'s class is
    candidate ``i``.  With no extra negatives it equals :class:`InBatchSoftmaxLoss`.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        self.scale = _positive("scale", scale)

    def forward(self, query: torch.Tensor, doc: torch.Tensor, corpus_negatives: torch.Tensor) -> torch.Tensor:
        _check_pairs(query, doc, "doc")
        candidates = _with_negatives(query, doc, corpus_negatives)  # (batch + extra, dim)
        logits = self.scale * cosine_matrix(query, candidates)  # (batch, batch + extra)
        targets = torch.arange(query.shape[0], device=query.device)  # (batch,)
        return F.cross_entropy(logits, targets)


class HardestNegativeMarginLoss(nn.Module):
    """Que2Search §3.3, Eq. 5: ``max(0, margin − [cos(q_i, d_i) − cos(q_i, d_n)])`` where
    ``n = argmax_{j≠i} cos(q_i, d_j)`` is the hardest in-batch negative.

    For curriculum stage 2, after in-batch softmax training has converged.  The paper found a
    margin of 0.1-0.2 and ``reduction="sum"`` best.  Needs a batch of at least two.
    """

    def __init__(self, margin: float = 0.1, reduction: str = "sum") -> None:
        super().__init__()
        self.margin = _non_negative("margin", margin)
        self.reduction = _reduction(reduction)

    def forward(self, query: torch.Tensor, doc: torch.Tensor) -> torch.Tensor:
        _check_pairs(query, doc, "doc")
        if query.shape[0] < 2:
            raise EncoderInputError("the hardest in-batch negative needs a batch of at least 2 pairs")
        cos = cosine_matrix(query, doc)  # (batch, batch)
        positive = cos.diagonal()  # (batch,)
        diagonal = torch.eye(cos.shape[0], dtype=torch.bool, device=cos.device)  # (batch, batch)
        hardest = cos.masked_fill(diagonal, float("-inf")).max(dim=1).values  # (batch,)
        losses = F.relu(self.margin - (positive - hardest))  # (batch,)
        return _reduce(losses, self.reduction)


def _check_pairs(query: torch.Tensor, other: torch.Tensor, name: str) -> None:
    if query.dim() != 2 or query.shape[0] < 1:
        raise EncoderInputError(f"query must be a non-empty (batch, dim) tensor, got {tuple(query.shape)}")
    if other.shape != query.shape:
        raise EncoderInputError(f"{name} must have the query's shape {tuple(query.shape)}, "
                                f"got {tuple(other.shape)}")


def _with_negatives(query: torch.Tensor, doc: torch.Tensor, corpus_negatives: torch.Tensor) -> torch.Tensor:
    if corpus_negatives.dim() != 2 or corpus_negatives.shape[1] != query.shape[1]:
        raise EncoderInputError(f"corpus_negatives must be (extra, {query.shape[1]}), "
                                f"got {tuple(corpus_negatives.shape)}")
    return torch.cat([doc, corpus_negatives], dim=0)  # (batch + extra, dim)


def _reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    return losses.sum() if reduction == "sum" else losses.mean()


def _finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EncoderConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if _finite(name, value) <= 0:
        raise EncoderConfigError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if _finite(name, value) < 0:
        raise EncoderConfigError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise EncoderConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    return reduction
