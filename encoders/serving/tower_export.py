"""A tower as a TorchScript module over plain tensors, for serving without the training code.

TorchScript cannot take the ``{channel: BagBatch | TokenBatch}`` mapping the eager towers read,
so the exported module takes the channels' tensors laid end to end in channel order: a bag
channel gives ``ids, offsets, weights``, a text transformer channel gives ``ids, mask``.
:func:`~ebr.encoders.features.batches.flatten_features` lays a featurized batch out that way; it is
the one definition of the layout, used both when tracing and when serving.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ebr.encoders.features.batches import BagBatch, FeatureBatch, TokenBatch, flatten_features
from ebr.encoders.model.towers import Tower


class _FlatTower(nn.Module):
    """``tower`` called with flat tensors (see the module docstring)."""

    def __init__(self, tower: Tower, kinds: Sequence[str]) -> None:
        super().__init__()
        self.tower = tower
        self.kinds = tuple(kinds)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch: dict[str, FeatureBatch] = {}
        i = 0
        for name, kind in zip(self.tower.channel_names, self.kinds, strict=True):
            if kind == "bag":
                batch[name] = BagBatch(tensors[i], tensors[i + 1], tensors[i + 2])
                i += 3
            else:
                batch[name] = TokenBatch(tensors[i], tensors[i + 1])
                i += 2
        embeddings: torch.Tensor = self.tower(batch)
        return embeddings


def trace_tower(tower: Tower, example: Mapping[str, FeatureBatch]) -> torch.jit.ScriptModule:
    """Trace ``tower`` (in eval mode) on a featurized ``example`` batch.

    The example should hold at least two samples of different lengths, so that nothing
    batch- or length-specific can be mistaken for a constant (the export test checks other
    shapes against the eager tower).
    """
    kinds = ["bag" if isinstance(example[n], BagBatch) else "tokens" for n in tower.channel_names]
    was_training = tower.training
    flat = _FlatTower(tower, kinds).eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The towers' input checks read shapes as Python values; the tracer warns that they
            # become constants, which is what a check should do.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
            traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                flat, flatten_features(example, tower.channel_names), check_trace=False)
            # Freezing inlines the weights as constants: the file is self-contained and the
            # graph is optimised for inference (no dropout, folded parameters).
            frozen: torch.jit.ScriptModule = torch.jit.freeze(traced)
            return frozen
    finally:
        tower.train(was_training)
