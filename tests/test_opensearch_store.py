"""The OpenSearch store on a real cluster (``support.cluster``: the shared node, a user's
cluster, or the container image), against the local store holding the same documents.

The differential tests load fixed seeded corpora into both stores once (1 and 3 shards), then
draw hybrid plans and query vectors with hypothesis: both stores must return the same ids,
the same branches per hit, distances and scores equal within float32 error, and the same
order up to ties.  Radius clauses are exact on both sides; painless computes in float32 and
the local store in float64, so a drawn radius closer than ``MARGIN`` to some document's
distance (or top-K neighbours closer than ``MARGIN`` to each other) is skipped as a tie.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opensearchpy import helpers

from ebr import parse, plan
from ebr.cli.main import cli
from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.quantization.coarse import CentroidQuantizer, assign
from ebr.query.nodes import NN, Node, Within, walk
from ebr.stores.agreement import disagreements
from ebr.stores.documents import DimensionError, prepare_batch
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.bulk import PendingWrite
from ebr.stores.opensearch.store import BULK_IN_FLIGHT, BulkWriteError, OpenSearchStore
from ebr.stores.protocol import IndexDocument, SearchResult, WriteResult, search_text
from support.strategies import DIM, KEY, NAMESPACES, VALUES, expressions

pytestmark = pytest.mark.opensearch

MARGIN = 1e-4
DOCS = 80
NLIST = 4
SCHEMA = Schema.create("world", tuple(Namespace(n, "keyword") for n in NAMESPACES),
                       (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=NLIST)),))
_names = itertools.count()


def corpus(seed: int) -> list[IndexDocument]:
    """Seeded documents: a few terms each, most with a continuous random embedding."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(DOCS):
        terms = {ns: sorted({str(v) for v in rng.choice(VALUES, rng.integers(0, 3))})
                 for ns in NAMESPACES}
        embeddings = {KEY: rng.standard_normal(DIM)} if rng.random() < 0.85 else {}
        docs.append(IndexDocument(f"d{i:03d}", {k: v for k, v in terms.items() if v},
                                  embeddings=embeddings, rank=float(rng.integers(0, 3)),
                                  source={"n": i}))
    return docs


def fresh_index(prefix: str = "ebr-test") -> str:
    return f"{prefix}-{next(_names)}-{np.random.default_rng().integers(1 << 30)}"


@pytest.fixture(scope="module", params=[1, 3], ids=["1-shard", "3-shards"])
def both(request: pytest.FixtureRequest, opensearch_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStore, OpenSearchStore]]:
    """The same corpus in a local store and an OpenSearch index, with the same quantizer."""
    docs = corpus(request.param)
    centroids = np.random.default_rng(7).standard_normal((NLIST, DIM)).astype(np.float32)
    index = fresh_index()
    local = LocalStore.create(tmp_path_factory.mktemp("local") / "index", SCHEMA,
                              synchronous="OFF")
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, shards=request.param,
                                    engine="lucene")
    try:
        for store in (local, remote):
            store.set_quantizer(KEY, centroids)
            store.add(docs[:50])
            store.add(docs[50:])
        yield local, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def _distances(store: LocalStore, vector: np.ndarray) -> np.ndarray:
    stored = store.get_vectors([f"d{i:03d}" for i in range(DOCS)], KEY)
    matrix = np.stack(list(stored.values())).astype(np.float64)
    q = vector.astype(np.float64)
    return 1 - matrix @ q / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))


def _safe(executable: Node, distances: np.ndarray) -> bool:
    """No radius within MARGIN of a document's distance; no near-tie among neighbours."""
    for node in walk(executable):
        if isinstance(node, Within | NN) and node.radius is not None:
            if np.min(np.abs(distances - node.radius)) < MARGIN:
                return False
        if isinstance(node, NN) and node.k is not None:
            if np.min(np.diff(np.sort(distances))) < MARGIN:
                return False
    return True


def assert_same(local: SearchResult, remote: SearchResult) -> None:
    problems = disagreements(local, remote)
    assert not problems, problems


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(expr=expressions(), seed=st.integers(0, 2**32 - 1))
def test_random_hybrid_plans_agree_with_the_local_store(
        both: tuple[LocalStore, OpenSearchStore], expr: Node, seed: int) -> None:
    local, remote = both
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    vectors = {KEY: vector}
    executable = plan(expr, vectors, local.quantizers, SCHEMA)
    assume(_safe(executable, _distances(local, vector)))
    assert_same(local.search(executable, vectors, size=DOCS),
                remote.search(executable, vectors, size=DOCS))


