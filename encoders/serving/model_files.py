"""Reading a model directory's files: what every user of a trained model needs, and no more.

The layout (written by :func:`ebr.encoders.serving.model_directory.save_model_directory`)::

    model.json            format, embedding key, fingerprint, output dimension, tables' precision,
                          training summary
    encoder.json          the EncoderConfig (channels of each tower)
    weights.safetensors   the TwoTowerModel's parameters, each stored once: a parameter the towers
                          share is stored under its first name, the others listed as aliases in
                          the file's metadata; the hashed tables in float32 or float16
    sentencepiece.model   the vocabulary, when a tower has a text transformer channel

Format 1 (before the tables were stored once) held ``weights.pt`` (torch's pickle of the state
dict) and ``query_tower.pt`` (the query tower as TorchScript, the tables a second time); it is
still read, through torch, from ``weights.pt`` alone.  ``ebr convert-model`` rewrites it.

This module imports neither torch nor the towers: reading a model's description and weights
needs numpy and safetensors, so a query service of a bag-only model needs no torch
(:mod:`ebr.encoders.serving.numpy_tower`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError, safe_open

from ebr.config_files import load_json_object
from ebr.encoders.encoder_config import EncoderConfig, TextTransformerChannel
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.torch_install import TORCH_EXTRA, has_torch

if TYPE_CHECKING:  # the tokenizer imports torch; reading model.json must not need it
    from ebr.encoders.features.tokenizer import SentencePieceTokenizer

MODEL_FORMAT = 2
_READABLE_FORMATS = (1, 2)
MODEL_FILE = "model.json"
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "weights.safetensors"
VOCABULARY_FILE = "sentencepiece.model"
#: Format 1's weights (torch's pickle), read through torch.
LEGACY_WEIGHTS_FILE = "weights.pt"
#: The precisions the hashed embedding tables can be stored in (the dense layers stay float32).
TABLE_PRECISIONS = ("float32", "float16")
#: The metadata entry of the weights file naming each shared parameter's stored name.
ALIASES = "aliases"
#: The state-dict prefix of the query tower's parameters.
QUERY_TOWER = "query_tower."
_TABLE_SUFFIX = ".bag.weight"
_KEY_DIGITS = 9

Weights = Mapping[str, npt.NDArray[Any]]
"""A model's parameters by state-dict name, as stored (float32, or float16 tables)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``model.json`` says of a model directory."""

    key: str
    fingerprint: str
    output_dim: int
    created: str
    training: Mapping[str, Any]
    tables: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "key": self.key, "fingerprint": self.fingerprint,
                "output_dim": self.output_dim, "created": self.created, "tables": self.tables,
                "training": dict(self.training)}


def model_key(fingerprint: str) -> str:
    """The embedding key of a model with this fingerprint: ``model-`` and 9 digits."""
    return f"model-{int(fingerprint[:16], 16) % 10**_KEY_DIGITS:0{_KEY_DIGITS}d}"


def is_table(name: str) -> bool:
    """Whether the parameter ``name`` is a hashed embedding table (a bag channel's rows)."""
    return name.endswith(_TABLE_SUFFIX)


def read_model_info(path: str | Path) -> ModelInfo:
    """``model.json`` of the model directory ``path``."""
    data = load_json_object(Path(path) / MODEL_FILE, "model description", EncoderConfigError)
    if data.get("format") not in _READABLE_FORMATS:
        raise EncoderConfigError(f"{path}: model format {data.get('format')!r} is not one this ebr "
                                 f"reads ({', '.join(map(str, _READABLE_FORMATS))})")
    try:
        return ModelInfo(str(data["key"]), str(data["fingerprint"]), int(data["output_dim"]),
                         str(data.get("created", "")), dict(data.get("training", {})),
                         str(data.get("tables", "float32")))
    except (KeyError, TypeError, ValueError) as e:
        raise EncoderConfigError(f"{path}/{MODEL_FILE}: malformed ({e})") from None


def read_vocabulary(path: str | Path) -> bytes | None:
    file = Path(path) / VOCABULARY_FILE
    return file.read_bytes() if file.is_file() else None


def read_weights(path: str | Path, prefix: str = "") -> dict[str, npt.NDArray[Any]]:
    """The parameters of the model directory ``path`` whose names start with ``prefix`` (all by
    default; ``query_tower.`` for a query service), by state-dict name, as stored; a shared
    parameter is one array under each of its names."""
    path = Path(path)
    file = path / WEIGHTS_FILE
    if not file.is_file():
        if (path / LEGACY_WEIGHTS_FILE).is_file():
            return {n: a for n, a in _read_legacy_weights(path).items() if n.startswith(prefix)}
        raise EncoderConfigError(f"{path}: no {WEIGHTS_FILE}; not a complete model directory")
    try:
        with safe_open(file, framework="numpy") as stored:
            aliases = json.loads((stored.metadata() or {}).get(ALIASES, "{}"))
            wanted = {n: n for n in stored.keys() if n.startswith(prefix)}
            wanted.update((a, n) for a, n in aliases.items() if a.startswith(prefix))
            arrays = {n: stored.get_tensor(n) for n in set(wanted.values())}
    except (OSError, SafetensorError, ValueError, KeyError, AttributeError) as e:
        raise EncoderConfigError(f"{file}: cannot read the weights ({type(e).__name__}: {e})") from None
    return {name: arrays[stored_as] for name, stored_as in wanted.items()}


def _read_legacy_weights(path: Path) -> dict[str, npt.NDArray[Any]]:
    if not has_torch():
        raise EncoderConfigError(
            f"{path} is a model directory of an older ebr ({LEGACY_WEIGHTS_FILE}, torch's format), "
            f"which needs PyTorch to read: convert it once where torch is installed "
            f"(ebr convert-model {path} --output NEW_DIR), or {TORCH_EXTRA}")
    import pickle

    import torch

    try:
        state = torch.load(path / LEGACY_WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:
        raise EncoderConfigError(f"{path}/{LEGACY_WEIGHTS_FILE}: cannot load the weights ({e})") from None
    return {name: np.asarray(tensor.numpy()) for name, tensor in state.items()}


def tokenizer_for(config: EncoderConfig, vocabulary: bytes | None) -> SentencePieceTokenizer | None:
    """The SentencePiece tokenizer the config's text transformer channels need (None if none)."""
    lengths = [c.max_length for t in (config.query, config.doc) for c in t.channels
               if isinstance(c, TextTransformerChannel)]
    if not lengths:
        return None
    if vocabulary is None:
        raise EncoderConfigError("the encoder has a text_transformer channel but no SentencePiece model")
    from ebr.encoders.features.tokenizer import SentencePieceTokenizer

    return SentencePieceTokenizer(vocabulary, max(lengths))
