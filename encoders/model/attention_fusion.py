"""Simple attention fusion of a tower's channels (Que2Search Eq. 1).

    w = softmax(proj_N(φ_1 ‖ … ‖ φ_N)),    f = Σ_i w_i φ_i

``proj_N`` is one linear layer from the concatenated channel embeddings to N scores, so each
channel's weight can depend on every channel (Que2Search §3.7: the trigram channel gets more
weight on short queries).  Que2Search reports it beating concatenation + MLP.  The weights are
returned with the fused vector so they can be inspected.
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionFusion(nn.Module):
    """Fuse ``channels`` embeddings of width ``dim`` into one, with softmax channel weights."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels * dim, channels)

    def forward(self, stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``stacked`` (batch, channels, dim) → fused (batch, dim), weights (batch, channels)."""
        scores = self.proj(stacked.flatten(start_dim=1))  # (batch, channels)
        weights = torch.softmax(scores, dim=-1)  # (batch, channels), rows sum to 1
        fused = (weights.unsqueeze(-1) * stacked).sum(dim=1)  # (batch, dim)
        return fused, weights
