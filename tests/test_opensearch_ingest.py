"""The ingest pipeline into the OpenSearch store on a real cluster: the same documents as in
the local store, documents the cluster refuses reported each with their line and the rest
written, the CLI over a URL, and a node that dies mid-ingest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from click.testing import CliRunner
from opensearchpy import OpenSearch
from test_ingest import SCHEMA, check_counts, records, write_jsonl
from test_opensearch_store import fresh_index

import ebr.stores.opensearch.bulk as bulk
import ebr.stores.opensearch.store as store_module
from ebr.cli.main import cli
from ebr.errors import StoreError
from ebr.ingest.pipeline import ingest
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from support import cluster
from support.cluster import PORT_ENV, VERSION_ENV, StartFailed, _home, started_nodes

pytestmark = pytest.mark.opensearch


def _version() -> list[str]:
    """The release line this run tests (the start script's newest when unset)."""
    return [os.environ[VERSION_ENV]] if os.environ.get(VERSION_ENV) else []


def test_the_same_file_gives_the_same_documents_in_both_stores(
        opensearch_url: str, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records(120))
    index = fresh_index()
    with LocalStore.create(tmp_path / "local", SCHEMA) as local, \
            OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene",
                                   shards=3) as remote:
        try:
            mine = ingest(local, source, batch_size=25, train_after=50)
            theirs = ingest(remote, source, batch_size=25, train_after=50)
            check_counts(theirs)
            assert (theirs.read, theirs.added, [s.line for s in theirs.skipped]) == (
                mine.read, mine.added, [s.line for s in mine.skipped])
            ids = [r["id"] for r in records(120)]
            for a, b in zip(local.get_documents(ids), remote.get_documents(ids), strict=True):
                if a is None:
                    assert b is None
                    continue
                assert b is not None
                strip = {k: v for k, v in a.terms.items() if k != "m.cluster"}
                assert {k: v for k, v in b.terms.items() if k != "m.cluster"} == strip
                assert (b.rank, dict(b.source)) == (a.rank, dict(a.source))
                np.testing.assert_array_equal(b.embeddings["m"], a.embeddings["m"])
                assert "m.cluster" in b.terms  # trained during the ingest, every doc assigned
        finally:
            OpenSearchStore.drop(remote.client, index)


def test_documents_the_cluster_refuses_are_reported_with_their_line(
        opensearch_url: str, tmp_path: Path) -> None:
    rows = records(30)
    rows[11]["brand"] = "x" * 40_000  # Lucene refuses a keyword term over 32,766 bytes
    source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    index = fresh_index()
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        try:
            report = ingest(store, source, batch_size=10)
            check_counts(report)
            assert [(line, doc_id) for line, doc_id, _ in report.failed] == [(12, "p11")]
            assert "immense term" in report.failed[0][2] or "400" in report.failed[0][2]
            assert report.added == 29 and store.stats().documents == 29
            assert "refused line 12 (id 'p11')" in report.summary()
        finally:
            OpenSearchStore.drop(store.client, index)