GOLDEN_QUERIES = [
    "(and (or (term a:1) (term a:2)) (or (and (term b:1) (term b:2)) (nn m :radius 0.4 :nprobe 2)))",
    "(nn m :k 7)",
    "(and (term a:1) (nn m :k 5))",
    "(or (term b:3) (nn m :k 4 :nprobe 2))",
    "(difference (nn m :radius 0.9 :exact true) (nn m :k 3))",
    "(or (nn m :k 3) (and (term a:3) (nn m :k 2)))",
    "(difference (term a:1) (term b:2))",
    # (a keyword namespace: one term per match; the random plans hold several)
    '(or (match a "1") (nn m :radius 0.5 :nprobe 2))',
    '(and (term b:1) (match a "2" :k 5))',
    # a top-K clause that finds nothing keeps its named siblings reported
    '(or (nn m :radius 0.3 :exact true) (and (term a:2) (match b "9" :k 2)))',
    '(difference (match a "3") (match b "2"))',
]


@pytest.mark.parametrize("text", GOLDEN_QUERIES)
def test_fixed_hybrid_queries_agree(both: tuple[LocalStore, OpenSearchStore], text: str) -> None:
    local, remote = both
    vector = np.array([0.3, -0.2, 0.9], np.float32)
    vectors = {KEY: vector}
    assert remote.quantizers[KEY].nlist == NLIST
    local_result = search_text(local, text, vectors, DOCS)
    assert local_result.hits, "the query should match something"
    assert_same(local_result, search_text(remote, text, vectors, DOCS))


def test_pages_follow_one_order(both: tuple[LocalStore, OpenSearchStore]) -> None:
    _, remote = both
    vectors = {KEY: np.array([0.3, -0.2, 0.9], np.float32)}
    executable = plan(parse("(or (term a:1) (nn m :radius 1.2 :exact true))", SCHEMA), vectors,
                      remote.quantizers, SCHEMA)
    whole = remote.search(executable, vectors, size=30).ids
    pages = [remote.search(executable, vectors, size=10, start=s).ids for s in (0, 10, 20)]
    assert sum(pages, []) == whole


def test_stored_documents_read_back_as_in_the_local_store(
        both: tuple[LocalStore, OpenSearchStore]) -> None:
    local, remote = both
    ids = [f"d{i:03d}" for i in range(0, DOCS, 7)] + ["missing"]
    for mine, theirs in zip(local.get_documents(ids), remote.get_documents(ids), strict=True):
        if mine is None:
            assert theirs is None
            continue
        assert theirs is not None
        assert (theirs.id, dict(theirs.terms), theirs.rank, dict(theirs.source)) == (
            mine.id, dict(mine.terms), mine.rank, dict(mine.source))
        assert theirs.embeddings.keys() == mine.embeddings.keys()
        for key, vector in mine.embeddings.items():
            np.testing.assert_array_equal(theirs.embeddings[key], vector)
    stats = remote.stats()
    assert (stats.documents, dict(stats.embeddings), dict(stats.quantizers)) == (
        DOCS, dict(local.stats().embeddings), {KEY: NLIST})


def test_terms_and_vectors_read_back_as_in_the_local_store(
        both: tuple[LocalStore, OpenSearchStore]) -> None:
    """The reranker's reads: terms of some namespaces (cluster ones too) and vectors."""
    local, remote = both
    ids = [f"d{i:03d}" for i in range(0, DOCS, 3)] + ["missing", "d000"]
    namespaces = [*NAMESPACES[:2], f"{KEY}.cluster", "nope"]
    mine = local.get_terms(ids, namespaces)
    assert mine == remote.get_terms(ids, namespaces)
    assert any(len(terms) >= 2 for terms in mine) and mine[-2] == {}
    assert remote.get_terms(ids, []) == [{} for _ in ids] and remote.get_terms([], namespaces) == []
    vectors = local.get_vectors(ids, KEY)
    theirs = remote.get_vectors(ids, KEY)
    assert theirs.keys() == vectors.keys() and len(vectors) > len(ids) // 2
    for doc_id, vector in vectors.items():
        np.testing.assert_array_equal(theirs[doc_id], vector)


