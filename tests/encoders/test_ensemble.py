"""Weighted-concatenation ensembles: the cosine identity of EBR Eq. 6, checked numerically."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from ebr.encoders import EncoderConfigError, EncoderInputError, WeightedConcatEnsemble

DIMS = (4, 16, 7)


def random_models(seed: int, batch: int, dims: tuple[int, ...] = DIMS) -> tuple[list[torch.Tensor], ...]:
    """Per-model query and document embeddings with arbitrary norms (the ensemble normalises)."""
    g = torch.Generator().manual_seed(seed)

    def side() -> list[torch.Tensor]:
        return [torch.randn(batch, d, generator=g, dtype=torch.float64)
                * torch.rand(batch, 1, generator=g, dtype=torch.float64).mul(10).add(0.1) for d in dims]

    return side(), side()


def weighted_cosine_sum(
    weights: list[float], query: list[torch.Tensor], doc: list[torch.Tensor], row: int
) -> float:
    """S_w of one pair, straight from the definition in EBR §6.2."""
    total = 0.0
    for w, v, u in zip(weights, query, doc, strict=True):
        a, b = v[row].tolist(), u[row].tolist()
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        total += w * dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    return total


@pytest.mark.parametrize(
    ("seed", "weights"), [(0, [1.0, 0.5, 2.0]), (1, [0.3, 0.3, 0.3]), (2, [4.0, 1e-3, 1.0])]
)
def test_cosine_of_concatenations_is_weighted_cosine_sum_over_constant(
    seed: int, weights: list[float]
) -> None:
    query, doc = random_models(seed, batch=32)
    ensemble = WeightedConcatEnsemble(weights)
    e_q, e_d = ensemble.query(query), ensemble.doc(doc)
    assert e_q.shape == e_d.shape == (32, sum(DIMS))
    constant = math.sqrt(sum(w * w for w in weights)) * math.sqrt(len(weights))
    assert ensemble.normaliser == pytest.approx(constant, rel=1e-12)
    expected = torch.tensor([weighted_cosine_sum(weights, query, doc, i) for i in range(32)],
                            dtype=torch.float64)  # S_w per pair
    cosines = torch.nn.functional.cosine_similarity(e_q, e_d, dim=-1)
    assert torch.allclose(cosines, expected / constant, rtol=1e-10, atol=1e-12)
    assert torch.allclose((e_q * e_d).sum(dim=-1), expected, rtol=1e-10, atol=1e-12)  # the raw dot is S_w
    assert torch.allclose(ensemble.similarity(query, doc), expected, rtol=1e-10, atol=1e-12)
    # The norms Eq. 6 relies on.
    assert torch.allclose(e_q.norm(dim=-1), torch.full((32,), math.sqrt(sum(w * w for w in weights)),
                                                       dtype=torch.float64))
    assert torch.allclose(e_d.norm(dim=-1), torch.full((32,), math.sqrt(len(weights)), dtype=torch.float64))


def test_a_cosine_index_over_the_concatenation_ranks_by_weighted_sum() -> None:
    weights = [1.0, 0.2, 0.7]
    ensemble = WeightedConcatEnsemble(weights)
    query, _ = random_models(3, batch=1)
    _, doc = random_models(4, batch=50)
    e_q, e_d = ensemble.query(query), ensemble.doc(doc)  # (1, D), (50, D)
    by_index = torch.nn.functional.cosine_similarity(e_q, e_d, dim=-1)  # (50,)
    by_definition = torch.tensor([weighted_cosine_sum(weights, [v.expand(50, -1) for v in query], doc, j)
                                  for j in range(50)], dtype=torch.float64)
    assert torch.equal(by_index.argsort(descending=True), by_definition.argsort(descending=True))


def test_weights_only_touch_the_query_side() -> None:
    _, doc = random_models(5, batch=3)
    first, second = WeightedConcatEnsemble([1.0, 2.0, 3.0]), WeightedConcatEnsemble([9.0, 1.0, 0.5])
    assert torch.equal(first.doc(doc), second.doc(doc))


@pytest.mark.parametrize(
    ("weights", "message"),
    [([], "at least one model weight"), ([1.0, 0.0], "weight 1 must be a finite number > 0"),
     ([-1.0], "weight 0"), ([float("nan")], "weight 0"), ([True], "weight 0")],
)
def test_weight_errors(weights: list[Any], message: str) -> None:
    with pytest.raises(EncoderConfigError, match=message):
        WeightedConcatEnsemble(weights)


def test_embedding_errors() -> None:
    query, doc = random_models(6, batch=4)
    ensemble = WeightedConcatEnsemble([1.0, 1.0, 1.0])
    with pytest.raises(EncoderInputError, match="has 3 models, got 2"):
        ensemble.query(query[:2])
    with pytest.raises(EncoderInputError, match="same batch"):
        ensemble.doc([doc[0], doc[1][:3], doc[2]])
    with pytest.raises(EncoderInputError, match=r"\(batch, dim_i\)"):
        ensemble.query([query[0][0], query[1][0], query[2][0]])
