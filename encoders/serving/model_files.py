"""Reading a model directory's files: what every user of a trained model needs, and no more.

The layout (written by :func:`ebr.encoders.serving.model_directory.save_model_directory`)::

    model.json            format, embedding key, fingerprint, output dimension, training summary
    encoder.json          the EncoderConfig (channels of each tower)
    weights.pt            the TwoTowerModel's state dict (eager; batched document encoding)
    query_tower.pt        the query tower traced to TorchScript (serving; see QueryEncoder)
    sentencepiece.model   the vocabulary, when a tower has a text transformer channel

This module imports neither the towers nor the training code, so the serving path
(:mod:`ebr.encoders.serving.query_encoder`) stays light; nor torch until a tokenizer is made,
so reading a model directory's description needs no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebr.config_files import load_json_object
from ebr.encoders.encoder_config import EncoderConfig, TextTransformerChannel
from ebr.encoders.errors import EncoderConfigError

if TYPE_CHECKING:  # the tokenizer imports torch; reading model.json must not need it
    from ebr.encoders.features.tokenizer import SentencePieceTokenizer

MODEL_FORMAT = 1
MODEL_FILE = "model.json"
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "weights.pt"
QUERY_TOWER_FILE = "query_tower.pt"
VOCABULARY_FILE = "sentencepiece.model"
_KEY_DIGITS = 9


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``model.json`` says of a model directory."""

    key: str
    fingerprint: str
    output_dim: int
    created: str
    training: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "key": self.key, "fingerprint": self.fingerprint,
                "output_dim": self.output_dim, "created": self.created, "training": dict(self.training)}


def model_key(fingerprint: str) -> str:
    """The embedding key of a model with this fingerprint: ``model-`` and 9 digits."""
    return f"model-{int(fingerprint[:16], 16) % 10**_KEY_DIGITS:0{_KEY_DIGITS}d}"


def read_model_info(path: str | Path) -> ModelInfo:
    """``model.json`` of the model directory ``path``."""
    data = load_json_object(Path(path) / MODEL_FILE, "model description", EncoderConfigError)
    if data.get("format") != MODEL_FORMAT:
        raise EncoderConfigError(f"{path}: model format {data.get('format')!r} is not one this ebr "
                                 f"reads ({MODEL_FORMAT})")
    try:
        return ModelInfo(str(data["key"]), str(data["fingerprint"]), int(data["output_dim"]),
                         str(data.get("created", "")), dict(data.get("training", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise EncoderConfigError(f"{path}/{MODEL_FILE}: malformed ({e})") from None


def read_vocabulary(path: str | Path) -> bytes | None:
    file = Path(path) / VOCABULARY_FILE
    return file.read_bytes() if file.is_file() else None


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