def test_all_vectors_and_tune_read_the_same_embeddings_as_the_local_store(
        both: tuple[LocalStore, OpenSearchStore], opensearch_url: str, tmp_path: Path) -> None:
    local, remote = both
    ids, vectors = remote.all_vectors(KEY)
    mine, expected = local.all_vectors(KEY)
    assert ids == mine and len(ids) > 50
    np.testing.assert_array_equal(vectors, expected)
    args = ["--key", KEY, "--nlist", "4", "--nprobe", "1,2", "--pq-bytes", "0",
            "--num-queries", "10", "--quiet"]
    runs = [CliRunner().invoke(cli, ["tune", opensearch_url, "--index", remote.index, *args,
                                     "--output", str(tmp_path / "remote")]),
            CliRunner().invoke(cli, ["tune", str(local.directory), *args,
                                     "--output", str(tmp_path / "local")])]
    assert [r.exit_code for r in runs] == [0, 0], [r.output for r in runs]
    reports = [json.loads((tmp_path / d / "tune.json").read_text()) for d in ("remote", "local")]
    assert reports[0]["topk"] == reports[1]["topk"] and reports[0]["radius"] == reports[1]["radius"]


# -- life cycle and writes ------------------------------------------------------------------


@pytest.fixture()
def empty(opensearch_url: str) -> Iterator[OpenSearchStore]:
    index = fresh_index()
    store = OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene")
    try:
        yield store
    finally:
        store.close()
        OpenSearchStore.drop(opensearch_url, index)


def test_writes_count_what_they_did_and_the_next_search_sees_them(
        empty: OpenSearchStore) -> None:
    docs = corpus(3)[:10]
    assert empty.add(docs).added == 10
    again = empty.add(docs[:4])
    assert (again.added, again.replaced) == (0, 4)
    assert empty.delete(["d000", "d001", "nope"]).deleted == 2
    result = search_text(empty, "(or (term a:1) (term a:2) (term a:3) (term b:1) (term b:2) "
                                "(term b:3))", {}, 100)
    assert "d000" not in result.ids and "d002" in result.ids
    assert empty.stats().documents == 8


def test_bad_input_writes_nothing(empty: OpenSearchStore) -> None:
    docs = corpus(4)[:5] + [IndexDocument("bad", embeddings={KEY: [1.0, 2.0]})]
    with pytest.raises(DimensionError, match="bad"):
        empty.add(docs)
    assert empty.stats().documents == 0


def test_documents_the_cluster_refuses_are_reported_each(
        empty: OpenSearchStore) -> None:
    empty.add(corpus(5)[:3])
    empty.client.indices.put_settings(index=empty.index,
                                      body={"index": {"blocks": {"write": True}}})
    try:
        with pytest.raises(BulkWriteError) as caught:
            empty.add(corpus(5)[3:6])
    finally:
        empty.client.indices.put_settings(index=empty.index,
                                          body={"index": {"blocks": {"write": False}}})
    assert sorted(i for i, _, _ in caught.value.failures) == ["d003", "d004", "d005"]
    assert all(status == 403 for _, status, _ in caught.value.failures)
    assert "3 documents of the batch were refused" in str(caught.value)
    assert empty.stats().documents == 3


@pytest.mark.parametrize("in_flight", [1, 2])
def test_chunks_in_flight_write_everything_and_report_each_refusal(
        empty: OpenSearchStore, monkeypatch: pytest.MonkeyPatch, in_flight: int) -> None:
    """A batch of many chunks, sent with one or two requests in flight: every document is
    written but the one the cluster refuses (an immense term, in a middle chunk), which is
    reported with its id."""
    monkeypatch.setattr("ebr.stores.opensearch.store.CHUNK_DOCUMENTS", 7)
    empty.bulk_in_flight = in_flight
    docs = corpus(8)[:40]
    docs[17] = IndexDocument("huge", {"a": ["x" * 40_000]})
    with pytest.raises(BulkWriteError) as caught:
        empty.add(docs)
    (doc_id, status, reason), = caught.value.failures
    assert (doc_id, status) == ("huge", 400) and "immense term" in reason
    assert caught.value.written.added == 39
    assert empty.stats().documents == 39
    assert empty.get_documents(["d000", "d039", "huge"])[2] is None
    assert empty.delete([d.id for d in docs]).deleted == 39


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", None])
def test_bulk_in_flight_must_be_a_whole_number_of_requests(
        empty: OpenSearchStore, bad: object) -> None:
    """A count the bulk helper cannot run with is refused where it is set, with a one-line
    StoreError (not the thread pool's ValueError at the next write), and nothing changes."""
    with pytest.raises(StoreError, match=r"bulk_in_flight must be a whole number >= 1"):
        empty.bulk_in_flight = bad  # type: ignore[assignment]
    assert empty.bulk_in_flight == BULK_IN_FLIGHT
    empty.bulk_in_flight = 3
    assert empty.add(corpus(10)[:5]).added == 5 and empty.bulk_in_flight == 3


