"""Losses against plain reference computations (value and gradient) and sanity properties.

The references below are written from the papers' formulas, one scalar at a time, with no
code shared with ``ebr.encoders.model.losses``.  Everything runs in float64 so the comparison can be
tight: values and gradients must agree within ``rtol=1e-7, atol=1e-10``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

from ebr.encoders import (
    EncoderConfigError,
    EncoderInputError,
    HardestNegativeMarginLoss,
    InBatchSoftmaxLoss,
    MixedNegativesSoftmaxLoss,
    SymmetricInBatchSoftmaxLoss,
    TripletLoss,
    cosine_matrix,
)

RTOL, ATOL = 1e-7, 1e-10
BATCH, DIM = 7, 12

Tensor = torch.Tensor


# -- references ---------------------------------------------------------------------------------

def cos(u: Tensor, v: Tensor) -> Tensor:
    return torch.dot(u, v) / (torch.sqrt(torch.dot(u, u)) * torch.sqrt(torch.dot(v, v)))


def hinge(x: Tensor) -> Tensor:
    return torch.where(x > 0, x, torch.zeros_like(x))


def log_softmax_at(logits: Sequence[Tensor], target: int) -> Tensor:
    return logits[target] - torch.log(torch.stack([torch.exp(z) for z in logits]).sum())


def ref_triplet(q: Tensor, pos: Tensor, neg: Tensor, margin: float, reduction: str) -> Tensor:
    """EBR Eq. 2 with D = 1 - cos; ``neg`` is (batch, negatives, dim)."""
    terms = [hinge((1 - cos(q[i], pos[i])) - (1 - cos(q[i], neg[i, k])) + margin)
             for i in range(q.shape[0]) for k in range(neg.shape[1])]
    total = torch.stack(terms).sum()
    return total if reduction == "sum" else total / len(terms)


def ref_softmax(q: Tensor, candidates: Tensor, scale: float) -> Tensor:
    """Que2Search Eq. 2 over ``candidates`` (query i's positive is candidate i), batch mean."""
    losses = [-log_softmax_at([scale * cos(q[i], c) for c in candidates], i) for i in range(q.shape[0])]
    return torch.stack(losses).mean()


def ref_symmetric(q: Tensor, d: Tensor, scale: float) -> Tensor:
    """Que2Search Eq. 3: per pair, half the query→doc and half the doc→query log-likelihood."""
    losses = []
    for i in range(q.shape[0]):
        to_doc = log_softmax_at([scale * cos(q[i], d[j]) for j in range(d.shape[0])], i)
        to_query = log_softmax_at([scale * cos(q[j], d[i]) for j in range(q.shape[0])], i)
        losses.append(-0.5 * (to_doc + to_query))
    return torch.stack(losses).mean()


def ref_hardest(q: Tensor, d: Tensor, margin: float, reduction: str) -> Tensor:
    """Que2Search Eq. 5 with n = argmax_{j != i} cos(q_i, d_j)."""
    losses = []
    for i in range(q.shape[0]):
        hardest = max((cos(q[i], d[j]) for j in range(d.shape[0]) if j != i),
                      key=lambda c: float(c.detach()))
        losses.append(hinge(margin - (cos(q[i], d[i]) - hardest)))
    total = torch.stack(losses).sum()
    return total if reduction == "sum" else total / len(losses)


# -- value and gradient against the references --------------------------------------------------

def leaves(*shapes: tuple[int, ...], seed: int = 0) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    # Unequal norms on purpose: the losses must normalise their inputs.
    return [(torch.randn(*s, generator=generator, dtype=torch.float64)
             * torch.rand(*s[:-1], 1, generator=generator, dtype=torch.float64).add(0.5)).requires_grad_()
            for s in shapes]


def assert_same_value_and_gradients(
    loss: Callable[..., Tensor], reference: Callable[..., Tensor], inputs: list[Tensor]
) -> None:
    value = loss(*inputs)
    expected = reference(*[x.detach().clone().requires_grad_() for x in inputs])
    assert value.shape == () and expected.shape == ()
    assert torch.allclose(value, expected, rtol=RTOL, atol=ATOL), (float(value), float(expected))
    copies = [x.detach().clone().requires_grad_() for x in inputs]
    grads = torch.autograd.grad(loss(*inputs), inputs)
    ref_grads = torch.autograd.grad(reference(*copies), copies)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, r, rtol=RTOL, atol=ATOL), float((g - r).abs().max())
    assert any(float(g.abs().max()) > 0 for g in grads)  # a vacuous all-zero gradient proves nothing


