"""SymmetricInBatchSoftmaxLoss with corpus negatives, against a plain reference (value and gradient).

The reference is written one scalar at a time from the definition: the query → document
direction is a softmax over the batch's documents followed by the extra negatives; the
document → query direction is a softmax over the batch's queries only.  float64 throughout.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ebr.encoders import EncoderInputError, InBatchSoftmaxLoss, SymmetricInBatchSoftmaxLoss

RTOL, ATOL = 1e-7, 1e-10
BATCH, DIM = 6, 10

Tensor = torch.Tensor


def cos(u: Tensor, v: Tensor) -> Tensor:
    return torch.dot(u, v) / (torch.sqrt(torch.dot(u, u)) * torch.sqrt(torch.dot(v, v)))


def log_softmax_at(logits: list[Tensor], target: int) -> Tensor:
    return logits[target] - torch.log(torch.stack([torch.exp(z) for z in logits]).sum())


def ref_symmetric(q: Tensor, d: Tensor, negatives: Tensor | None, scale: float) -> Tensor:
    candidates = list(d) + ([] if negatives is None else list(negatives))
    losses = []
    for i in range(q.shape[0]):
        to_doc = log_softmax_at([scale * cos(q[i], c) for c in candidates], i)
        to_query = log_softmax_at([scale * cos(q[j], d[i]) for j in range(q.shape[0])], i)
        losses.append(-0.5 * (to_doc + to_query))
    return torch.stack(losses).mean()


def leaves(*shapes: tuple[int, ...], seed: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    # Unequal norms on purpose: the loss must normalise its inputs.
    return [(torch.randn(*s, generator=generator, dtype=torch.float64)
             * torch.rand(*s[:-1], 1, generator=generator, dtype=torch.float64).add(0.5)).requires_grad_()
            for s in shapes]


@pytest.mark.parametrize(("extra", "scale"), [(1, 20.0), (5, 20.0), (17, 3.0)])
def test_with_negatives_matches_reference(extra: int, scale: float) -> None:
    q, d, n = leaves((BATCH, DIM), (BATCH, DIM), (extra, DIM), seed=extra)
    loss = SymmetricInBatchSoftmaxLoss(scale)
    value = loss(q, d, n)
    copies = [x.detach().clone().requires_grad_() for x in (q, d, n)]
    expected = ref_symmetric(*copies, scale)
    assert value.shape == () and torch.allclose(value, expected, rtol=RTOL, atol=ATOL), (float(value),
                                                                                         float(expected))
    grads = torch.autograd.grad(value, (q, d, n))
    ref_grads = torch.autograd.grad(expected, copies)
    for g, r in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, r, rtol=RTOL, atol=ATOL), float((g - r).abs().max())
    assert float(grads[2].abs().max()) > 0  # the negatives are trained against


def test_without_negatives_it_is_the_plain_symmetric_loss() -> None:
    q, d = leaves((BATCH, DIM), (BATCH, DIM), seed=11)
    loss = SymmetricInBatchSoftmaxLoss(20.0)
    assert torch.allclose(loss(q, d), ref_symmetric(q, d, None, 20.0), rtol=RTOL, atol=ATOL)
    assert torch.equal(loss(q, d, None), loss(q, d))
    # An empty set of negatives changes nothing either.
    none = torch.empty(0, DIM, dtype=torch.float64)
    assert torch.allclose(loss(q, d, none), loss(q, d), rtol=RTOL, atol=ATOL)


def test_negatives_affect_only_the_query_to_document_direction() -> None:
    q, d, n = (x.detach() for x in leaves((BATCH, DIM), (BATCH, DIM), (4, DIM), seed=12))
    symmetric = SymmetricInBatchSoftmaxLoss(20.0)
    # Half the plain query → doc softmax over (batch + extra), half the doc → query softmax over the batch.
    logits = 20.0 * F.normalize(q, dim=-1) @ F.normalize(torch.cat([d, n]), dim=-1).T  # (batch, batch + 4)
    to_doc = F.cross_entropy(logits, torch.arange(BATCH))
    to_query = InBatchSoftmaxLoss(20.0)(d, q)  # doc → query: in-batch softmax with the roles swapped
    assert torch.allclose(symmetric(q, d, n), 0.5 * (to_doc + to_query), rtol=RTOL, atol=ATOL)
    assert float(symmetric(q, d, n)) > float(symmetric(q, d))  # more candidates, a higher loss


def test_bad_negatives_shape() -> None:
    q, d = torch.randn(4, DIM), torch.randn(4, DIM)
    with pytest.raises(EncoderInputError, match=r"corpus_negatives must be \(extra, 10\), got \(3, 11\)"):
        SymmetricInBatchSoftmaxLoss()(q, d, torch.randn(3, DIM + 1))
    with pytest.raises(EncoderInputError, match=r"corpus_negatives must be \(extra, 10\), got \(10,\)"):
        SymmetricInBatchSoftmaxLoss()(q, d, torch.randn(DIM))