def test_documents_refused_for_now_are_sent_again(empty: OpenSearchStore) -> None:
    """429 per document (an index blocked for want of disk: read-only, deletes allowed):
    retried with backoff, so a block lifted meanwhile loses nothing."""
    with _blocked_a_moment(empty):
        assert empty.add(corpus(9)[:20]).added == 20
    assert empty.stats().documents == 20


@contextlib.contextmanager
def _blocked_a_moment(store: OpenSearchStore) -> Iterator[None]:
    """The index blocked (read only, deletes allowed: each document written is refused
    with 429) for 1.5 s from now; the block lifted when the block ends."""
    block = {"index": {"blocks": {"read_only_allow_delete": True}}}
    store.client.indices.put_settings(index=store.index, body=block)
    lifted = threading.Timer(1.5, store.client.indices.put_settings, kwargs={
        "index": store.index, "body": {"index": {"blocks": {"read_only_allow_delete": None}}}})
    lifted.start()
    try:
        yield
    finally:
        lifted.join()


@pytest.fixture()
def helper_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bulk requests of 10 documents; each call of opensearch-py's ``parallel_bulk`` (the
    real one) recorded."""
    monkeypatch.setattr("ebr.stores.opensearch.store.CHUNK_DOCUMENTS", 10)
    calls: list[int] = []
    parallel_bulk = helpers.parallel_bulk

    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls))
        return parallel_bulk(*args, **kwargs)

    monkeypatch.setattr(helpers, "parallel_bulk", recorded)
    return calls


def test_batches_handed_over_before_each_answer_share_one_bulk_helper_call(
        empty: OpenSearchStore, helper_calls: list[int]) -> None:
    """Within ``batched_writes``, each batch handed over before the previous one is waited
    for (as the ingest does) joins the same ``parallel_bulk`` call: the cluster never waits
    for a new call between batches, and each batch gets its own answer."""
    docs = corpus(12)[:40]
    with empty.batched_writes():
        pending = [empty.add_pending(docs[:10])]
        for start in range(10, 40, 10):
            pending.append(empty.add_pending(docs[start:start + 10]))
            assert pending[-2].result().added == 10
        assert helper_calls == [0]
    assert pending[-1].result().added == 10
    assert helper_calls == [0]  # the block's end sent the last batch in the same call
    assert empty.stats().documents == 40


def _answered_within(pending: PendingWrite, seconds: float) -> WriteResult:
    """``pending``'s answer, failing the test if none comes in ``seconds``."""
    answer: list[WriteResult] = []
    waiting = threading.Thread(target=lambda: answer.append(pending.result()), daemon=True)
    waiting.start()
    waiting.join(seconds)
    assert answer, f"no answer in {seconds} s"
    return answer[0]


def test_a_batch_waited_for_with_less_than_a_chunk_after_it_is_sent(
        empty: OpenSearchStore, helper_calls: list[int]) -> None:
    """The helper sends a partial request only once its actions end: a batch waited for
    with fewer than a request's documents handed over after it (a small last batch) ends
    the helper call rather than waiting forever, and the next batch starts another."""
    docs = corpus(13)[:30]
    with empty.batched_writes():
        first = empty.add_pending(docs[:15])  # a request of 10, and 5 waiting for more
        second = empty.add_pending(docs[15:18])
        assert _answered_within(first, 60).added == 15
        assert second.done() and second.result().added == 3
        assert _answered_within(empty.add_pending(docs[18:30]), 60).added == 12
    assert helper_calls == [0, 1]
    assert empty.stats().documents == 30


def test_documents_refused_for_now_in_a_stream_are_sent_again_behind_later_batches(
        empty: OpenSearchStore, helper_calls: list[int]) -> None:
    """429 per document while batches are in flight: the refused documents go back into the
    stream (behind the batch handed over after theirs) and each batch is answered once its
    documents are written, nothing lost when the block is lifted."""
    docs = corpus(14)[:30]
    with _blocked_a_moment(empty), empty.batched_writes():
        first = empty.add_pending(docs[:10])
        second = empty.add_pending(docs[10:20])
        assert _answered_within(first, 60).added == 10
        third = empty.add_pending(docs[20:30])
    assert (second.result().added, third.result().added) == (10, 10)
    assert empty.stats().documents == 30


