"""Serving the query tower: featurize one request and embed it with the model directory's weights.

A bag-only query tower (trigrams, word n-grams, categorical channels) runs in numpy
(:class:`~ebr.encoders.serving.numpy_tower.NumpyTower`): no torch, so an app backend can
``pip install ebr`` without the encoders extra and serve the model.  A tower with a text
transformer channel runs on torch's eager tower, loaded alone.  Neither loads the training code.
One request at a time on one thread is the case it is built for (the latency benchmark measures
it); :meth:`QueryEncoder.encode_batch` serves bulk evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.serving.model_files import (
    CONFIG_FILE,
    QUERY_TOWER,
    ModelInfo,
    read_model_info,
    read_vocabulary,
    read_weights,
    tokenizer_for,
)
from ebr.encoders.serving.numpy_tower import NumpyTower, is_bag_only
from ebr.encoders.torch_install import TORCH_EXTRA, has_torch

if TYPE_CHECKING:
    from ebr.encoders.model.towers import QueryTower


class QueryEncoder:
    """Query records → unit-norm embeddings with the query tower of a model directory."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            raise EncoderConfigError(f"{path} is not a model directory (no such directory)")
        self.info: ModelInfo = read_model_info(path)
        self.config = EncoderConfig.load(path / CONFIG_FILE)
        bag_only = is_bag_only(self.config.query)
        if not bag_only and not has_torch():
            raise EncoderConfigError(f"{path}: the query tower has a text_transformer channel, which "
                                     f"runs on PyTorch: {TORCH_EXTRA}")
        tokenizer = tokenizer_for(self.config, read_vocabulary(path))
        self.featurizer = TowerFeaturizer(self.config.query, self.config.hash_seed, tokenizer)
        weights = read_weights(path, QUERY_TOWER)
        self._numpy: NumpyTower | None = None
        self._torch: QueryTower | None = None
        if bag_only:
            self._numpy = NumpyTower(self.config.query, self.config.output_dim, weights, QUERY_TOWER)
        else:
            from ebr.encoders.serving.model_directory import load_query_tower

            self._torch = load_query_tower(path, self.config, weights)

    @property
    def key(self) -> str:
        """The embedding key (``model-…``) the model's vectors are indexed under."""
        return self.info.key

    @property
    def runtime(self) -> str:
        """What runs the tower: ``numpy`` (bag-only models) or ``torch``."""
        return "numpy" if self._numpy is not None else "torch"

    def encode(self, record: Mapping[str, Any]) -> npt.NDArray[np.float32]:
        """One query's embedding (output_dim,)."""
        row: npt.NDArray[np.float32] = self.encode_batch([record])[0]
        return row

    def encode_batch(self, records: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        """Embeddings (len(records), output_dim)."""
        if self._numpy is not None:
            return self._numpy.embed(self.featurizer.bags(records))
        import torch

        assert self._torch is not None
        with torch.inference_mode():
            embeddings: npt.NDArray[np.float32] = self._torch(self.featurizer.featurize(records)).numpy()
        return embeddings
