"""Featurized batches: the tensors the tower channels consume.

A :class:`BagBatch` is the input of :class:`torch.nn.EmbeddingBag` in ``sum`` mode: every
sample's ids laid end to end, where each sample starts, and one weight per id.  A
:class:`TokenBatch` is a padded matrix of token ids with its mask, for the text transformer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ebr.encoders.errors import EncoderInputError


@dataclass(frozen=True, slots=True)
class BagBatch:
    """Variable-size bags of ids for ``EmbeddingBag(mode="sum")``.

    ``ids`` (total,) int64, ``offsets`` (batch,) int64 where sample ``i`` starts in ``ids``,
    ``weights`` (total,) float32 — the ``per_sample_weights``.  A sample may be an empty bag;
    ``EmbeddingBag`` gives it the zero vector.
    """

    ids: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor

    @classmethod
    def from_bags(
        cls, bags: Sequence[Sequence[int]], weights: Sequence[Sequence[float]] | None = None
    ) -> BagBatch:
        """Pack one list of ids per sample (and optionally one weight per id; default 1.0)."""
        if weights is not None and (
            len(weights) != len(bags) or any(len(w) != len(b) for w, b in zip(weights, bags, strict=True))
        ):
            raise EncoderInputError("bag weights must give one weight per id of every bag")
        offsets: list[int] = []
        flat: list[int] = []
        for bag in bags:
            offsets.append(len(flat))
            flat.extend(bag)
        flat_weights = [w for ws in weights for w in ws] if weights is not None else [1.0] * len(flat)
        return cls(
            ids=torch.tensor(flat, dtype=torch.int64),
            offsets=torch.tensor(offsets, dtype=torch.int64),
            weights=torch.tensor(flat_weights, dtype=torch.float32),
        )

    @property
    def batch_size(self) -> int:
        return int(self.offsets.shape[0])

    def bag(self, i: int) -> tuple[list[int], list[float]]:
        """The ids and weights of sample ``i`` (for inspection and tests)."""
        start = int(self.offsets[i])
        end = int(self.offsets[i + 1]) if i + 1 < self.batch_size else int(self.ids.shape[0])
        return self.ids[start:end].tolist(), self.weights[start:end].tolist()

    def to(self, device: torch.device | str) -> BagBatch:
        return BagBatch(self.ids.to(device), self.offsets.to(device), self.weights.to(device))


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """Token ids padded to the batch's longest row: ``ids`` (batch, length) int64 and ``mask``
    (batch, length) bool, True on real tokens.  Every row holds at least one real token."""

    ids: torch.Tensor
    mask: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.ids.shape[0])

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(self.ids.to(device), self.mask.to(device))


FeatureBatch = BagBatch | TokenBatch
"""What one channel of a tower consumes."""

