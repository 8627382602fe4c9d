"""``ebr train`` → ``ebr encode`` → a local index → ``ebr query --model``: the encoder workflow
end to end through the command line, with its error messages."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ebr.cli.main import cli
from ebr.encoders.serving.model_files import read_model_info
from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

WORDS = ["drill", "hammer", "saw", "paint", "brush", "ladder", "bracket", "hinge", "faucet", "lamp",
         "valve", "pipe", "tile", "grout", "mower", "rake"]


def write_inputs(directory: Path) -> tuple[Path, Path, Path]:
    rng = random.Random(0)
    docs = [{"id": f"p{i}", "title": " ".join(rng.sample(WORDS, 3))} for i in range(60)]
    pairs = directory / "pairs.jsonl"
    with pairs.open("w") as f:
        for doc in docs:
            f.write(json.dumps({"query": doc["title"].split()[0], "doc": doc, "label": 3}) + "\n")
        f.write("{not json\n")  # line 61
        f.write(json.dumps({"query": {"text": 7}, "doc": docs[0]}) + "\n")  # line 62
    corpus = directory / "docs.tsv"
    corpus.write_text("id\ttitle\n" + "".join(f"{d['id']}\t{d['title']}\n" for d in docs) + "p999\t\n")
    encoder = directory / "encoder.json"
    tower = {"hidden_dim": 16, "channels": [{"kind": "char_trigrams", "name": "trigrams", "field": "FIELD",
                                             "buckets": 1024, "dim": 16}]}
    encoder.write_text(json.dumps({
        "output_dim": 16, "weight_sharing": "all",
        "query": json.loads(json.dumps(tower).replace("FIELD", "text")),
        "doc": json.loads(json.dumps(tower).replace("FIELD", "title"))}))
    return pairs, corpus, encoder


def train(runner: CliRunner, pairs: Path, encoder: Path, model: Path, epochs: int) -> Result:
    result = runner.invoke(cli, ["train", str(pairs), "--encoder", str(encoder), "-o", str(model),
                                 "--epochs", str(epochs), "--batch-size", "16", "--threads", "1",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    return result


def test_train_encode_index_and_query(tmp_path: Path) -> None:
    pairs, corpus, encoder = write_inputs(tmp_path)
    runner = CliRunner()
    model = tmp_path / "model"
    result = train(runner, pairs, encoder, model, epochs=3)
    assert "skipped 2 bad line(s) of 62" in result.stderr
    assert "line 61: not valid JSON" in result.stderr
    assert "line 62: query: field 'text' (channel 'trigrams') must be a string, got int" in result.stderr
    key = read_model_info(model).key
    assert f"embedding key {key}, 16-d" in result.stdout
    assert not (tmp_path / "model.training").exists()

    vectors = tmp_path / "docs.npz"
    result = runner.invoke(cli, ["encode", str(model), str(corpus), "-o", str(vectors), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "line 62: field 'title' (channel 'trigrams') must be a string, got nothing" in result.stderr
    with np.load(vectors) as npz:
        saved = dict(npz)
    assert saved["vectors"].shape == (60, 16) and str(saved["key"]) == key
    assert list(saved["ids"][:2]) == ["p0", "p1"]
    np.testing.assert_allclose(np.linalg.norm(saved["vectors"], axis=1), 1.0, atol=1e-5)

    embedding = EmbeddingKey(key, 16, CoarseQuantizerSpec(nlist=4))
    schema = Schema.create("tools", (Namespace("text"),), (embedding,))
    index = tmp_path / "index"
    with LocalStore.create(index, schema) as store:
        titles = {line.split("\t")[0]: line.split("\t")[1] for line in corpus.read_text().splitlines()[1:61]}
        store.add(IndexDocument(str(i), text={"text": titles[str(i)]}, embeddings={key: v},
                                source={"title": titles[str(i)]})
                  for i, v in zip(saved["ids"], saved["vectors"], strict=True))
        store.train_quantizers()
    query = f"(nn {key} :k 5 :nprobe 4)"  # all 4 clusters: exact
    result = runner.invoke(cli, ["query", str(index), query, "--model", str(model), "--text", f"{key}=ladder",
                                 "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 5
    # Every title mentioning the query word holds its trigrams; the top hits should be among them.
    assert sum("ladder" in h["source"]["title"] for h in hits) >= 3
    # An app backend without torch (the base install) serves the same query: the model's
    # tower is all hashed channels, run in numpy.
    args = ["query", str(index), query, "--model", str(model), "--text", f"{key}=ladder", "--json"]
    script = f"import sys\nsys.modules['torch'] = None\nfrom ebr.cli.main import cli\ncli({args!r})"
    without = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert without.returncode == 0, without.stderr
    assert [h["id"] for h in json.loads(without.stdout)["hits"]] == [h["id"] for h in hits]


@pytest.mark.parametrize(("args", "message"), [
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["--loss", "hinge"], "Invalid value for '--loss'"),
    (["--train-config", "BAD"], "unknown key 'learning_rat'"),
])
def test_bad_training_settings_are_one_clean_message(tmp_path: Path, args: list[str], message: str) -> None:
    pairs, _, encoder = write_inputs(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochs": 3, "learning_rat": 0.1}')
    args = [str(bad) if a == "BAD" else a for a in args]
    command = ["train", str(pairs), "--encoder", str(encoder), "-o", str(tmp_path / "m"), *args]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_bad_encoder_config_names_the_setting(tmp_path: Path) -> None:
    pairs, _, encoder = write_inputs(tmp_path)
    encoder.write_text(encoder.read_text().replace('"buckets": 1024', '"buckets": "many"'))
    command = ["train", str(pairs), "--encoder", str(encoder), "-o", str(tmp_path / "m")]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert "encoder.query.channels[0].buckets: expected an integer, got 'many'" in result.output


def test_encode_refuses_a_missing_model(tmp_path: Path) -> None:
    _, corpus, _ = write_inputs(tmp_path)
    (tmp_path / "empty").mkdir()
    command = ["encode", str(tmp_path / "empty"), str(corpus), "-o", str(tmp_path / "v.npz")]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert "cannot read model description" in result.output


def test_the_command_line_loads_without_torch() -> None:
    """`pip install ebr && ebr quickstart` has no torch: only the encoder commands may need it."""
    script = "import sys, ebr.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.opensearch
def test_ingest_with_a_model_records_its_fingerprint(tmp_path: Path, opensearch_url: str) -> None:
    from ebr.stores.opensearch.store import OpenSearchStore

    pairs, corpus, encoder = write_inputs(tmp_path)
    runner = CliRunner()
    model = tmp_path / "model"
    train(runner, pairs, encoder, model, epochs=1)
    info = read_model_info(model)
    schema = tmp_path / "schema.json"
    schema.write_text(Schema.create("tools", (Namespace("title"),), (
        EmbeddingKey(info.key, 16, CoarseQuantizerSpec(nlist=4)),)).to_json())
    index = f"ebr-fingerprint-{random.randrange(1 << 30)}"
    result = runner.invoke(cli, ["ingest", str(corpus), "--store", opensearch_url, "--index", index,
                                 "--schema", str(schema), "--model", str(model), "--engine", "lucene",
                                 "--quiet", "--checkpoint", str(tmp_path / "checkpoint")])
    try:
        assert result.exit_code == 0, result.output
        with OpenSearchStore.open(opensearch_url, index) as store:
            assert store.fingerprints == {info.key: info.fingerprint}
            assert store.stats().embeddings[info.key] == 60
        stats = runner.invoke(cli, ["index", "stats", opensearch_url, "--index", index])
        assert f"encoder {info.fingerprint[:12]}" in stats.stdout, stats.output
    finally:
        OpenSearchStore.drop(opensearch_url, index)
