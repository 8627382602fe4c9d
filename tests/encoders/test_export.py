"""Model directories: the served query tower gives the eager model's embeddings (numpy for
bag-only towers, torch otherwise), tables are stored once, float16 tables halve the file,
the fingerprint names the model, format-1 directories still load, and serving a bag-only
model needs neither torch nor the training code."""

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from ebr.encoders.serving.model_files import (
    LEGACY_WEIGHTS_FILE,
    MODEL_FILE,
    WEIGHTS_FILE,
    read_model_info,
    read_weights,
)
from ebr.encoders.serving.query_encoder import QueryEncoder

#: Served and eager embeddings agree to float32 rounding (sums in another order).
TOLERANCE = 1e-5
QUERIES = [
    {"text": "cordless drill", "country": "us"},
    {"text": "a"},
    {"text": "", "country": "ca"},
    {"text": "deck over paint gallon with primer and sealer for wood and concrete surfaces " * 3},
]
#: Run in a subprocess: import torch is refused the standard way (None in sys.modules).
NO_TORCH = "import sys\nsys.modules['torch'] = None\n"


def config(vocab_size: int) -> EncoderConfig:
    return EncoderConfig(
        query=TowerConfig((CharTrigramChannel("trigrams", "text", 4096, 16),
                           TextTransformerChannel("text", "text", vocab_size, max_length=16, width=32),
                           CategoricalChannel("country", "country", 50, 8)), hidden_dim=32),
        doc=TowerConfig((CharTrigramChannel("trigrams", "title", 4096, 16),
                         WordNgramChannel("words", "title", 4096, 16)), hidden_dim=32),
        output_dim=24, weight_sharing="channels")


def bag_config(sharing: str) -> EncoderConfig:
    """A bag-only model: channels as wide as the hidden layer and narrower (projected)."""
    def tower(field: str) -> TowerConfig:
        return TowerConfig((CharTrigramChannel("trigrams", field, 2048, 32),
                            WordNgramChannel("words", field, 2048, 32),
                            CategoricalChannel("country", "country", 50, 8)), hidden_dim=32)

    return EncoderConfig(query=tower("text"), doc=tower("title"), output_dim=24, weight_sharing=sharing)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, sentencepiece_path: Path) -> tuple[Path, TwoTowerModel]:
    vocabulary = sentencepiece_path.read_bytes()
    tokenizer = SentencePieceTokenizer(vocabulary, 16)
    torch.manual_seed(3)
    model = TwoTowerModel(config(tokenizer.vocab_size)).eval()
    path = tmp_path_factory.mktemp("models") / "model"
    save_model_directory(path, model, vocabulary, {"note": "test"})
    return path, model


@pytest.fixture(scope="module", params=["all", "channels", "none"])
def bag_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("bags") / request.param
    save_model_directory(path, TwoTowerModel(bag_config(request.param)).eval(), None, {})
    return path


def test_a_query_tower_with_a_transformer_gives_the_eager_embeddings(
        saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    served = QueryEncoder(path)
    assert served.runtime == "torch"
    eager = EncoderModel(model, (path / "sentencepiece.model").read_bytes())
    for batch in ([QUERIES[0]], QUERIES, QUERIES[1:3], [QUERIES[3]] * 5):
        expected = eager.encode_queries(batch)
        got = served.encode_batch(batch)
        assert got.shape == expected.shape == (len(batch), 24)
        np.testing.assert_allclose(got, expected, atol=TOLERANCE)
    np.testing.assert_allclose(served.encode(QUERIES[0]), eager.encode_queries([QUERIES[0]])[0],
                               atol=TOLERANCE)
    assert np.allclose(np.linalg.norm(served.encode_batch(QUERIES), axis=1), 1.0, atol=1e-5)


_TEXTS = st.text(st.characters(codec="utf-8"), max_size=80)
_COUNTRIES = st.one_of(st.none(), st.sampled_from(["us", "ca", "fr"]), st.text(max_size=5))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=4), country=_COUNTRIES)
def test_the_numpy_query_tower_equals_torchs(bag_model: Path, texts: list[str], country: str | None) -> None:
    served, eager = _encoders(bag_model)
    assert served.runtime == "numpy"
    records = [{"text": t, "country": country} for t in texts]
    np.testing.assert_allclose(served.encode_batch(records), eager.encode_queries(records), atol=TOLERANCE)
    np.testing.assert_allclose(served.encode(records[0]), eager.encode_queries(records[:1])[0],
                               atol=TOLERANCE)


