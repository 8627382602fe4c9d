"""The channel for hashed and categorical features: a sum-pooled ``EmbeddingBag``."""

from __future__ import annotations

import torch
from torch import nn


class BagChannel(nn.Module):
    """``buckets`` learned vectors of width ``dim``; a sample is the weighted sum of its ids'.

    Sum pooling with ``per_sample_weights`` is what both papers describe: Que2Search sums the
    trigram embeddings, EBR weights multi-hot categorical values.  An empty bag gives zeros.
    """

    def __init__(self, buckets: int, dim: int) -> None:
        super().__init__()
        # Sparse gradients: a batch touches a few thousand of the (typically 2^18) rows, and a
        # dense Adam step over the whole table would cost more than the rest of the step.
        self.bag = nn.EmbeddingBag(buckets, dim, mode="sum", sparse=True)
        # Unit-norm-ish rows (std 1/sqrt(dim)) so a bag's sum grows like sqrt(len), as with
        # the transformer channel's LayerNorm'd outputs, rather than PyTorch's N(0, 1) rows.
        nn.init.normal_(self.bag.weight, std=dim**-0.5)
        self.dim = dim

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``ids`` (total,), ``offsets`` (batch,), ``weights`` (total,) → (batch, dim)."""
        pooled: torch.Tensor = self.bag(ids, offsets, per_sample_weights=weights)  # (batch, dim)
        return pooled