def test_lines_made_ahead_are_sent_unless_a_quantizer_changed_since(
        empty: OpenSearchStore) -> None:
    """``render_ahead`` (the ingest's reading thread) makes the bulk lines a later ``add``
    sends as they are; lines made before the quantizer changed are made again, so no document
    is written with the old quantizer's cluster."""
    docs = prepare_batch(SCHEMA, corpus(11)[:24])
    centroids = np.random.default_rng(0).standard_normal((NLIST, DIM)).astype(np.float32)
    swapped = centroids[::-1].copy()  # every document's cluster c becomes NLIST - 1 - c
    empty.set_quantizer(KEY, centroids)
    sources: list[str] = []
    source = empty._source
    empty._source = lambda doc, clusters: sources.append(doc.id) or source(doc, clusters)  # type: ignore[method-assign]
    empty.render_ahead(docs[:12])
    assert sources == [d.id for d in docs[:12]]  # made now
    assert empty.add(docs[:12]).added == 12
    assert len(sources) == 12  # and sent as made
    empty.render_ahead(docs[12:])
    empty.set_quantizer(KEY, swapped)
    assert empty.add(docs[12:]).added == 12
    assert sources[12:] == [d.id for d in docs[12:]] * 2  # made again for the new quantizer
    quantizer = CentroidQuantizer(swapped)
    for doc, stored in zip(docs, empty.get_documents([d.id for d in docs]), strict=True):
        assert stored is not None
        if KEY in doc.vectors:
            cluster = int(assign(quantizer, doc.vectors[KEY][None])[0])
            assert stored.terms[f"{KEY}.cluster"] == (str(cluster),), doc.id


def test_life_cycle(opensearch_url: str) -> None:
    index = fresh_index()
    with OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene") as store:
        store.add(corpus(6)[:40])
        reports = store.train_quantizers(nlist=3)
        assert reports[KEY].nlist == 3 and reports[KEY].vectors == store.stats().embeddings[KEY]
        with pytest.raises(StoreError, match="exists"):
            OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene")
    with OpenSearchStore.open(opensearch_url, index) as store:
        assert store.schema == SCHEMA and store.engine == "lucene"
        quantizer = store.quantizers[KEY]
        docs = [d for d in store.get_documents([f"d{i:03d}" for i in range(40)]) if d]
        for doc in docs:  # every document's cluster term is its quantizer's assignment
            if KEY in doc.embeddings:
                unit = doc.embeddings[KEY] / np.linalg.norm(doc.embeddings[KEY])
                assert doc.terms[f"{KEY}.cluster"] == (str(int(quantizer.assign(unit[None])[0])),)
    OpenSearchStore.drop(opensearch_url, index)
    with pytest.raises(StoreError, match="no index"):
        OpenSearchStore.open(opensearch_url, index)


def test_create_survives_a_retry_after_a_lost_answer(opensearch_url: str) -> None:
    """The client retries a request that timed out: here each index creation reaches the
    cluster and its answer is lost, as a timeout loses it, so the retry finds the index made."""
    from opensearchpy.exceptions import ConnectionTimeout

    from ebr.stores.opensearch.client import connect

    index = fresh_index()
    client = connect(opensearch_url)
    connection = client.transport.connection_pool.connections[0]
    perform = connection.perform_request
    lost: list[str] = []

    def answer_lost_once(method: str, url: str, *args: object, **kwargs: object) -> object:
        answer = perform(method, url, *args, **kwargs)
        if method == "PUT" and url.count("/") == 1 and url not in lost:  # PUT /<index>
            lost.append(url)
            raise ConnectionTimeout("TIMEOUT", "the answer was lost", None)
        return answer

    connection.perform_request = answer_lost_once
    try:
        with OpenSearchStore.create(client, index, SCHEMA, engine="lucene") as store:
            store.add(corpus(8)[:10])
            assert store.stats().documents == 10
        assert sorted(lost) == sorted([f"/{index}", f"/{index}.ebr-meta"])
        assert OpenSearchStore.open(client, index).schema == SCHEMA
    finally:
        connection.perform_request = perform
        OpenSearchStore.drop(client, index)
        client.close()


