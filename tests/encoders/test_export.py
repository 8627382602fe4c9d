"""Model directories: the exported query tower serves the eager model's embeddings, the
fingerprint names the model, and serving loads none of the training code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ebr.encoders.encoder_config import (
    CategoricalChannel,
    CharTrigramChannel,
    EncoderConfig,
    TextTransformerChannel,
    TowerConfig,
    WordNgramChannel,
)
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.tokenizer import SentencePieceTokenizer
from ebr.encoders.model.towers import TwoTowerModel
from ebr.encoders.serving.model_directory import EncoderModel, fingerprint, save_model_directory
from ebr.encoders.serving.model_files import QUERY_TOWER_FILE, read_model_info
from ebr.encoders.serving.query_encoder import QueryEncoder

#: Exported and eager embeddings agree to float32 rounding (the traced graph is frozen and
#: fused, so the order of some additions differs).
TOLERANCE = 1e-5
QUERIES = [
    {"text": "cordless drill", "country": "us"},
    {"text": "a"},
    {"text": "", "country": "ca"},
    {"text": "deck over paint gallon with primer and sealer for wood and concrete surfaces " * 3},
]


def config(vocab_size: int) -> EncoderConfig:
    return EncoderConfig(
        query=TowerConfig((CharTrigramChannel("trigrams", "text", 4096, 16),
                           TextTransformerChannel("text", "text", vocab_size, max_length=16, width=32),
                           CategoricalChannel("country", "country", 50, 8)), hidden_dim=32),
        doc=TowerConfig((CharTrigramChannel("trigrams", "title", 4096, 16),
                         WordNgramChannel("words", "title", 4096, 16)), hidden_dim=32),
        output_dim=24, weight_sharing="channels")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, sentencepiece_path: Path) -> tuple[Path, TwoTowerModel]:
    vocabulary = sentencepiece_path.read_bytes()
    tokenizer = SentencePieceTokenizer(vocabulary, 16)
    torch.manual_seed(3)
    model = TwoTowerModel(config(tokenizer.vocab_size)).eval()
    path = tmp_path_factory.mktemp("models") / "model"
    save_model_directory(path, model, vocabulary, {"note": "test"})
    return path, model


def test_the_exported_query_tower_gives_the_eager_embeddings(saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    served = QueryEncoder(path)
    eager = EncoderModel(model, (path / "sentencepiece.model").read_bytes())
    # Batch sizes and lengths other than those the tower was traced with.
    for batch in ([QUERIES[0]], QUERIES, QUERIES[1:3], [QUERIES[3]] * 5):
        expected = eager.encode_queries(batch)
        got = served.encode_batch(batch)
        assert got.shape == expected.shape == (len(batch), 24)
        np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    one = eager.encode_queries([QUERIES[0]])[0]
    np.testing.assert_allclose(served.encode(QUERIES[0]), one, atol=TOLERANCE)
    assert np.allclose(np.linalg.norm(served.encode_batch(QUERIES), axis=1), 1.0, atol=1e-5)


def test_a_loaded_model_directory_is_the_saved_model(saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    loaded = EncoderModel.load(path)
    assert loaded.config == model.config
    docs = [{"title": "Simpson Strong-Tie 12-Gauge Angle"}, {"title": "x"}]
    original = EncoderModel(model, (path / "sentencepiece.model").read_bytes())
    np.testing.assert_array_equal(loaded.encode_docs(docs), original.encode_docs(docs))
    assert loaded.info is not None and loaded.info.training == {"note": "test"}


def test_shared_tables_are_saved_once(saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    unique = sum(p.numel() * p.element_size() for p in model.parameters())  # shared ones once
    shared = model.query_tower.channels[0].bag.weight
    assert model.doc_tower.channels[0].bag.weight is shared
    assert (path / "weights.pt").stat().st_size < unique + shared.numel() * shared.element_size() // 2


def test_the_fingerprint_names_the_weights(saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    info = read_model_info(path)
    assert re.fullmatch(r"model-\d{9}", info.key)
    vocabulary = (path / "sentencepiece.model").read_bytes()
    state = model.state_dict()
    assert fingerprint(model.config, state, vocabulary) == info.fingerprint
    changed = {k: v.clone() for k, v in state.items()}
    first = next(iter(changed))
    changed[first][0] += 1e-3
    assert fingerprint(model.config, changed, vocabulary) != info.fingerprint
    assert fingerprint(model.config, state, vocabulary + b"\0") != info.fingerprint


def test_serving_imports_no_training_code(saved: tuple[Path, TwoTowerModel]) -> None:
    path, _ = saved
    script = (
        "import sys, json\n"
        "from ebr.encoders.serving.query_encoder import QueryEncoder\n"
        f"v = QueryEncoder({str(path)!r}).encode({{'text': 'drill', 'country': 'us'}})\n"
        "heavy = [m for m in ('ebr.encoders.model', 'ebr.encoders.training',\n"
        "         'ebr.encoders.serving.model_directory', 'faiss') if m in sys.modules]\n"
        "print(json.dumps({'dim': len(v), 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"dim": 24, "heavy": []}


def test_saving_replaces_a_model_but_never_another_directory(saved: tuple[Path, TwoTowerModel],
                                                              tmp_path: Path) -> None:
    _, model = saved
    vocabulary = (saved[0] / "sentencepiece.model").read_bytes()
    target = tmp_path / "m"
    first = save_model_directory(target, model, vocabulary, {})
    second = save_model_directory(target, model, vocabulary, {"again": True})
    assert first.key == second.key and read_model_info(target).training == {"again": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging left behind
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(EncoderConfigError, match="not a model directory"):
        save_model_directory(other, model, vocabulary, {})
    assert (other / "keep.txt").read_text() == "mine"


def test_a_damaged_model_directory_is_a_clean_error(saved: tuple[Path, TwoTowerModel],
                                                    tmp_path: Path) -> None:
    _, model = saved
    target = tmp_path / "m"
    save_model_directory(target, model, (saved[0] / "sentencepiece.model").read_bytes(), {})
    (target / QUERY_TOWER_FILE).write_bytes(b"not a torchscript archive")
    with pytest.raises(EncoderConfigError, match="cannot load the exported query tower"):
        QueryEncoder(target)
    with pytest.raises(EncoderConfigError, match="not a model directory"):
        QueryEncoder(tmp_path / "missing")
    (target / "model.json").write_text('{"format": 99}')
    with pytest.raises(EncoderConfigError, match="model format 99"):
        EncoderModel.load(target)