_LOADED: dict[Path, tuple[QueryEncoder, EncoderModel]] = {}


def _encoders(path: Path) -> tuple[QueryEncoder, EncoderModel]:
    if path not in _LOADED:
        _LOADED[path] = (QueryEncoder(path), EncoderModel.load(path))
    return _LOADED[path]


def test_shared_tables_are_stored_once(bag_model: Path) -> None:
    model = EncoderModel.load(bag_model).model
    unique = sum(p.numel() * p.element_size() for p in model.parameters())  # shared ones once
    table = model.query_tower.channels[0].bag.weight
    size = (bag_model / WEIGHTS_FILE).stat().st_size
    assert unique <= size < unique + table.numel() * table.element_size() // 2
    assert sorted(p.name for p in bag_model.iterdir()) == ["encoder.json", "model.json", WEIGHTS_FILE]
    weights = read_weights(bag_model)
    assert set(weights) == set(model.state_dict())
    shared = weights["query_tower.channels.0.bag.weight"] is weights["doc_tower.channels.0.bag.weight"]
    assert shared == (bag_model.name != "none")
    query = read_weights(bag_model, "query_tower.")  # what a query service holds
    assert set(query) == {n for n in weights if n.startswith("query_tower.")}
    for name, array in query.items():
        np.testing.assert_array_equal(array, weights[name])


def test_float16_tables_halve_the_file_and_serve_the_same_model(bag_model: Path, tmp_path: Path) -> None:
    model = EncoderModel.load(bag_model).model
    half = save_model_directory(tmp_path / "half", model, None, {}, tables="float16")
    full = read_model_info(bag_model)
    assert half.tables == "float16" and full.tables == "float32" and half.key != full.key
    tables = sum(p.numel() for n, p in model.named_parameters() if n.endswith(".bag.weight"))
    saved = (bag_model / WEIGHTS_FILE).stat().st_size - (tmp_path / "half" / WEIGHTS_FILE).stat().st_size
    assert abs(saved - tables * 2) < 256  # two bytes a row value, the headers aside
    weights = read_weights(tmp_path / "half")
    assert weights["query_tower.channels.0.bag.weight"].dtype == np.float16
    assert weights["query_tower.output.weight"].dtype == np.float32
    served, eager = QueryEncoder(tmp_path / "half"), EncoderModel.load(tmp_path / "half")
    np.testing.assert_allclose(served.encode_batch(QUERIES), eager.encode_queries(QUERIES), atol=TOLERANCE)
    # Half-precision rows move a unit-norm embedding by about 1e-3 at most.
    assert np.abs(served.encode_batch(QUERIES) - QueryEncoder(bag_model).encode_batch(QUERIES)).max() < 5e-3
    # Widened back to float32 it is the same model: the same key.
    again = save_model_directory(tmp_path / "again", eager.model, None, {})
    assert again.key == half.key and again.tables == "float32"


