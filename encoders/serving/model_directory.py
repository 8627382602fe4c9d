"""Writing a trained encoder to a model directory, and loading it whole (both towers, eager).

The directory's files are described in :mod:`ebr.encoders.serving.model_files`.

The **fingerprint** is a SHA-256 over the config, the weights and the vocabulary; the
**embedding key** ``model-<9 digits>`` derived from it is the name under which the schema
declares the model's embeddings and queries ask for them (``(nn model-141795009 ...)``), so
vectors of two different models can never be mixed up under one name.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.batches import FeatureBatch
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.model.towers import TwoTowerModel
from ebr.encoders.serving.model_files import (
    CONFIG_FILE,
    MODEL_FILE,
    QUERY_TOWER_FILE,
    VOCABULARY_FILE,
    WEIGHTS_FILE,
    ModelInfo,
    model_key,
    read_model_info,
    read_vocabulary,
    tokenizer_for,
)
from ebr.encoders.serving.tower_export import trace_tower


def fingerprint(config: EncoderConfig, state: Mapping[str, torch.Tensor], vocabulary: bytes | None) -> str:
    """SHA-256 over the config's JSON, every tensor (by name, in name order) and the vocabulary."""
    digest = hashlib.sha256(config.to_json().encode("utf-8"))
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode("utf-8"))
        digest.update(str(tensor.dtype).encode("ascii"))
        digest.update(repr(tuple(tensor.shape)).encode("ascii"))
        digest.update(tensor.numpy().tobytes())
    digest.update(vocabulary or b"")
    return digest.hexdigest()


def save_model_directory(
    path: str | Path,
    model: TwoTowerModel,
    vocabulary: bytes | None,
    training: Mapping[str, Any],
) -> ModelInfo:
    """Write ``model`` to the directory ``path`` (replacing a model directory there).

    The files are written to a temporary directory beside ``path`` and moved into place at the
    end, so an interrupted save never leaves a half-written model under the name.
    """
    path = Path(path)
    if path.exists() and not (path / MODEL_FILE).is_file() and any(path.iterdir()):
        raise EncoderConfigError(f"{path} exists and is not a model directory; not overwriting it")
    config = model.config
    # Not cloned: tensors the towers share must stay one storage, or torch.save writes them twice.
    state = model.state_dict()
    print_ = fingerprint(config, state, vocabulary)
    info = ModelInfo(model_key(print_), print_, config.output_dim,
                     datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), training)
    tokenizer = tokenizer_for(config, vocabulary)
    example = TowerFeaturizer(config.query, config.hash_seed, tokenizer).featurize(_example_records(config))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (staging / CONFIG_FILE).write_text(config.to_json(), encoding="utf-8")
        torch.save(state, staging / WEIGHTS_FILE)
        torch.jit.save(trace_tower(model.query_tower, example), str(staging / QUERY_TOWER_FILE))
        if vocabulary is not None:
            (staging / VOCABULARY_FILE).write_bytes(vocabulary)
        (staging / MODEL_FILE).write_text(json.dumps(info.to_dict(), indent=2) + "\n", encoding="utf-8")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


class EncoderModel:
    """A model directory loaded eagerly: both towers, for batched encoding and evaluation."""

    def __init__(self, model: TwoTowerModel, vocabulary: bytes | None, info: ModelInfo | None = None) -> None:
        self.model = model.eval()
        self.config = model.config
        self.info = info
        self.vocabulary = vocabulary
        tokenizer = tokenizer_for(self.config, vocabulary)
        self.query_featurizer = TowerFeaturizer(self.config.query, self.config.hash_seed, tokenizer)
        self.doc_featurizer = TowerFeaturizer(self.config.doc, self.config.hash_seed, tokenizer)

    @classmethod
    def load(cls, path: str | Path) -> EncoderModel:
        path = Path(path)
        if not path.is_dir():
            raise EncoderConfigError(f"{path} is not a model directory (no such directory)")
        info = read_model_info(path)
        config = EncoderConfig.load(path / CONFIG_FILE)
        model = TwoTowerModel(config)
        try:
            state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (OSError, RuntimeError) as e:
            raise EncoderConfigError(f"{path}/{WEIGHTS_FILE}: cannot load the weights ({e})") from None
        return cls(model, read_vocabulary(path), info)

    def encode_docs(self, records: Sequence[Mapping[str, Any]], batch_size: int = 1024,
                    progress: bool = False) -> npt.NDArray[np.float32]:
        """Unit-norm document embeddings (len(records), output_dim), float32."""
        return self._encode(records, batch_size, progress, doc=True)

    def encode_queries(self, records: Sequence[Mapping[str, Any]], batch_size: int = 1024,
                       progress: bool = False) -> npt.NDArray[np.float32]:
        """Unit-norm query embeddings (len(records), output_dim), float32."""
        return self._encode(records, batch_size, progress, doc=False)

    def _encode(self, records: Sequence[Mapping[str, Any]], batch_size: int, progress: bool,
                doc: bool) -> npt.NDArray[np.float32]:
        from tqdm import tqdm  # type: ignore[import-untyped]

        tower = self.model.doc_tower if doc else self.model.query_tower
        featurizer = self.doc_featurizer if doc else self.query_featurizer
        with tqdm(total=len(records), disable=not progress, unit="doc" if doc else "query",
                  desc="encoding", leave=False) as bar:
            def batches() -> Iterator[dict[str, FeatureBatch]]:
                for start in range(0, len(records), batch_size):
                    chunk = records[start:start + batch_size]
                    yield featurizer.featurize(chunk)
                    bar.update(len(chunk))

            return tower.embed(batches(), len(records))


def _example_records(config: EncoderConfig) -> list[dict[str, Any]]:
    """Two query records of different sizes (one with every categorical field missing) to trace
    the query tower with.  A lone value suits every categorical channel kind."""
    short: dict[str, Any] = {}
    long: dict[str, Any] = {}
    for c in config.query.channels:
        categorical = c.kind == "categorical"
        short.setdefault(c.field, None if categorical else "a")
        long.setdefault(c.field, "x" if categorical else "cordless hammer drill with two batteries")
    return [short, long]