def test_create_refuses_an_index_another_client_made_meanwhile(opensearch_url: str) -> None:
    """Between create's check that the index is absent and its creation (model training can
    take minutes), another client makes it: refused, not adopted, and that index untouched."""
    from ebr.stores.opensearch.client import connect

    index = fresh_index()
    client = connect(opensearch_url)
    connection = client.transport.connection_pool.connections[0]
    perform = connection.perform_request

    def another_client_first(method: str, url: str, *args: object, **kwargs: object) -> object:
        if method == "PUT" and url == f"/{index}":
            perform("PUT", url, body=b'{"mappings": {"properties": {"x": {"type": "keyword"}}}}')
        return perform(method, url, *args, **kwargs)

    connection.perform_request = another_client_first
    try:
        with pytest.raises(StoreError, match="created by another client"):
            OpenSearchStore.create(client, index, SCHEMA, engine="lucene")
        connection.perform_request = perform
        assert not client.indices.exists(index=f"{index}.ebr-meta")  # its own undone
        assert list(client.indices.get_mapping(index=index)[index]["mappings"]["properties"]) == ["x"]
    finally:
        connection.perform_request = perform
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


def test_an_index_ebr_did_not_make_is_left_alone(opensearch_url: str) -> None:
    index = fresh_index("other")
    with OpenSearchStore.create(opensearch_url, fresh_index(), SCHEMA, engine="lucene") as store:
        client = store.client
        client.indices.create(index=index, body={"mappings": {"properties": {"x": {"type": "keyword"}}}})
        try:
            with pytest.raises(StoreError, match="not an ebr index"):
                OpenSearchStore.drop(client, index)
            with pytest.raises(StoreError, match="not an ebr index"):
                OpenSearchStore.open(client, index)
            assert client.indices.exists(index=index)
        finally:
            client.indices.delete(index=index)
        OpenSearchStore.drop(client, store.index)


def test_a_cluster_that_does_not_answer_is_a_clean_error() -> None:
    with pytest.raises(StoreError, match="no OpenSearch answers at http://127.0.0.1:9"):
        OpenSearchStore.open("http://127.0.0.1:9", "x", timeout=2)


PQ_SCHEMA = Schema.create("pq", (Namespace("a", "keyword"),), (EmbeddingKey(
    "p", 8, CoarseQuantizerSpec(nlist=4, pq_m=2, opq=True)),))


def pq_corpus(n: int = 300) -> list[IndexDocument]:
    rng = np.random.default_rng(11)
    return [IndexDocument(f"p{i:04d}", {"a": [str(i % 3)]}, embeddings={"p": rng.standard_normal(8)})
            for i in range(n)]


def test_pq_tables_and_fingerprints_are_kept_with_the_index(opensearch_url: str,
                                                             tmp_path: Path) -> None:
    """The OpenSearch store trains the PQ/OPQ tables the schema asks for from the same sample
    as the local store (so they are equal), keeps them and the encoder's fingerprint in the
    metadata index, and ``open`` reads them back."""
    index = fresh_index()
    with LocalStore.create(tmp_path / "local", PQ_SCHEMA) as local:
        local.add(pq_corpus())
        local.train_quantizers(seed=0)
        expected = local._snapshot.products["p"]
    with OpenSearchStore.create(opensearch_url, index, PQ_SCHEMA, engine="lucene") as store:
        store.add(pq_corpus())
        assert store.products == {}
        store.train_quantizers(seed=0)
        store.set_fingerprint("p", "ab" * 32)
        store.set_fingerprint("p", "ab" * 32)  # the same again: nothing to do
        with pytest.raises(StoreError, match="embeddings of the model with fingerprint abab"):
            store.set_fingerprint("p", "cd" * 32)
    try:
        with OpenSearchStore.open(opensearch_url, index) as store:
            product = store.products["p"]
            assert store.fingerprints == {"p": "ab" * 32}
            assert product.rotation is not None and expected.rotation is not None
            np.testing.assert_allclose(product.centroids, expected.centroids, atol=1e-6)
            np.testing.assert_allclose(product.codebooks, expected.codebooks, atol=1e-5)
            np.testing.assert_allclose(product.rotation, expected.rotation, atol=1e-5)
            np.testing.assert_array_equal(store.quantizers["p"].centroids, product.centroids)
            store.set_quantizer("p", expected.centroids)  # new centroids: the old tables go
            assert store.products == {}
        with OpenSearchStore.open(opensearch_url, index) as store:
            assert store.products == {} and store.fingerprints == {"p": "ab" * 32}
    finally:
        OpenSearchStore.drop(opensearch_url, index)
