"""Writing a trained encoder to a model directory, and loading it into torch's towers.

The directory's files are described in :mod:`ebr.encoders.serving.model_files`.  The hashed
tables can be written in float16 (half the file; the recall change is measured by
``bench/model_files.py``); they are widened to float32 when loaded.

The **fingerprint** is a SHA-256 over the config, the weights and the vocabulary; the
**embedding key** ``model-<9 digits>`` derived from it is the name under which the schema
declares the model's embeddings and queries ask for them (``(nn model-141795009 ...)``), so
vectors of two different models can never be mixed up under one name.  It is taken over the
parameters as the model computes with them (float16 tables widened), so a float16 directory has
its own key and converting it back to float32 keeps that key.
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
from safetensors.torch import save_file
from torch import nn

from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.batches import FeatureBatch
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.model.towers import QueryTower, TwoTowerModel
from ebr.encoders.serving.model_files import (
    ALIASES,
    CONFIG_FILE,
    MODEL_FILE,
    QUERY_TOWER,
    TABLE_PRECISIONS,
    VOCABULARY_FILE,
    WEIGHTS_FILE,
    ModelInfo,
    Weights,
    is_table,
    model_key,
    read_model_info,
    read_vocabulary,
    read_weights,
    tokenizer_for,
)


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
    tables: str = "float32",
) -> ModelInfo:
    """Write ``model`` to the directory ``path`` (replacing a model directory there), its hashed
    tables in ``tables`` precision (``float32`` or ``float16``).

    The files are written to a temporary directory beside ``path`` and moved into place at the
    end, so an interrupted save never leaves a half-written model under the name.
    """
    path = Path(path)
    if tables not in TABLE_PRECISIONS:
        raise EncoderConfigError(f"tables must be one of {', '.join(TABLE_PRECISIONS)}, got {tables!r}")
    if path.exists() and not (path / MODEL_FILE).is_file() and any(path.iterdir()):
        raise EncoderConfigError(f"{path} exists and is not a model directory; not overwriting it")
    config = model.config
    stored, aliases = _stored_tensors(model, tables)
    computed = {name: stored[aliases.get(name, name)].float() for name in model.state_dict()}
    print_ = fingerprint(config, computed, vocabulary)
    info = ModelInfo(model_key(print_), print_, config.output_dim,
                     datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), training, tables)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        (staging / CONFIG_FILE).write_text(config.to_json(), encoding="utf-8")
        save_file(stored, staging / WEIGHTS_FILE, metadata={ALIASES: json.dumps(aliases, sort_keys=True)})
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


def _stored_tensors(model: nn.Module, tables: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The parameters to store, each once (a parameter the towers share under its first name),
    the hashed tables in ``tables`` precision; and each other name of a shared one -> that name."""
    stored: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for name, tensor in model.state_dict().items():
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if identity in first:
            aliases[name] = first[identity]
            continue
        first[identity] = name
        tensor = tensor.detach().cpu()
        if is_table(name) and tables == "float16":
            tensor = tensor.half()
        stored[name] = tensor.contiguous()
    return stored, aliases


def _load_state(module: nn.Module, weights: Weights, prefix: str, where: Path) -> None:
    """Load ``module``'s parameters from the stored ``weights`` named ``prefix`` + its own names
    (float16 tables widened to float32)."""
    tensors: dict[int, torch.Tensor] = {}  # a shared parameter is converted once
    state: dict[str, torch.Tensor] = {}
    for name, array in weights.items():
        if name.startswith(prefix):
            if id(array) not in tensors:
                tensors[id(array)] = torch.from_numpy(np.asarray(array, dtype=np.float32))
            state[name[len(prefix):]] = tensors[id(array)]
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise EncoderConfigError(f"{where}/{WEIGHTS_FILE}: the weights do not fit the encoder config "
                                 f"({e})") from None


def load_query_tower(path: Path, config: EncoderConfig, weights: Weights) -> QueryTower:
    """The query tower alone, in eval mode (what serves a model with a text transformer)."""
    tower = QueryTower(config.query, config.output_dim)
    _load_state(tower, weights, QUERY_TOWER, path)
    return tower.eval()


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
        _load_state(model, read_weights(path), "", path)
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

