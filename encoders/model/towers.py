"""Query and document towers: channels → attention fusion → projection → L2 normalisation.

Each configured channel turns its featurized input into a vector (an ``EmbeddingBag`` for
hashed and categorical features, a small transformer for SentencePiece ids), projected to the
tower's ``hidden_dim`` when its width differs; :class:`AttentionFusion` mixes the channels
(Que2Search Eq. 1); a linear layer maps to ``output_dim`` and the result is L2-normalised, so
the dot product of a query and a document embedding is their cosine (EBR Eq. 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from ebr.encoders.encoder_config import ChannelConfig, EncoderConfig, TextTransformerChannel, TowerConfig
from ebr.encoders.errors import EncoderInputError
from ebr.encoders.features.batches import BagBatch, FeatureBatch, TokenBatch
from ebr.encoders.model.attention_fusion import AttentionFusion
from ebr.encoders.model.bag_channel import BagChannel
from ebr.encoders.model.text_transformer import TextTransformer


@dataclass(frozen=True, slots=True)
class TowerOutput:
    """Embeddings (batch, output_dim), unit norm, and the fusion weights (batch, channels) —
    row-stochastic, column ``j`` belonging to ``channel_names[j]`` (Que2Search §3.7)."""

    embeddings: torch.Tensor
    channel_weights: torch.Tensor
    channel_names: tuple[str, ...]


class Tower(nn.Module):
    """One side of the two-tower model, built from a :class:`TowerConfig`."""

    def __init__(self, config: TowerConfig, output_dim: int) -> None:
        super().__init__()
        self.config = config
        self.channel_names = config.channel_names
        # A ModuleList, not a ModuleDict: channel names such as "keys" or "type" would clash
        # with ModuleDict's own attributes.
        self.channels = nn.ModuleList(_channel_module(c) for c in config.channels)
        self.to_hidden = nn.ModuleList(
            nn.Identity() if c.dim == config.hidden_dim else nn.Linear(c.dim, config.hidden_dim)
            for c in config.channels
        )
        self.fusion = AttentionFusion(len(config.channels), config.hidden_dim)
        self.output = nn.Linear(config.hidden_dim, output_dim)

    def encode_with_weights(self, batch: Mapping[str, FeatureBatch]) -> TowerOutput:
        """Embeddings and the channel attention weights of a featurized batch."""
        vectors: list[torch.Tensor] = []
        for name, channel, to_hidden in zip(self.channel_names, self.channels, self.to_hidden, strict=True):
            features = batch.get(name)
            if isinstance(channel, BagChannel):
                if not isinstance(features, BagBatch):
                    raise EncoderInputError(_wrong_input(name, "a BagBatch", features))
                vector = channel(features.ids, features.offsets, features.weights)  # (batch, dim_c)
            else:
                if not isinstance(features, TokenBatch):
                    raise EncoderInputError(_wrong_input(name, "a TokenBatch", features))
                vector = channel(features.ids, features.mask)  # (batch, width)
            vectors.append(to_hidden(vector))  # (batch, hidden)
        sizes = {int(v.shape[0]) for v in vectors}
        if len(sizes) != 1:
            raise EncoderInputError(f"channels disagree on the batch size: {sorted(sizes)}")
        stacked = torch.stack(vectors, dim=1)  # (batch, channels, hidden)
        fused, weights = self.fusion(stacked)  # (batch, hidden), (batch, channels)
        embeddings = F.normalize(self.output(fused), dim=-1)  # (batch, output_dim)
        return TowerOutput(embeddings, weights, self.channel_names)

    def forward(self, batch: Mapping[str, FeatureBatch]) -> torch.Tensor:
        """Unit-norm embeddings (batch, output_dim)."""
        return self.encode_with_weights(batch).embeddings

    def embed(self, batches: Iterable[Mapping[str, FeatureBatch]], total: int) -> npt.NDArray[np.float32]:
        """Embeddings of ``batches`` (``total`` rows in all) as one float32 array, computed in
        eval mode without gradients; the training mode is restored afterwards."""
        was_training = self.training
        self.eval()
        out = np.empty((total, self.output.out_features), dtype=np.float32)
        done = 0
        try:
            with torch.no_grad():
                for batch in batches:
                    embeddings = self(batch).numpy()
                    out[done:done + len(embeddings)] = embeddings
                    done += len(embeddings)
        finally:
            self.train(was_training)
        return out


class QueryTower(Tower):
    """The query side (EBR Fig. 2: query text + searcher context)."""

    def encode_query(self, batch: Mapping[str, FeatureBatch]) -> torch.Tensor:
        """Unit-norm query embeddings (batch, output_dim)."""
        embeddings: torch.Tensor = self(batch)
        return embeddings


class DocumentTower(Tower):
    """The document side (EBR Fig. 2: document text + document context)."""

    def encode_doc(self, batch: Mapping[str, FeatureBatch]) -> torch.Tensor:
        """Unit-norm document embeddings (batch, output_dim)."""
        embeddings: torch.Tensor = self(batch)
        return embeddings


class TwoTowerModel(nn.Module):
    """The separate query and document towers of one :class:`EncoderConfig`.

    By default the towers share no parameters (EBR §2.3); ``config.weight_sharing`` makes
    channels, or everything, one module in both.  Either way the query tower holds all it
    needs, so it can be exported and served on its own.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.query_tower = QueryTower(config.query, config.output_dim)
        self.doc_tower = DocumentTower(config.doc, config.output_dim)
        for name in config.shared_channel_names:
            q = self.query_tower.channel_names.index(name)
            d = self.doc_tower.channel_names.index(name)
            self.doc_tower.channels[d] = self.query_tower.channels[q]
            self.doc_tower.to_hidden[d] = self.query_tower.to_hidden[q]
        if config.weight_sharing == "all":
            self.doc_tower.fusion = self.query_tower.fusion
            self.doc_tower.output = self.query_tower.output

    def encode_query(self, batch: Mapping[str, FeatureBatch]) -> torch.Tensor:
        """Unit-norm query embeddings (batch, output_dim)."""
        return self.query_tower.encode_query(batch)

    def encode_doc(self, batch: Mapping[str, FeatureBatch]) -> torch.Tensor:
        """Unit-norm document embeddings (batch, output_dim)."""
        return self.doc_tower.encode_doc(batch)


def _channel_module(c: ChannelConfig) -> nn.Module:
    if isinstance(c, TextTransformerChannel):
        return TextTransformer(c.vocab_size, c.max_length, c.width, c.layers, c.heads,
                               c.ffn_factor, c.dropout, c.pooling)
    return BagChannel(c.buckets, c.dim)


def _wrong_input(name: str, expected: str, got: object) -> str:
    found = "nothing" if got is None else type(got).__name__
    return f"channel {name!r}: expected {expected}, got {found}"
