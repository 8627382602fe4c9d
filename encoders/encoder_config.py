"""What a two-tower encoder is made of: the channels of each tower and their sizes.

An :class:`EncoderConfig` names the query tower's and the document tower's channels (one per
feature group, each reading one record field), the fusion width, the output dimension and the
hash seed.  Every object validates itself on construction, so an invalid configuration never
exists; :meth:`EncoderConfig.from_dict` adds the JSON path to type errors
(``encoder.query.channels[1].buckets: expected an integer, got '10'``).

Example (JSON)::

    {"output_dim": 64,
     "query": {"hidden_dim": 128, "channels": [
        {"kind": "char_trigrams", "name": "trigrams", "field": "text", "buckets": 50000},
        {"kind": "categorical", "name": "country", "field": "country", "buckets": 300, "dim": 16},
        {"kind": "text_transformer", "name": "text", "field": "text", "vocab_size": 8000}]},
     "doc": {"channels": [
        {"kind": "word_ngrams", "name": "title_words", "field": "title", "buckets": 100000},
        {"kind": "categorical", "name": "category", "field": "categories", "buckets": 1000,
         "multi_valued": true, "weighted": true}]}}
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ebr.config_files import ConfigReader, load_json_object, parse_json_object
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.hashing import DEFAULT_HASH_SEED
from ebr.encoders.setting_checks import check_int

CONFIG_FORMAT = 1
POOLINGS = ("first", "mean")
#: What the two towers share (EBR §2.3: separate networks "with the option of sharing part of
#: the parameters"): nothing; the channels of the same name; or every layer, the two towers
#: then being one network that reads different fields.
WEIGHT_SHARING = ("none", "channels", "all")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")


def _positive(owner: str, name: str, value: int, limit: int = 2**32) -> None:
    check_int(f"{owner}: {name}", value, 1, limit)


def _check_identity(owner: str, name: str, field: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise EncoderConfigError(f"{owner}: name must be a letter then letters, digits or '_' "
                                 f"(at most 64), got {name!r}")
    if not isinstance(field, str) or not field:
        raise EncoderConfigError(f"{owner}: field must be a non-empty string, got {field!r}")


@dataclass(frozen=True, slots=True)
class CharTrigramChannel:
    """Boundary-marked character trigrams of ``field``, hashed into ``buckets``, summed."""

    name: str
    field: str
    buckets: int = 100_000
    dim: int = 128

    kind: ClassVar[str] = "char_trigrams"

    def __post_init__(self) -> None:
        owner = f"channel {self.name!r}"
        _check_identity(owner, self.name, self.field)
        _positive(owner, "buckets", self.buckets)
        _positive(owner, "dim", self.dim, 65536)


@dataclass(frozen=True, slots=True)
class WordNgramChannel:
    """Word n-grams (n = 1..``max_n``) of ``field``, hashed into ``buckets``, summed."""

    name: str
    field: str
    buckets: int = 100_000
    dim: int = 128
    max_n: int = 2

    kind: ClassVar[str] = "word_ngrams"

    def __post_init__(self) -> None:
        owner = f"channel {self.name!r}"
        _check_identity(owner, self.name, self.field)
        _positive(owner, "buckets", self.buckets)
        _positive(owner, "dim", self.dim, 65536)
        _positive(owner, "max_n", self.max_n, 8)


@dataclass(frozen=True, slots=True)
class CategoricalChannel:
    """A categorical feature read from ``field``: one value, or with ``multi_valued`` a list of
    values, or with ``weighted`` too a mapping value → weight (see
    :mod:`ebr.encoders.features.categorical`)."""

    name: str
    field: str
    buckets: int = 1000
    dim: int = 32
    multi_valued: bool = False
    weighted: bool = False

    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        owner = f"channel {self.name!r}"
        _check_identity(owner, self.name, self.field)
        _positive(owner, "buckets", self.buckets)
        _positive(owner, "dim", self.dim, 65536)
        if self.weighted and not self.multi_valued:
            raise EncoderConfigError(f"{owner}: a weighted feature must be multi_valued "
                                     "(weights combine several values)")


@dataclass(frozen=True, slots=True)
class TextTransformerChannel:
    """A small transformer encoder over SentencePiece ids of ``field`` (Que2Search §3.5 sizes).

    ``vocab_size`` must equal the SentencePiece model's; ``pooling`` is ``"first"`` (the start
    token, like XLM's ``[CLS]``) or ``"mean"`` (over the real tokens).
    """

    name: str
    field: str
    vocab_size: int
    max_length: int = 32
    width: int = 128
    layers: int = 2
    heads: int = 4
    ffn_factor: int = 3
    dropout: float = 0.1
    pooling: str = "first"

    kind: ClassVar[str] = "text_transformer"

    def __post_init__(self) -> None:
        owner = f"channel {self.name!r}"
        _check_identity(owner, self.name, self.field)
        _positive(owner, "vocab_size", self.vocab_size, 2**24)
        _positive(owner, "max_length", self.max_length, 4096)
        if self.max_length < 2:
            raise EncoderConfigError(f"{owner}: max_length must be at least 2 (start token + one piece)")
        _positive(owner, "width", self.width, 65536)
        _positive(owner, "layers", self.layers, 64)
        _positive(owner, "heads", self.heads, 256)
        _positive(owner, "ffn_factor", self.ffn_factor, 64)
        if self.width % self.heads:
            raise EncoderConfigError(f"{owner}: width ({self.width}) must be a multiple of heads "
                                     f"({self.heads})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) \
                or not 0.0 <= self.dropout < 1.0:
            raise EncoderConfigError(f"{owner}: dropout must be in [0, 1), got {self.dropout!r}")
        if self.pooling not in POOLINGS:
            raise EncoderConfigError(f"{owner}: pooling must be one of {', '.join(POOLINGS)}, "
                                     f"got {self.pooling!r}")

    @property
    def dim(self) -> int:
        return self.width


ChannelConfig = CharTrigramChannel | WordNgramChannel | CategoricalChannel | TextTransformerChannel
CHANNEL_KINDS: dict[str, type[ChannelConfig]] = {
    c.kind: c for c in (CharTrigramChannel, WordNgramChannel, CategoricalChannel, TextTransformerChannel)
}


@dataclass(frozen=True, slots=True)
class TowerConfig:
    """The channels of one tower, fused at width ``hidden_dim``."""

    channels: tuple[ChannelConfig, ...]
    hidden_dim: int = 128

    def __post_init__(self) -> None:
        if not isinstance(self.channels, tuple):
            raise EncoderConfigError(f"tower: channels must be a tuple of channel configs, "
                                     f"got {type(self.channels).__name__}")
        if not self.channels:
            raise EncoderConfigError("tower: needs at least one channel")
        seen: set[str] = set()
        for channel in self.channels:
            if not isinstance(channel, tuple(CHANNEL_KINDS.values())):
                raise EncoderConfigError(f"tower: {channel!r} is not a channel config")
            if channel.name in seen:
                raise EncoderConfigError(f"tower: channel name {channel.name!r} used twice")
            seen.add(channel.name)
        _positive("tower", "hidden_dim", self.hidden_dim, 65536)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """A two-tower encoder: both towers project to ``output_dim`` and share ``hash_seed``.

    ``weight_sharing`` (one of :data:`WEIGHT_SHARING`): with ``"channels"`` every channel name
    found in both towers is one module (same kind and sizes required; the fields read may
    differ); with ``"all"`` the towers must match channel for channel and are one network.
    Sharing lets words seen only in documents still land near queries that use them, which
    matters when the query log is small.
    """

    query: TowerConfig
    doc: TowerConfig
    output_dim: int = 128
    hash_seed: int = DEFAULT_HASH_SEED
    weight_sharing: str = "none"

    def __post_init__(self) -> None:
        for side in ("query", "doc"):
            if not isinstance(getattr(self, side), TowerConfig):
                raise EncoderConfigError(f"encoder: {side} must be a TowerConfig")
        _positive("encoder", "output_dim", self.output_dim, 65536)
        if isinstance(self.hash_seed, bool) or not isinstance(self.hash_seed, int) \
                or not 0 <= self.hash_seed < 2**32:
            raise EncoderConfigError(f"encoder: hash_seed must be an integer in [0, 2**32), "
                                     f"got {self.hash_seed!r}")
        if self.weight_sharing not in WEIGHT_SHARING:
            raise EncoderConfigError(f"encoder: weight_sharing must be one of {', '.join(WEIGHT_SHARING)}, "
                                     f"got {self.weight_sharing!r}")
        doc_channels = {c.name: c for c in self.doc.channels}
        same_shape = (self.query.channel_names == self.doc.channel_names
                      and self.query.hidden_dim == self.doc.hidden_dim)
        if self.weight_sharing == "all" and not same_shape:
            raise EncoderConfigError("encoder: weight_sharing 'all' needs the same channels, in the same "
                                     "order, and the same hidden_dim in both towers")
        for name in self.shared_channel_names:
            query_channel = self.query.channels[self.query.channel_names.index(name)]
            if _shape(query_channel) != _shape(doc_channels[name]):
                raise EncoderConfigError(f"encoder: channel {name!r} is shared by the towers but its kind "
                                         "or sizes differ between them")

    @property
    def shared_channel_names(self) -> tuple[str, ...]:
        """The channels that are one module in both towers."""
        if self.weight_sharing == "none":
            return ()
        doc_names = set(self.doc.channel_names)
        return tuple(n for n in self.query.channel_names if n in doc_names)

    # -- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CONFIG_FORMAT,
            "output_dim": self.output_dim,
            "hash_seed": self.hash_seed,
            "weight_sharing": self.weight_sharing,
            "query": _tower_to_dict(self.query),
            "doc": _tower_to_dict(self.doc),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderConfig:
        r = ConfigReader(data, "encoder", EncoderConfigError)
        r.only("format", *_field_names(cls))
        fmt = r.value("format", int, CONFIG_FORMAT, check=False)
        if fmt != CONFIG_FORMAT:
            raise EncoderConfigError(f"encoder.format: unsupported encoder config format {fmt!r} "
                                     f"(this ebr reads format {CONFIG_FORMAT})")
        query, doc = _tower_from(r.obj("query")), _tower_from(r.obj("doc"))
        return cls(query=query, doc=doc, **r.fields(cls, skip=("query", "doc")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EncoderConfig:
        return cls.from_dict(parse_json_object(text, "encoder config", EncoderConfigError))

    @classmethod
    def load(cls, path: str | Path) -> EncoderConfig:
        return cls.from_dict(load_json_object(path, "encoder config", EncoderConfigError))


def _shape(channel: ChannelConfig) -> dict[str, Any]:
    """A channel's kind and sizes: everything but the field it reads."""
    return {"kind": channel.kind, **{k: v for k, v in dataclasses.asdict(channel).items() if k != "field"}}


