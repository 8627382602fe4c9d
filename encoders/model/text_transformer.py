"""The raw-text channel: a small transformer encoder over SentencePiece ids (Que2Search §3.1).

Defaults follow Que2Search §3.5's latency/quality choice for the query side: 2 layers,
4 heads, width 128, feed-forward 3x the width, dropout 0.1.  Post-LayerNorm layers with an
embedding LayerNorm, as in BERT/XLM; learned positions up to ``max_length``.
"""

from __future__ import annotations

import torch
from torch import nn

from ebr.encoders.encoder_config import POOLINGS
from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.tokenizer import PAD_ID


class TextTransformer(nn.Module):
    """Token ids and mask → one vector per text, pooled by the first token or the mean."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        width: int = 128,
        layers: int = 2,
        heads: int = 4,
        ffn_factor: int = 3,
        dropout: float = 0.1,
        pooling: str = "first",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise EncoderConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.tokens = nn.Embedding(vocab_size, width, padding_idx=PAD_ID)
        self.positions = nn.Embedding(max_length, width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=ffn_factor * width, dropout=dropout,
            activation="gelu", batch_first=True,
        )
        # Nested tensors only pay off for long, ragged batches; short queries gain nothing.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pooling = pooling
        self.max_length = max_length
        self.dim = width

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``ids`` (batch, length) int64, ``mask`` (batch, length) bool, True on tokens → (batch, width)."""
        length = ids.shape[1]
        if length > self.max_length:
            raise EncoderInputError(f"token batch has length {length}, more than max_length "
                                    f"{self.max_length}")
        positions = torch.arange(length, device=ids.device)  # (length,)
        embedded = self.tokens(ids) + self.positions(positions)  # (batch, length, width)
        embedded = self.dropout(self.norm(embedded))
        x: torch.Tensor = self.encoder(embedded, src_key_padding_mask=~mask)  # (batch, length, width)
        if self.pooling == "first":
            return x[:, 0]  # (batch, width): the start token, like XLM's [CLS]
        weights = mask.unsqueeze(-1).to(x.dtype)  # (batch, length, 1)
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # (batch, width)
