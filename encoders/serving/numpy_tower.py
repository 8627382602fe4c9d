"""The query tower of a bag-only model in numpy: serving without torch.

A tower whose channels are all hashed bags (character trigrams, word n-grams, categorical) is
a few lines of arithmetic: each channel sums its ids' rows (weighted), is projected to the
hidden width when narrower or wider, the channels are fused by softmax attention (Que2Search
Eq. 1), projected to the output and L2-normalised — what :class:`~ebr.encoders.model.towers.Tower`
computes, on the same stored parameters.  Numpy rather than ONNX Runtime: these models need no
runtime (one request is a few row gathers and three small matrix products), the tables stay the
one stored copy (an ONNX graph would embed them again), and an app backend adds no dependency.
Models with a text transformer channel are served by torch
(:func:`~ebr.encoders.serving.model_directory.load_query_tower`).

float16 tables are widened to float32 row by row as they are gathered, so the arithmetic is the
torch tower's, in float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.encoders.encoder_config import TextTransformerChannel, TowerConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.tower_featurizer import Bag
from ebr.encoders.serving.model_files import Weights

FloatArray = npt.NDArray[np.float32]


def is_bag_only(tower: TowerConfig) -> bool:
    """Whether every channel of ``tower`` is a hashed bag (what :class:`NumpyTower` serves)."""
    return not any(isinstance(c, TextTransformerChannel) for c in tower.channels)


class NumpyTower:
    """A bag-only tower from the parameters stored under ``prefix`` (``query_tower.``)."""

    def __init__(self, config: TowerConfig, output_dim: int, weights: Weights, prefix: str) -> None:
        if not is_bag_only(config):
            raise EncoderConfigError("the numpy tower serves bag channels only; this tower has a "
                                     "text_transformer channel")
        self.channel_names = config.channel_names
        self._tables: list[npt.NDArray[Any]] = []
        self._to_hidden: list[tuple[FloatArray, FloatArray] | None] = []
        for i, c in enumerate(config.channels):
            assert not isinstance(c, TextTransformerChannel)  # is_bag_only, above
            table = _parameter(weights, f"{prefix}channels.{i}.bag.weight", (c.buckets, c.dim))
            self._tables.append(table)
            self._to_hidden.append(None if c.dim == config.hidden_dim else
                                   _linear(weights, f"{prefix}to_hidden.{i}", c.dim, config.hidden_dim))
        width = len(config.channels) * config.hidden_dim
        self._fusion = _linear(weights, f"{prefix}fusion.proj", width, len(config.channels))
        self._output = _linear(weights, f"{prefix}output", config.hidden_dim, output_dim)
        self.hidden_dim = config.hidden_dim
        self.output_dim = output_dim

    def embed(self, bags: Mapping[str, Sequence[Bag]]) -> FloatArray:
        """Unit-norm embeddings (n, output_dim) of the featurized bags of n records
        (:meth:`~ebr.encoders.features.tower_featurizer.TowerFeaturizer.bags`)."""
        n = len(bags[self.channel_names[0]])
        stacked = np.empty((n, len(self.channel_names), self.hidden_dim), dtype=np.float32)
        for j, (name, table, to_hidden) in enumerate(
                zip(self.channel_names, self._tables, self._to_hidden, strict=True)):
            pooled = np.empty((n, table.shape[1]), dtype=np.float32)  # (n, dim_c)
            for i, (ids, weights) in enumerate(bags[name]):
                rows = table[np.asarray(ids, dtype=np.intp)].astype(np.float32, copy=False)  # (k, dim_c)
                pooled[i] = np.asarray(weights, dtype=np.float32) @ rows
            stacked[:, j] = pooled if to_hidden is None else pooled @ to_hidden[0] + to_hidden[1]
        scores = stacked.reshape(n, -1) @ self._fusion[0] + self._fusion[1]  # (n, channels)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        attention = scores / scores.sum(axis=1, keepdims=True)  # rows sum to 1
        fused = np.einsum("nc,nch->nh", attention, stacked)  # (n, hidden)
        out = fused @ self._output[0] + self._output[1]  # (n, output_dim)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)  # F.normalize's eps
        embeddings: FloatArray = (out / norms).astype(np.float32, copy=False)
        return embeddings


def _parameter(weights: Weights, name: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    array = weights.get(name)
    if array is None or array.shape != shape:
        found = "missing" if array is None else f"of shape {array.shape}"
        raise EncoderConfigError(f"the weights do not fit the encoder config: {name} is {found}, "
                                 f"expected {shape}")
    return array


def _linear(weights: Weights, name: str, inputs: int, outputs: int) -> tuple[FloatArray, FloatArray]:
    """A torch ``Linear``'s weight, transposed for ``x @ w``, and its bias, as float32."""
    weight = _parameter(weights, f"{name}.weight", (outputs, inputs))
    bias = _parameter(weights, f"{name}.bias", (outputs,))
    return (np.ascontiguousarray(weight.T, dtype=np.float32), np.asarray(bias, dtype=np.float32))
