"""Serving the query tower: featurize one request and run the exported TorchScript module.

Loads ``encoder.json``, ``query_tower.pt`` and the vocabulary of a model directory — not the
training code or the eager towers — so a query service needs only torch, the featurizers and
the directory.  One request at a time on one thread is the case it is built for (the latency
benchmark measures it); :meth:`QueryEncoder.encode_batch` serves bulk evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.batches import flatten_features
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.serving.model_files import (
    CONFIG_FILE,
    QUERY_TOWER_FILE,
    ModelInfo,
    read_model_info,
    read_vocabulary,
    tokenizer_for,
)


class QueryEncoder:
    """Query records → unit-norm embeddings with the exported query tower of a model directory."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            raise EncoderConfigError(f"{path} is not a model directory (no such directory)")
        self.info: ModelInfo = read_model_info(path)
        self.config = EncoderConfig.load(path / CONFIG_FILE)
        tokenizer = tokenizer_for(self.config, read_vocabulary(path))
        self.featurizer = TowerFeaturizer(self.config.query, self.config.hash_seed, tokenizer)
        self._channels = self.config.query.channel_names
        try:
            self._module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(path / QUERY_TOWER_FILE), map_location="cpu")
        except (OSError, RuntimeError, ValueError) as e:
            raise EncoderConfigError(f"{path}/{QUERY_TOWER_FILE}: cannot load the exported query "
                                     f"tower ({e})") from None

    @property
    def key(self) -> str:
        """The embedding key (``model-…``) the model's vectors are indexed under."""
        return self.info.key

    def encode(self, record: Mapping[str, Any]) -> npt.NDArray[np.float32]:
        """One query's embedding (output_dim,)."""
        row: npt.NDArray[np.float32] = self.encode_batch([record])[0]
        return row

    def encode_batch(self, records: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        """Embeddings (len(records), output_dim)."""
        features = flatten_features(self.featurizer.featurize(records), self._channels)
        with torch.inference_mode():
            embeddings: torch.Tensor = self._module(*features)
        out: npt.NDArray[np.float32] = embeddings.numpy()
        return out
