"""Encoder configuration: JSON round trip and one clear error per kind of mistake."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from encoder_samples import make_config

from ebr.encoders import (
    CategoricalChannel,
    CharTrigramChannel,
    EncoderConfig,
    EncoderConfigError,
    TextTransformerChannel,
    TowerConfig,
)
from ebr.errors import EbrError


def test_json_round_trip(tmp_path: Path) -> None:
    for pooling in ("first", "mean"):
        config = make_config(pooling)
        text = config.to_json()
        assert EncoderConfig.from_json(text) == config
        assert json.loads(text)["query"]["channels"][2]["kind"] == "text_transformer"
        path = tmp_path / "encoder.json"
        path.write_text(text)
        assert EncoderConfig.load(path) == config


def test_defaults_fill_omitted_keys() -> None:
    config = EncoderConfig.from_dict({
        "query": {"channels": [{"kind": "char_trigrams", "name": "q", "field": "text"}]},
        "doc": {"channels": [
            {"kind": "text_transformer", "name": "d", "field": "title", "vocab_size": 8000},
        ]},
    })
    assert config.query.channels[0] == CharTrigramChannel("q", "text")
    transformer = config.doc.channels[0]
    assert isinstance(transformer, TextTransformerChannel)
    sizes = (transformer.layers, transformer.heads, transformer.width, transformer.ffn_factor)
    assert sizes == (2, 4, 128, 3)
    assert transformer.pooling == "first" and transformer.dropout == 0.1


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of the sample config's dict: set (or, with ``...``, delete) ``path``."""
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is ...:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("doc", ...), r"encoder\.doc: missing"),
        (_set("format", 2), r"encoder\.format: unsupported encoder config format 2"),
        (_set("output_dim", 0), r"encoder: output_dim must be an integer in \[1, 65536\], got 0"),
        (_set("output_dim", "64"), r"encoder\.output_dim: expected an integer, got '64'"),
        (_set("hash_seed", -1), r"hash_seed must be an integer in \[0, 2\*\*32\)"),
        (_set("outputdim", 3), r"encoder: unknown key 'outputdim'"),
        (_set("query.channels", []), r"encoder\.query: needs at least one channel"),
        (_set("query.hidden_dim", True), r"encoder\.query\.hidden_dim: expected an integer, got True"),
        (_set("query.channels.0.kind", "image"), r"encoder\.query\.channels\[0\]\.kind: expected one of"),
        (_set("query.channels.0.bucket", 10), r"encoder\.query\.channels\[0\]: unknown key 'bucket'"),
        (_set("query.channels.0.buckets", "10"),
         r"encoder\.query\.channels\[0\]\.buckets: expected an integer, got '10'"),
        (_set("query.channels.0.buckets", 0),
         r"encoder\.query\.channels\[0\]: channel 'trigrams': buckets must be an integer"),
        (_set("query.channels.0.name", "has space"), r"channel 'has space': name must be a letter"),
        (_set("query.channels.0.field", ""), r"field must be a non-empty string"),
        (_set("query.channels.1.name", "trigrams"), r"encoder\.query: channel name 'trigrams' used twice"),
        (_set("doc.channels.2.multi_valued", False), r"a weighted feature must be multi_valued"),
        (_set("query.channels.2.vocab_size", ...), r"channels\[2\]\.vocab_size: missing"),
        (_set("query.channels.2.width", 30), r"width \(30\) must be a multiple of heads \(4\)"),
        (_set("query.channels.2.pooling", "max"), r"pooling must be one of first, mean, got 'max'"),
        (_set("query.channels.2.dropout", 1.0), r"dropout must be in \[0, 1\)"),
        (_set("query.channels.2.dropout", "0.1"), r"dropout: expected a number"),
        (_set("query.channels.2.max_length", 1), r"max_length must be at least 2"),
        (_set("query", []), r"encoder\.query: expected an object, got list"),
        (_set("query.channels.0.kind", ["x"]),
         r"encoder\.query\.channels\[0\]\.kind: expected one of .*got \['x'\]"),
        (_set("query.hidden_dim", 1.0), r"^encoder\.query\.hidden_dim: expected an integer, got 1\.0$"),
    ],
)
def test_config_errors(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    data = copy.deepcopy(make_config().to_dict())
    mutate(data)
    with pytest.raises(EncoderConfigError, match=message):
        EncoderConfig.from_dict(data)


def test_a_misspelt_key_is_unknown_before_the_key_it_misspells_is_missing() -> None:
    data = copy.deepcopy(make_config().to_dict())
    data["query"]["channels"][2]["vocabsize"] = data["query"]["channels"][2].pop("vocab_size")
    with pytest.raises(EncoderConfigError,
                       match=r"encoder\.query\.channels\[2\]: unknown key 'vocabsize'"):
        EncoderConfig.from_dict(data)
    data = copy.deepcopy(make_config().to_dict())
    data["quer"] = data.pop("query")
    with pytest.raises(EncoderConfigError,
                       match=r"^encoder: unknown key 'quer'; known: doc, format, hash_seed, "
                             r"output_dim, query, weight_sharing$"):
        EncoderConfig.from_dict(data)


def test_construction_validates_too() -> None:
    with pytest.raises(EncoderConfigError, match="must be multi_valued"):
        CategoricalChannel("c", "country", weighted=True)
    with pytest.raises(EncoderConfigError, match="channels must be a tuple of channel configs, got list"):
        TowerConfig([CharTrigramChannel("q", "text")])  # type: ignore[arg-type]
    with pytest.raises(EncoderConfigError, match="not a channel config"):
        TowerConfig(("trigrams",))  # type: ignore[arg-type]
    with pytest.raises(EncoderConfigError, match="heads"):
        TextTransformerChannel("t", "text", vocab_size=100, width=128, heads=3)


def test_file_errors_are_ebr_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderConfigError, match="cannot read encoder config"):
        EncoderConfig.load(tmp_path / "absent.json")
    with pytest.raises(EbrError, match="not valid JSON"):
        EncoderConfig.from_json("{")
