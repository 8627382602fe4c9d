"""``ebr index create|stats|drop``, ``ebr query`` and ``ebr quickstart`` through CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ebr.cli import inputs
from ebr.cli.main import cli
from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

SCHEMA = Schema.create("tiny", (Namespace("country", "keyword"), Namespace("name")),
                       (EmbeddingKey("m", 2, CoarseQuantizerSpec(nlist=2)),))
HYBRID = '(and (term country:fr) (or (match name "paris") (nn m :radius 0.5 :nprobe 2)))'


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """An index created by the CLI and filled through the library (the CLI has no ingest)."""
    schema = tmp_path / "schema.json"
    schema.write_text(SCHEMA.to_json())
    path = tmp_path / "idx"
    result = run("index", "create", str(path), "--schema", str(schema))
    assert result.exit_code == 0, result.output
    assert "created index 'tiny'" in result.stdout and "m (2-d)" in result.stdout
    with LocalStore.open(path) as store:
        store.add([
            IndexDocument("paris", {"country": ["fr"]}, {"name": "Paris"}, {"m": [1, 0]},
                          rank=6, source={"name": "Paris"}),
            IndexDocument("lyon", {"country": ["fr"]}, {"name": "Lyon"}, {"m": [0.8, 0.6]},
                          rank=5),
            IndexDocument("rome", {"country": ["it"]}, {"name": "Rome"}, {"m": [0, 1]}),
        ])
        store.train_quantizers(seed=0)
    return path


def test_stats(index: Path) -> None:
    result = run("index", "stats", str(index))
    assert result.exit_code == 0, result.output
    assert "documents  3" in result.stdout
    assert "m: 3 embeddings, coarse quantizer nlist 2" in result.stdout
    data = json.loads(run("index", "stats", str(index), "--json").stdout)
    assert data["index"] == "tiny" and data["documents"] == 3
    assert data["embeddings"] == {"m": 3} and data["quantizers"] == {"m": 2}


def test_query_explains_hits_and_stats(index: Path) -> None:
    result = run("query", str(index), HYBRID, "--vector", "m=1,0.2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. paris  score ")
    assert "branches q q.0 q.1" in lines[0]
    assert "m: distance 0.0" in lines[1] and "probe rank" in lines[1]
    assert lines[2] == '   {"name": "Paris"}'
    assert lines[3].startswith("2. lyon")
    assert "2 of 2 matching documents" in result.stdout and "vectors verified" in result.stdout
    assert re.search(r"^probes q\.1\.1: read by (bitmap|scan) \(\d+ rows in the probed clusters",
                     result.stdout, re.M), result.stdout


def test_query_json(index: Path, tmp_path: Path) -> None:
    import numpy as np

    vector = tmp_path / "q.npy"
    np.save(vector, np.array([0, 1], dtype=np.float32))
    result = run("query", str(index), "(nn m :k 1)", "--vector", f"m={vector}", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [hit] = data["hits"]
    assert hit["id"] == "rome" and hit["clauses"][0]["distance"] == pytest.approx(0, abs=1e-6)
    assert data["stats"]["total"] == 1 and "verify" in data["stats"]["seconds"]


def test_query_text_for_a_key_without_its_model_is_refused(index: Path) -> None:
    # The trigram projection would embed it, meaninglessly: only a *-trigrams key is its own.
    result = run("query", str(index), "(nn m :k 3)", "--text", "m=paris", "--size", "2")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: no model for the index's embedding key m: pass its model directory (--model); "
        "only a key named *-trigrams is embedded without one (by the trigram projection)"]


def test_query_reads_stdin(index: Path) -> None:
    result = run("query", str(index), "-", input="(term country:it)")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1. rome")


def test_bad_expression_is_one_caret_message(index: Path) -> None:
    result = run("query", str(index), "(and (term country:fr) (nn m :radius 7))",
                 "--vector", "m=1,0")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: 1:38: :radius must be between 0 and 2; got 7",
        "  (and (term country:fr) (nn m :radius 7))",
        "  " + " " * 37 + "^",
    ]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["(term nowhere:x)"], 1, "unknown namespace"),
    (["(nn m :k 1)"], 2, "need an embedding for m: give it with --vector"),
    (["(nn m :k 1)", "--vector", "m"], 2, "expected KEY=VALUE"),
    (["(nn m :k 1)", "--vector", "m=1,x"], 2, "cannot read '1,x'"),
    (["(nn m :k 1)", "--vector", "m=1,0,0"], 1, "has dimension 3; the schema says 2"),
    (["(nn m :k 1)", "--text", "other=paris"], 2, "no embedding key 'other' (it has: m)"),
    (["(term country:fr)", "--size", "-1"], 2, "--size"),
])
def test_query_errors(index: Path, args: list[str], code: int, message: str) -> None:
    result = run("query", str(index), *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_missing_index_path(tmp_path: Path) -> None:
    for args in (["index", "stats"], ["query"], ["index", "drop", "--yes"]):
        extra = ["(term a:b)"] if args == ["query"] else []
        result = run(*args, str(tmp_path / "none"), *extra)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"Error: no local index in {tmp_path / 'none'}")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "schema.json"),
    ('{"index": "x", "keys": [{"name": "m", "dimension": 0}]}', "dimension"),
])
def test_bad_schema(tmp_path: Path, content: str, message: str) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(content)
    result = run("index", "create", str(tmp_path / "idx"), "--schema", str(schema))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert not (tmp_path / "idx").exists()


def test_create_refuses_an_existing_index(index: Path, tmp_path: Path) -> None:
    result = run("index", "create", str(index), "--schema", str(tmp_path / "schema.json"))
    assert result.exit_code == 1
    assert "it exists and is not an empty directory" in result.stderr


def test_drop_refuses_without_yes_when_no_terminal(index: Path) -> None:
    result = run("index", "drop", str(index))
    assert result.exit_code == 1
    assert "stdin is not a terminal" in result.stderr and "--yes" in result.stderr
    assert (index / "index.sqlite").is_file()


def test_drop_asks_on_a_terminal(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "interactive", lambda: True)
    result = run("index", "drop", str(index), input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert (index / "index.sqlite").is_file()
    result = run("index", "drop", str(index), input="y\n")
    assert result.exit_code == 0, result.output
    assert not index.exists()


def test_round_trip_ends_with_drop(index: Path) -> None:
    result = run("index", "drop", str(index), "--yes")
    assert result.exit_code == 0 and "dropped" in result.stdout
    assert not index.exists()
    assert run("index", "stats", str(index)).exit_code == 1


def test_quickstart_without_training(tmp_path: Path) -> None:
    path = tmp_path / "qs"
    result = run("quickstart", str(path), "--small", "--no-train")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for found in ("San Francisco, US.CA found via nn", "Mumbai, IN.16 found via terms",
                  "Springfield, US.MO found via nn", "does not read the searcher's country"):
        assert found in out
    assert "NOT" not in out
    assert "embedded names with the trigram projection; indexed 5" in result.stderr
    assert f"ebr console {path}\n" in out and f"ebr query {path} --text name-trigrams=" in out
    assert "total " in out

    again = run("quickstart", str(path), "--limit", "50", "--no-train")
    assert again.exit_code == 1 and "pass --force" in again.stderr
    forced = run("quickstart", str(path), "--limit", "50", "--no-train", "--force")
    assert forced.exit_code == 0, forced.output
    assert "indexed 70 cities" in forced.stderr  # the 50 most populous and the examples' cities


def test_quickstart_falls_back_to_the_projection_without_torch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ebr.cli.quickstart_command.has_torch", lambda: False)
    result = run("quickstart", str(tmp_path / "qs"), "--limit", "50")
    assert result.exit_code == 0, result.output
    assert "PyTorch is not installed" in result.stderr and "--no-train" in result.stderr
    assert "embedded names with the trigram projection" in result.stderr
    assert not (tmp_path / "qs-model").exists()


def test_quickstart_refuses_to_replace_what_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "qs-model").mkdir()
    (tmp_path / "qs-model" / "notes.txt").write_text("mine")
    result = run("quickstart", str(tmp_path / "qs"), "--limit", "50", "--force")
    assert result.exit_code == 1 and "not a model directory" in result.stderr
    assert (tmp_path / "qs-model" / "notes.txt").read_text() == "mine"


def test_quickstart_force_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = run("quickstart", str(tmp_path), "--force", "--limit", "50")
    assert result.exit_code == 1 and "no local index" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.opensearch
def test_stats_and_drop_of_an_index_on_a_cluster(opensearch_url: str) -> None:
    from ebr.stores.opensearch.store import OpenSearchStore, meta_index

    index = f"ebr-cli-{np.random.default_rng().integers(1 << 30)}"
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        store.add([IndexDocument(f"d{i}", {"country": ["fr" if i % 2 else "us"]},
                                 embeddings={"m": [1.0, i + 1.0]}) for i in range(6)])
        store.train_quantizers()
        store.set_fingerprint("m", "ab" * 32)
        client = store.client
        result = run("index", "stats", opensearch_url, "--index", index)
        assert result.exit_code == 0, result.output
        for line in (f"index {index!r} on {opensearch_url}", "engine     lucene (OpenSearch",
                     "documents  6", "m: 6 embeddings, coarse quantizer nlist 2, encoder abababababab"):
            assert line in result.stdout, result.stdout
        figures = json.loads(run("index", "stats", opensearch_url, "--index", index,
                                 "--json").stdout)
        assert (figures["documents"], figures["engine"], figures["fingerprints"]) == (
            6, "lucene", {"m": "ab" * 32})
        assert figures["quantizers"] == {"m": 2} and figures["untrained_models"] == []
        unnamed = run("index", "stats", opensearch_url)
        assert unnamed.exit_code == 2 and "name the index with --index" in unnamed.stderr
        refused = run("index", "drop", opensearch_url, "--index", index)
        assert refused.exit_code == 1 and "stdin is not a terminal" in refused.stderr
        assert client.indices.exists(index=index)
        dropped = run("index", "drop", opensearch_url, "--index", index, "--yes")
        assert dropped.exit_code == 0, dropped.output
        assert f"dropped index {index!r} on {opensearch_url}" in dropped.stdout
        assert not client.indices.exists(index=index)
        assert not client.indices.exists(index=meta_index(index))
    gone = run("index", "stats", opensearch_url, "--index", index)
    assert gone.exit_code == 1 and f"no index {index!r}" in gone.stderr
    assert "Traceback" not in gone.output