@pytest.fixture()
def slow_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bulk request waits a moment before it is sent, so a batch is still unanswered
    when the ingest hands over the next (on a fast node it may be answered already); a
    bulk request holds a batch of these tests (10 documents), as a chunk holds a batch of
    an ingest's, so a batch is sent once the next is handed over."""
    send = OpenSearch.bulk

    def slow_bulk(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return send(*args, **kwargs)

    monkeypatch.setattr(OpenSearch, "bulk", slow_bulk)
    monkeypatch.setattr(store_module, "CHUNK_DOCUMENTS", 10)


def _handed(store: OpenSearchStore) -> list[tuple[frozenset[str], bool]]:
    """Records, for each batch the ingest hands to ``store``, its ids and whether the batch
    before it was answered by then."""
    handed: list[tuple[frozenset[str], bool]] = []
    pendings: list[bulk.PendingWrite] = []
    add_pending = store.add_pending

    def recorded(documents: Any) -> bulk.PendingWrite:
        docs = list(documents)
        handed.append((frozenset(d.id for d in docs), not pendings or pendings[-1].done()))
        pendings.append(add_pending(docs))
        return pendings[-1]

    store.add_pending = recorded  # type: ignore[method-assign]
    return handed


@pytest.mark.usefixtures("slow_link")
def test_a_refusal_in_a_batch_answered_after_the_next_was_sent_is_reported_with_its_line(
        opensearch_url: str, tmp_path: Path) -> None:
    """Batch 2 holds a document the cluster refuses; batch 3 is handed over before batch 2 is
    answered.  The refusal is still reported with its line and id, everything else is
    written, and the checkpoint ends past both."""
    rows = records(40)
    rows[14]["brand"] = "x" * 40_000  # line 15, batch 2: an immense term
    source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    index = fresh_index()
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        try:
            handed = _handed(store)
            report = ingest(store, source, batch_size=10, train_after=10,
                            checkpoint=tmp_path / "ckpt")
            check_counts(report)
            assert [answered for _, answered in handed] == [True, False, False, False]
            assert [(line, doc_id) for line, doc_id, _ in report.failed] == [(15, "p14")]
            assert report.added == 39 and store.stats().documents == 39
            assert not (tmp_path / "ckpt").exists()  # a completed ingest removes it
        finally:
            OpenSearchStore.drop(store.client, index)


@pytest.mark.usefixtures("slow_link")
def test_a_batch_sharing_an_id_with_one_in_flight_waits_for_its_answer(
        opensearch_url: str, tmp_path: Path) -> None:
    """An id in batch 1 again in batch 2: batch 2 is handed over only once batch 1 is
    answered (a document of batch 1 sent again after a 429 would otherwise overwrite the
    newer one), and the later line is what the index keeps."""
    rows = records(30)
    rows[15] = {**rows[3], "title": "the later version"}  # id p3 at lines 4 and 16
    source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    index = fresh_index()
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        try:
            handed = _handed(store)
            report = ingest(store, source, batch_size=10, train_after=10)
            assert "p3" in handed[0][0] and "p3" in handed[1][0]
            assert [answered for _, answered in handed] == [True, True, False]
            assert (report.added, report.replaced) == (29, 1)
            stored, = store.get_documents(["p3"])
            assert stored is not None and stored.source["title"] == "the later version"
        finally:
            OpenSearchStore.drop(store.client, index)


@pytest.mark.parametrize("reply", ["unreadable", "without items"])
def test_a_bulk_reply_the_client_cannot_use_ends_the_ingest_with_a_clear_error(
        reply: str, opensearch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second bulk request is sent and answered, but the client cannot read the answer
    (or it holds no ``items``), while the next batch is already queued: the ingest ends with
    a StoreError naming the index, instead of waiting forever for the helper's pool."""
    from opensearchpy.exceptions import SerializationError

    send, sent = OpenSearch.bulk, []

    def bad_reply(*args: Any, **kwargs: Any) -> Any:
        answer = send(*args, **kwargs)
        sent.append(answer)
        if len(sent) != 2:
            return answer
        if reply == "unreadable":
            raise SerializationError("Unable to deserialize as JSON: '<html>bad gateway'")
        return {"took": 1}

    monkeypatch.setattr(OpenSearch, "bulk", bad_reply)
    monkeypatch.setattr(store_module, "CHUNK_DOCUMENTS", 10)
    source = write_jsonl(tmp_path / "docs.jsonl", records(60), bad=False)
    index = fresh_index()
    outcome: list[BaseException | None] = []
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        try:
            def run() -> None:
                try:
                    ingest(store, source, batch_size=10, train_after=10)
                    outcome.append(None)
                except BaseException as error:  # noqa: BLE001 (checked below)
                    outcome.append(error)

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive(), "the ingest hangs on a reply the client cannot use"
            error, = outcome
            assert isinstance(error, StoreError), error
            assert repr(index) in str(error) and "bulk reply" in str(error)
        finally:
            OpenSearchStore.drop(store.client, index)


def test_an_ingest_killed_with_two_batches_in_flight_resumes_without_loss_or_duplicates(
        opensearch_url: str, tmp_path: Path) -> None:
    """A process killed (SIGKILL) while batches 2 and 3 are unanswered: the checkpoint holds
    batch 1 only; resuming writes everything after it again (ids make that harmless), and
    the index holds each record once, none missing."""
    rows = records(400)
    source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
    checkpoint, marker = tmp_path / "ckpt", tmp_path / "in-flight"
    index = fresh_index("killed")
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        try:
            worker = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("opensearch_ingest_worker.py")),
                 opensearch_url, index, str(source), str(checkpoint), str(marker)],
                capture_output=True, text=True, timeout=300)
            assert worker.returncode == -signal.SIGKILL, worker.stderr
            assert marker.read_text() == "2"  # batches 2 and 3 unanswered when it died
            assert json.loads(checkpoint.read_text())["line"] == 50  # batch 1 only
            report = ingest(store, source, batch_size=50, checkpoint=checkpoint,
                            train_after=50)
            check_counts(report)
            assert (report.resumed_after, report.read, report.failed) == (50, 350, [])
            assert report.added + report.replaced == 350
            assert store.stats().documents == 400
            ids = [r["id"] for r in rows]
            assert all(d is not None for d in store.get_documents(ids))
        finally:
            OpenSearchStore.drop(store.client, index)