def test_a_format_1_directory_loads_and_converts_to_the_same_key(bag_model: Path, tmp_path: Path) -> None:
    legacy = _legacy_copy(bag_model, tmp_path / "legacy")
    served = QueryEncoder(legacy)
    np.testing.assert_array_equal(served.encode_batch(QUERIES), QueryEncoder(bag_model).encode_batch(QUERIES))
    from click.testing import CliRunner

    from ebr.cli.main import cli

    result = CliRunner().invoke(cli, ["convert-model", str(legacy), "--output", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    assert read_model_info(tmp_path / "new").key == read_model_info(bag_model).key
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["encoder.json", "model.json",
                                                                    WEIGHTS_FILE]
    half = CliRunner().invoke(cli, ["convert-model", str(legacy), "-o", str(tmp_path / "half"),
                                    "--tables", "float16"])
    assert half.exit_code == 0, half.output
    assert read_model_info(tmp_path / "half").key in half.output
    assert read_model_info(tmp_path / "half").tables == "float16"


def _legacy_copy(path: Path, target: Path) -> Path:
    """``path``'s model as ebr wrote it before format 2: torch's pickle of the state dict."""
    target.mkdir()
    model = EncoderModel.load(path).model
    torch.save(model.state_dict(), target / LEGACY_WEIGHTS_FILE)
    (target / "query_tower.pt").write_bytes(b"TorchScript, no longer read")
    (target / "encoder.json").write_bytes((path / "encoder.json").read_bytes())
    info = json.loads((path / MODEL_FILE).read_text())
    info["format"] = 1
    del info["tables"]
    (target / MODEL_FILE).write_text(json.dumps(info))
    return target


def test_a_bag_only_model_serves_without_torch(bag_model: Path, tmp_path: Path) -> None:
    expected = QueryEncoder(bag_model).encode({"text": "drill", "country": "us"})
    script = NO_TORCH + (
        "import json\n"
        "from ebr.encoders.serving.query_encoder import QueryEncoder\n"
        f"e = QueryEncoder({str(bag_model)!r})\n"
        "v = e.encode({'text': 'drill', 'country': 'us'})\n"
        "heavy = [m for m in ('ebr.encoders.model', 'ebr.encoders.training', 'faiss',\n"
        "         'ebr.encoders.serving.model_directory') if m in sys.modules]\n"
        "print(json.dumps({'vector': v.tolist(), 'runtime': e.runtime, 'heavy': heavy}))\n"
    )
    out = json.loads(_run(script).stdout.strip().splitlines()[-1])
    assert out["runtime"] == "numpy" and out["heavy"] == []
    np.testing.assert_allclose(out["vector"], expected, atol=TOLERANCE)


def test_without_torch_what_needs_it_says_so(saved: tuple[Path, TwoTowerModel], bag_model: Path,
                                             tmp_path: Path) -> None:
    legacy = _legacy_copy(bag_model, tmp_path / "legacy")
    script = NO_TORCH + (
        "from ebr.encoders.errors import EncoderConfigError\n"
        "from ebr.encoders.serving.query_encoder import QueryEncoder\n"
        f"for path in ({str(saved[0])!r}, {str(legacy)!r}):\n"
        "    try:\n"
        "        QueryEncoder(path)\n"
        "    except EncoderConfigError as e:\n"
        "        print(e)\n"
    )
    lines = _run(script).stdout.strip().splitlines()
    assert len(lines) == 2
    assert "text_transformer channel, which runs on PyTorch: pip install 'ebr[encoders]'" in lines[0]
    assert f"ebr convert-model {legacy} --output" in lines[1]


def _run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning"})


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


def test_a_loaded_model_directory_is_the_saved_model(saved: tuple[Path, TwoTowerModel]) -> None:
    path, model = saved
    loaded = EncoderModel.load(path)
    assert loaded.config == model.config
    docs = [{"title": "Simpson Strong-Tie 12-Gauge Angle"}, {"title": "x"}]
    original = EncoderModel(model, (path / "sentencepiece.model").read_bytes())
    np.testing.assert_array_equal(loaded.encode_docs(docs), original.encode_docs(docs))
    assert loaded.info is not None and loaded.info.training == {"note": "test"}


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
    with pytest.raises(EncoderConfigError, match="tables must be one of float32, float16"):
        save_model_directory(target, model, vocabulary, {}, tables="int8")


def test_a_damaged_model_directory_is_a_clean_error(bag_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "m"
    save_model_directory(target, EncoderModel.load(bag_model).model, None, {})
    (target / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(EncoderConfigError, match="cannot read the weights"):
        QueryEncoder(target)
    with pytest.raises(EncoderConfigError, match="cannot read the weights"):
        EncoderModel.load(target)
    (target / WEIGHTS_FILE).unlink()
    with pytest.raises(EncoderConfigError, match="no weights.safetensors"):
        QueryEncoder(target)
    with pytest.raises(EncoderConfigError, match="not a model directory"):
        QueryEncoder(tmp_path / "missing")
    (target / "model.json").write_text('{"format": 99}')
    with pytest.raises(EncoderConfigError, match="model format 99"):
        EncoderModel.load(target)


def test_weights_of_another_config_are_a_clean_error(bag_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "m"
    save_model_directory(target, EncoderModel.load(bag_model).model, None, {})
    other = bag_config("all").to_dict()
    for tower in ("query", "doc"):
        other[tower]["channels"][0]["buckets"] = 1024
    (target / "encoder.json").write_text(json.dumps(other))
    with pytest.raises(EncoderConfigError, match="do not fit the encoder config"):
        QueryEncoder(target)
    with pytest.raises(EncoderConfigError, match="do not fit the encoder config"):
        EncoderModel.load(target)
