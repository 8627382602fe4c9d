"""The ingest pipeline (``ebr.ingest.pipeline`` and ``ebr ingest``): records of every format
into the local store, bad records reported with their lines and the counts adding up, the
quantizer trained on the way, resuming after an interruption or a killed process, and the
threshold that stops a wrong file.  The same pipeline into OpenSearch is tested in
``test_opensearch_ingest.py``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ebr.cli.main import cli
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.ingest.field_mapping import FieldMapping, MappingError
from ebr.ingest.pipeline import IngestAborted, IngestReport, ingest
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import search_text

DIM = 8
SCHEMA = Schema.create("products", (Namespace("title"), Namespace("brand", "keyword")),
                       (EmbeddingKey("m", DIM, CoarseQuantizerSpec(nlist=4)),))
BAD_LINES = {8: "not valid JSON", 20: "no id", 33: "embeddings.m: expected shape (8,)"}


def records(n: int = 60) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [{"id": f"p{i}", "title": f"cordless drill {i % 7}", "brand": ["bosch", "makita"][i % 2],
             "rank": i % 3, "m": [round(float(x), 6) for x in rng.standard_normal(DIM)]}
            for i in range(n)]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]], bad: bool = True) -> Path:
    with path.open("w") as f:
        for number, row in enumerate(rows, start=1):
            if bad and number == 8:
                f.write("{not json\n")
            elif bad and number == 20:
                f.write(json.dumps({k: v for k, v in row.items() if k != "id"}) + "\n")
            elif bad and number == 33:
                f.write(json.dumps({**row, "m": [1.0, 2.0]}) + "\n")
            else:
                f.write(json.dumps(row) + "\n")
    return path


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore.create(tmp_path / "index", SCHEMA, synchronous="OFF")
    yield s  # type: ignore[misc]
    s.close()


def check_counts(report: IngestReport) -> None:
    assert report.added + report.replaced + len(report.skipped) + len(report.failed) == report.read


def test_jsonl_into_the_local_store(tmp_path: Path, store: LocalStore) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records())
    report = ingest(store, source, batch_size=16, train_after=20)
    check_counts(report)
    assert (report.read, report.added) == (60, 57)
    # trained on the first documents, before any was written (nothing to re-assign)
    assert report.trained["m"].vectors == 30
    assert {s.line: s.reason for s in report.skipped}.keys() == BAD_LINES.keys()
    for s in report.skipped:
        assert BAD_LINES[s.line] in s.reason, s
    assert report.trained["m"].nlist == 4 and store.quantizers["m"].nlist == 4
    doc = store.get_documents(["p1"])[0]
    assert doc is not None
    assert doc.terms["title"] == ("1", "cordless", "drill") and doc.terms["brand"] == ("makita",)
    assert doc.rank == 1.0 and "m" not in doc.source and doc.source["title"] == "cordless drill 1"
    assert "m.cluster" in doc.terms  # its cluster assigned as it was written
    assert search_text(store, '(match title "drill 3")', {}, 100).stats.total == 9


@pytest.mark.parametrize("fmt", ["tsv", "csv", "parquet"])
def test_every_format_gives_the_same_documents(tmp_path: Path, fmt: str) -> None:
    rows = records(30)
    table = [{**r, "m": ",".join(map(str, r["m"]))} for r in rows]
    path = tmp_path / f"docs.{fmt}"
    if fmt == "parquet":
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]),
                                    **({"delimiter": "\t"} if fmt == "tsv" else {}))
            writer.writeheader()
            writer.writerows(table)
    with LocalStore.create(tmp_path / fmt, SCHEMA) as a, \
            LocalStore.create(tmp_path / "jsonl", SCHEMA) as b:
        assert ingest(a, path).added == 30
        assert ingest(b, write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)).added == 30
        for x, y in zip(a.get_documents([r["id"] for r in rows]),
                        b.get_documents([r["id"] for r in rows]), strict=True):
            assert x is not None and y is not None
            assert (x.terms, x.rank) == (y.terms, y.rank)
            np.testing.assert_allclose(x.embeddings["m"], y.embeddings["m"], rtol=1e-6)


def test_a_mapping_names_the_fields(tmp_path: Path, store: LocalStore) -> None:
    rows = [{"sku": "a1", "name": "red drill", "maker": ["bosch", "dewalt"], "pop": "2.5"}]
    path = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    mapping = FieldMapping.from_dict({"id": "sku", "rank": "pop", "text": {"title": "name"},
                                      "terms": {"brand": "maker"}, "source": ["name"]})
    assert ingest(store, path, mapping=mapping).added == 1
    doc = store.get_documents(["a1"])[0]
    assert doc is not None
    assert (doc.terms, doc.rank, dict(doc.source)) == (
        {"brand": ("bosch", "dewalt"), "title": ("drill", "red")}, 2.5, {"name": "red drill"})
    with pytest.raises(MappingError, match="no namespace 'colour'"):
        ingest(store, path, mapping=FieldMapping.from_dict({"terms": {"colour": "c"}}))
    with pytest.raises(MappingError, match=r"mapping: unknown key 'txt'"):
        FieldMapping.from_dict({"txt": {}})


class TrigramEncoder:
    """A real, training-free document encoder: the trigram projection of the title."""

    key = "m"

    def __init__(self) -> None:
        self.projection = TrigramProjection(DIM)

    def encode(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.stack([self.projection.embed_one(r["title"]) for r in records])


def test_an_encoder_embeds_each_record(tmp_path: Path, store: LocalStore) -> None:
    rows = [{k: v for k, v in r.items() if k != "m"} for r in records(10)]
    report = ingest(store, write_jsonl(tmp_path / "d.jsonl", rows, bad=False),
                    encoder=TrigramEncoder())
    assert report.added == 10 and report.encode_seconds > 0
    got = store.get_vectors(["p3"], "m")["p3"]
    np.testing.assert_allclose(got, TrigramProjection(DIM).embed_one("cordless drill 3"), rtol=1e-6)


def test_an_interrupted_ingest_resumes_without_duplicates(tmp_path: Path,
                                                          store: LocalStore) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records())
    checkpoint = tmp_path / "ckpt"
    batches = []

    def interrupt(lines: int) -> None:
        batches.append(lines)
        if len(batches) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(store, source, batch_size=10, checkpoint=checkpoint, progress=interrupt,
               train_after=15)
    # batch 2 held enough documents to train the quantizer; batches 1-3 are written
    assert json.loads(checkpoint.read_text())["line"] == 30
    assert store.quantizers["m"].nlist == 4
    written = store.stats().documents
    report = ingest(store, source, batch_size=10, checkpoint=checkpoint)
    assert report.resumed_after == 30 and report.read == 30 and not report.trained
    assert store.stats().documents == written + report.added == 57
    assert not checkpoint.exists()


def test_a_checkpoint_for_another_file_is_refused(tmp_path: Path, store: LocalStore) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records())
    checkpoint = tmp_path / "ckpt"
    checkpoint.write_text(json.dumps({"source": "elsewhere", "size": 1, "mtime_ns": 1, "line": 5}))
    with pytest.raises(Exception, match="is for elsewhere"):
        ingest(store, source, checkpoint=checkpoint)


def test_too_many_bad_records_stop_the_ingest(tmp_path: Path, store: LocalStore) -> None:
    path = tmp_path / "wrong.jsonl"
    path.write_text("".join(json.dumps({"id": f"x{i}", "m": [1.0]}) + "\n" for i in range(300)))
    with pytest.raises(IngestAborted, match="more than 10% of the records are bad") as caught:
        ingest(store, path, batch_size=50, checkpoint=tmp_path / "ckpt")
    assert caught.value.report.read == 100  # judged after each batch, once 100 are read
    assert (tmp_path / "ckpt").exists() and store.stats().documents == 0


def test_the_cli_ingests_and_reports(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records())
    schema = tmp_path / "schema.json"
    schema.write_text(SCHEMA.to_json())
    runner = CliRunner()
    index = tmp_path / "idx"
    result = runner.invoke(cli, ["ingest", str(source), "--store", f"local:{index}", "--schema",
                                 str(schema), "--quiet", "--json",
                                 "--checkpoint", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["read"], data["added"], len(data["skipped"])) == (60, 57, 3)
    again = runner.invoke(cli, ["ingest", str(source), "--store", str(index), "--quiet"])
    assert again.exit_code == 0, again.output
    assert "60 records read, 57 written (0 new, 57 replaced), 3 skipped" in again.output
    assert "skipped line 8: not valid JSON" in again.output
    missing = runner.invoke(cli, ["ingest", str(source), "--store", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no local index" in missing.output


def test_a_killed_ingest_resumes(tmp_path: Path) -> None:
    """kill -9 in the middle of a slow ingest: the rerun resumes from the checkpoint and the
    index ends with every document once."""
    rows = records(3000)
    source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    (tmp_path / "schema.json").write_text(SCHEMA.to_json())
    checkpoint = tmp_path / "ckpt"
    command = [sys.executable, "-m", "ebr.cli", "ingest", str(source), "--store",
               str(tmp_path / "idx"), "--schema", str(tmp_path / "schema.json"), "--quiet",
               "--batch-size", "50", "--checkpoint", str(checkpoint)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and json.loads(checkpoint.read_text() or "{}").get("line", 0) >= 500:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed, f"the ingest ended before it could be killed: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert "(resumed)" in resumed.stdout
    with LocalStore.open(tmp_path / "idx", readonly=True) as store:
        assert store.stats().documents == 3000
    assert not checkpoint.exists()


def test_by_default_a_field_named_like_a_word_namespace_is_read_as_text() -> None:
    """A namespace whose analyzer splits words (standard, english) takes the field of its name
    as free text, analysed; the others take whole values."""
    from ebr.ingest.field_mapping import FieldMapping
    from ebr.mappings import Namespace, Schema

    schema = Schema.create("m", (Namespace("title", "english"), Namespace("body"),
                                 Namespace("brand", "lowercase"), Namespace("sku", "keyword")))
    mapping = FieldMapping.for_schema(schema)
    assert set(mapping.text) == {"title", "body"} and set(mapping.terms) == {"brand", "sku"}
    doc = mapping.document({"id": "1", "title": "Cordless Drills", "brand": "Bosch"})
    assert doc.text == {"title": "Cordless Drills"} and doc.terms == {"brand": ["Bosch"]}