def test_the_cli_ingests_into_and_queries_a_cluster(opensearch_url: str, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "docs.jsonl", records())
    (tmp_path / "schema.json").write_text(SCHEMA.to_json())
    index = fresh_index()
    runner = CliRunner()
    try:
        done = runner.invoke(cli, ["ingest", str(source), "--store", opensearch_url, "--index",
                                   index, "--schema", str(tmp_path / "schema.json"),
                                   "--engine", "lucene", "--quiet", "--json",
                                   "--checkpoint", str(tmp_path / "c")])
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["added"] == 57
        found = runner.invoke(cli, ["query", opensearch_url, "--index", index, "--json",
                                    "--vector", "m=" + ",".join(["0.5"] * 8),
                                    "(and (term brand:bosch) (nn m :k 3))"])
        assert found.exit_code == 0, found.output
        hits = json.loads(found.output)["hits"]
        assert len(hits) == 3 and all(h["source"]["brand"] == "bosch" for h in hits)
        no_index = runner.invoke(cli, ["query", opensearch_url, "(term brand:bosch)"])
        assert no_index.exit_code == 2 and "--index" in no_index.output
    finally:
        OpenSearchStore.drop(opensearch_url, index)


def test_a_node_stopped_mid_ingest_is_a_clean_error_and_resumable(tmp_path: Path) -> None:
    home = _home()
    if home is None:
        pytest.skip("needs the start script of a local OpenSearch (EBR_OPENSEARCH_HOME)")
    with started_nodes(home, *_version(), prefix="ebr-opensearch-doomed-") as nodes:
        source = write_jsonl(tmp_path / "docs.jsonl", records(400), bad=False)
        checkpoint = tmp_path / "ckpt"
        batches = []

        def stop_after_two(lines: int) -> None:
            batches.append(lines)
            if len(batches) == 2:
                subprocess.run([str(home / "stop"), str(nodes.work)], capture_output=True,
                               timeout=120)

        with OpenSearchStore.create(nodes.url, fresh_index("doomed"), SCHEMA,
                                    engine="lucene") as store:  # a name of its own, as below
            with pytest.raises(StoreError, match="no OpenSearch answers") as caught:
                ingest(store, source, batch_size=100, checkpoint=checkpoint,
                       progress=stop_after_two, train_after=100)
        assert "Traceback" not in str(caught.value)
        # Batch 2 was handed over before the node stopped, batch 1 answered; the checkpoint
        # holds only what was answered: batch 1, or 2 if it was answered before the stop.
        assert json.loads(checkpoint.read_text())["line"] in (100, 200)


def test_doctor_proves_ebr_on_the_cluster(opensearch_url: str) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--store", opensearch_url])
    assert result.exit_code == 0, result.output
    for name in ("server", "k-NN plugin", "painless cosineSimilarity", "differential suite"):
        assert f"ok   {name}:" in result.output
    assert "ebr works on this cluster" in result.output


def test_doctor_fails_where_nothing_answers() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--store", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL server: cannot read the server version: no OpenSearch")
    assert "Traceback" not in result.output