def _tower_to_dict(tower: TowerConfig) -> dict[str, Any]:
    return {
        "hidden_dim": tower.hidden_dim,
        "channels": [{"kind": c.kind, **dataclasses.asdict(c)} for c in tower.channels],
    }


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _tower_from(r: ConfigReader) -> TowerConfig:
    r.only(*_field_names(TowerConfig))
    channels = tuple(_channel_from(c) for c in r.items("channels"))
    settings = r.fields(TowerConfig, skip=("channels",))
    try:
        return TowerConfig(channels, **settings)
    except EncoderConfigError as e:
        raise EncoderConfigError(f"{r.where}: {str(e).removeprefix('tower: ')}") from None


def _channel_from(r: ConfigReader) -> ChannelConfig:
    kind = r.value("kind", str, None, check=False)
    if not isinstance(kind, str) or kind not in CHANNEL_KINDS:
        raise EncoderConfigError(f"{r.where}.kind: expected one of {', '.join(CHANNEL_KINDS)}, got {kind!r}")
    cls = CHANNEL_KINDS[kind]
    r.only("kind", *_field_names(cls))
    settings = r.fields(cls)
    try:
        return cls(**settings)
    except EncoderConfigError as e:
        raise EncoderConfigError(f"{r.where}: {e}") from None