@pytest.mark.parametrize(("margin", "reduction", "negatives"),
                         [(0.2, "mean", 1), (0.5, "sum", 1), (0.3, "mean", 4), (0.0, "sum", 3)])
def test_triplet_matches_reference(margin: float, reduction: str, negatives: int) -> None:
    q, pos, neg = leaves((BATCH, DIM), (BATCH, DIM), (BATCH, negatives, DIM))
    loss = TripletLoss(margin, reduction)
    assert_same_value_and_gradients(loss, lambda a, b, c: ref_triplet(a, b, c, margin, reduction),
                                     [q, pos, neg])
    if negatives == 1:  # a (batch, dim) negative is the same as one negative per query
        assert torch.allclose(loss(q, pos, neg[:, 0]), loss(q, pos, neg), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("scale", [20.0, 1.0, 15.0])
def test_in_batch_softmax_matches_reference(scale: float) -> None:
    q, d = leaves((BATCH, DIM), (BATCH, DIM), seed=1)
    assert_same_value_and_gradients(InBatchSoftmaxLoss(scale), lambda a, b: ref_softmax(a, b, scale), [q, d])


@pytest.mark.parametrize("scale", [20.0, 3.0])
def test_symmetric_in_batch_softmax_matches_reference(scale: float) -> None:
    q, d = leaves((BATCH, DIM), (BATCH, DIM), seed=2)
    assert_same_value_and_gradients(
        SymmetricInBatchSoftmaxLoss(scale), lambda a, b: ref_symmetric(a, b, scale), [q, d])


@pytest.mark.parametrize("extra", [5, 1])
def test_mixed_negatives_matches_reference(extra: int) -> None:
    q, d, negatives = leaves((BATCH, DIM), (BATCH, DIM), (extra, DIM), seed=3)
    assert_same_value_and_gradients(
        MixedNegativesSoftmaxLoss(20.0), lambda a, b, c: ref_softmax(a, torch.cat([b, c]), 20.0),
        [q, d, negatives])


@pytest.mark.parametrize(("margin", "reduction"), [(0.1, "sum"), (0.2, "sum"), (0.15, "mean")])
def test_hardest_negative_matches_reference(margin: float, reduction: str) -> None:
    q, d = leaves((BATCH, DIM), (BATCH, DIM), seed=4)
    assert_same_value_and_gradients(HardestNegativeMarginLoss(margin, reduction),
                                     lambda a, b: ref_hardest(a, b, margin, reduction), [q, d])


def test_hardest_negative_may_be_dissimilar() -> None:
    # Every other document points away from the query: the hardest negative has a negative
    # cosine and must still be chosen over the (masked) positive.
    eye = torch.eye(4, dtype=torch.float64)
    q = eye.clone().requires_grad_()
    d = (eye - 0.5 * (1 - eye)).requires_grad_()  # cos(q_i, d_j) = -0.5/|d_j| for j != i
    assert float(cosine_matrix(q, d).detach().masked_fill(eye.bool(), -1.0).max()) < 0
    assert_same_value_and_gradients(HardestNegativeMarginLoss(2.0, "sum"),
                                     lambda a, b: ref_hardest(a, b, 2.0, "sum"), [q, d])


def test_defaults_follow_the_papers() -> None:
    assert InBatchSoftmaxLoss().scale == SymmetricInBatchSoftmaxLoss().scale == 20.0
    assert MixedNegativesSoftmaxLoss().scale == 20.0
    hardest = HardestNegativeMarginLoss()
    assert 0.1 <= hardest.margin <= 0.2 and hardest.reduction == "sum"


# -- sanity properties --------------------------------------------------------------------------

def aligned_and_shuffled() -> tuple[Tensor, Tensor, Tensor]:
    """Queries, documents near their own query, and the same documents in another order."""
    generator = torch.Generator().manual_seed(5)
    q = torch.randn(16, DIM, generator=generator)
    d = q + 0.3 * torch.randn(16, DIM, generator=generator)
    return q, d, d.roll(1, dims=0)


@pytest.mark.parametrize(
    "loss",
    [InBatchSoftmaxLoss(), SymmetricInBatchSoftmaxLoss(), HardestNegativeMarginLoss(0.2)],
    ids=["softmax", "symmetric", "hardest"],
)
def test_aligned_pairs_cost_less_than_shuffled(loss: torch.nn.Module) -> None:
    q, aligned, shuffled = aligned_and_shuffled()
    assert float(loss(q, aligned)) < float(loss(q, shuffled))


def test_triplet_prefers_the_true_positive() -> None:
    q, aligned, shuffled = aligned_and_shuffled()
    loss = TripletLoss(0.2)
    assert float(loss(q, aligned, shuffled)) < float(loss(q, shuffled, aligned))
    assert float(TripletLoss(0.0)(q, q, -q)) == 0.0  # far negative, no margin: nothing to learn


def test_mixed_negatives_extends_in_batch_softmax() -> None:
    q, d, _ = aligned_and_shuffled()
    mixed = MixedNegativesSoftmaxLoss(20.0)
    in_batch = InBatchSoftmaxLoss(20.0)(q, d)
    assert torch.allclose(mixed(q, d, torch.empty(0, DIM)), in_batch)
    # More candidates in the denominator can only raise the loss.
    corpus_negatives = torch.randn(32, DIM, generator=torch.Generator().manual_seed(6))
    assert float(mixed(q, d, corpus_negatives)) > float(in_batch)


def test_sum_reduction_is_batch_times_mean() -> None:
    q, d, _ = aligned_and_shuffled()
    total = HardestNegativeMarginLoss(0.2, "sum")(q, d)
    assert torch.allclose(total, 16 * HardestNegativeMarginLoss(0.2, "mean")(q, d))


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: InBatchSoftmaxLoss(0.0), "scale must be > 0"),
        (lambda: SymmetricInBatchSoftmaxLoss(float("inf")), "scale must be a finite number"),
        (lambda: MixedNegativesSoftmaxLoss(-1), "scale must be > 0"),
        (lambda: TripletLoss(-0.1), "margin must be >= 0"),
        (lambda: TripletLoss(0.2, "max"), "reduction must be one of mean, sum"),
        (lambda: HardestNegativeMarginLoss(True), "margin must be a finite number"),
    ],
)
def test_config_errors(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(EncoderConfigError, match=message):
        make()


def test_input_errors() -> None:
    q, d = torch.randn(4, DIM), torch.randn(4, DIM)
    with pytest.raises(EncoderInputError, match="doc must have the query's shape"):
        InBatchSoftmaxLoss()(q, d[:3])
    with pytest.raises(EncoderInputError, match="query must be a non-empty"):
        SymmetricInBatchSoftmaxLoss()(q[0], d[0])
    with pytest.raises(EncoderInputError, match="corpus_negatives must be"):
        MixedNegativesSoftmaxLoss()(q, d, torch.randn(3, DIM + 1))
    with pytest.raises(EncoderInputError, match="at least 2 pairs"):
        HardestNegativeMarginLoss()(q[:1], d[:1])
    with pytest.raises(EncoderInputError, match="negative must be"):
        TripletLoss()(q, d, torch.randn(3, DIM))