def test_a_start_answered_by_another_runs_cluster_is_refused(opensearch_url: str) -> None:
    """The port race of two test runs starting nodes at once, made certain: a start given the
    ports of a cluster already up (the session's), as a second run probing before the first's
    nodes bind gets them.  Its own node cannot bind and the start script prints the URL where
    the other cluster answers; ``started_nodes`` refuses it rather than share that cluster
    (the 3-node test then made an index the other run had made: "created by another
    client")."""
    home = _home()
    port = urlsplit(opensearch_url).port
    if home is None or urlsplit(opensearch_url).hostname != "127.0.0.1" or port is None:
        pytest.skip("needs the start script and the session's node from it")
    with pytest.raises(StartFailed, match="nodes it did not start answer"), \
            started_nodes(home, *_version(), env={"EBR_OS_PORT": str(port)}):
        pass


def test_a_second_cluster_leaves_the_port_the_environment_gave_the_first(
        opensearch_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run given its port (``EBR_OS_PORT``, as a machine running several suites gives each
    its own) starts the session's node there; a test's own cluster started beside it (the
    stopped-node and three-node tests) takes free ports rather than that one, where it would
    only find the session's node and be refused as not its own."""
    home = _home()
    port = urlsplit(opensearch_url).port
    if home is None or port not in cluster._own_ports:
        pytest.skip("needs the session's node from the start script")
    monkeypatch.setenv(PORT_ENV, str(port))
    with started_nodes(home, *_version(), prefix="ebr-opensearch-second-") as nodes:
        assert urlsplit(nodes.url).port != port
        assert nodes.work.name.startswith("ebr-opensearch-second-")


def test_a_node_lost_from_three_loses_no_acknowledged_document(tmp_path: Path) -> None:
    """3 nodes, 3 shards with one replica each: a node stopped mid-ingest; the ingest
    completes and every document is there."""
    home = _home()
    if home is None:
        pytest.skip("needs the start script of a local OpenSearch (EBR_OPENSEARCH_HOME)")
    with started_nodes(home, *_version(), prefix="ebr-opensearch-three-",
                       env={"EBR_OS_NODES": "3"}) as nodes:
        rows = records(1500)
        source = write_jsonl(tmp_path / "docs.jsonl", rows, bad=False)
        batches = []

        def lose_a_node(lines: int) -> None:
            batches.append(lines)
            if len(batches) == 3:
                subprocess.run([str(home / "stop"), str(nodes.work / "node-2")],
                               capture_output=True, timeout=120)

        # A name of its own: another run's test, whose start script was answered by these
        # nodes (without started_nodes' check), made "three" on them under this one.
        index = fresh_index("three")
        with OpenSearchStore.create(nodes.url, index, SCHEMA, engine="lucene", shards=3,
                                    replicas=1) as store:
            # Every shard copied to a second node first: until a replica has started, losing
            # its primary's node loses the shard (the cluster goes red, writes to it wait).
            health = store.client.cluster.health(index=index, wait_for_status="green",
                                                 params={"timeout": "120s"},
                                                 request_timeout=130, ignore=408)
            assert health["status"] == "green", (health, _unassigned(store))
            report = ingest(store, source, batch_size=100, progress=lose_a_node,
                            train_after=100)
            assert len(batches) >= 4, "the node was lost before the ingest ended"
            assert (report.added, report.failed, report.skipped) == (1500, [], [])
            assert store.stats().documents == 1500
            assert all(d is not None for d in store.get_documents([r["id"] for r in rows]))


def _unassigned(store: OpenSearchStore) -> object:
    """Why the cluster has not assigned a shard yet (for an assertion's message)."""
    try:
        return store.client.cluster.allocation_explain()
    except Exception as e:  # none unassigned (400), or the cluster is gone
        return repr(e)


def test_explain_compiles_for_the_index_a_store_names(opensearch_url: str, tmp_path: Path) -> None:
    index = fresh_index()
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        store.set_quantizer("m", np.eye(4, 8, dtype=np.float32))
    try:
        result = CliRunner().invoke(cli, ["explain", "--store", opensearch_url, "--index", index,
                                          "--json", "--vector", "m=" + ",".join(["1"] * 8),
                                          "(and (term brand:bosch) (nn m :radius 0.3 :nprobe 2))"])
        assert result.exit_code == 0, result.output
        assert "random centroids" not in result.output  # the index's own quantizer
        body = json.loads(result.output[result.output.index("{"):])
        assert '"clusters.m"' in json.dumps(body) and '"terms.brand"' in json.dumps(body)
    finally:
        OpenSearchStore.drop(opensearch_url, index)
