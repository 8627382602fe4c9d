"""The local store's behaviour: writes visible to the next search, reopen, quantizer
training, ordering, explanations, failures mid-write, locking and life cycle."""

from __future__ import annotations

import dataclasses
import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_corpus import QUERIES, SYNTHETIC_SCHEMA, WORDS, query_vector, synthetic

from ebr import CentroidQuantizer, PlanError, Within, parse, plan
from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.quantization.coarse import unit_rows
from ebr.query.nodes import NN
from ebr.stores.local import LocalStore, database
from ebr.stores.protocol import IndexDocument, SearchResult, WriteResult, search_text


def summary(result: SearchResult) -> list[Any]:
    """A result with floats rounded (reopen may renumber documents)."""
    return [(h.id, h.branches, round(h.score, 9), h.rank,
             tuple((c.branch, c.key, round(c.distance, 9), c.probe_rank) for c in h.clauses))
            for h in result.hits]


@pytest.fixture
def trained(tmp_path: Path) -> Any:
    store = LocalStore.create(tmp_path / "index", SYNTHETIC_SCHEMA)
    store.add(synthetic(300))
    store.train_quantizers(seed=7)
    yield store
    store.close()


def ids(store: LocalStore, text: str, seed: int = 0) -> list[str]:
    return search_text(store, text, query_vector(seed), size=1000).ids


# -- writes are visible to the next search ---------------------------------------------------


def test_re_adding_an_id_replaces_the_whole_document(tmp_path: Path) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        e = np.ones(8, np.float32)
        first = store.add([IndexDocument("a", {"loc": ["x"]}, {"text": "red lamp"}, {"e": e}),
                           IndexDocument("b", {"loc": ["x"]})])
        assert first == WriteResult(added=2)
        again = store.add([IndexDocument("a", {"loc": ["y"]}, source={"v": 2}),
                              IndexDocument("c")])
        assert again == WriteResult(added=1, replaced=1)
        assert ids(store, "(term loc:x)") == ["b"]
        assert ids(store, "(term loc:y)") == ["a"]
        assert ids(store, "(match text \"red\")") == []
        assert ids(store, "(nn e :k 5)") == []  # the new version has no embedding
        assert store.get_vectors(["a"], "e") == {}
        (doc,) = store.get_documents(["a"])
        assert doc is not None and doc.source == {"v": 2} and dict(doc.terms) == {"loc": ("y",)}
        assert store.stats().documents == 3 and store.stats().embeddings == {"e": 0}


def test_deletes_are_visible_and_unknown_ids_ignored(trained: LocalStore) -> None:
    before = ids(trained, "(term loc:l1)")
    result = trained.delete([before[0], before[1], "no-such-doc", before[0]])
    assert result == WriteResult(deleted=2)
    assert ids(trained, "(term loc:l1)") == before[2:]
    assert trained.get_documents([before[0]]) == [None]
    assert before[0] not in ids(trained, "(nn e :radius 2 :exact true)")
    assert trained.stats().documents == 298


def test_reopen_gives_identical_results(trained: LocalStore) -> None:
    trained.add(synthetic(20, seed=3, start=300))  # after training: assigned on the way in
    trained.delete(["doc0005", "doc0310"])
    trained.add([dataclasses.replace(d, rank=5.0) for d in synthetic(3, seed=9, start=10)])
    expected = [summary(search_text(trained, q, query_vector(i), 50))
                for i, q in enumerate(QUERIES)]
    centroids = trained.quantizers["e"].centroids.copy()
    stats = dataclasses.replace(trained.stats(), disk_bytes=None)
    path = trained.directory
    trained.close()
    with LocalStore.open(path) as again:
        assert np.array_equal(again.quantizers["e"].centroids, centroids)
        assert dataclasses.replace(again.stats(), disk_bytes=None) == stats
        got = [summary(search_text(again, q, query_vector(i), 50)) for i, q in enumerate(QUERIES)]
    assert got == expected
    assert any(expected)  # the queries do match something


def test_order_does_not_depend_on_insertion_order(tmp_path: Path) -> None:
    docs = synthetic(120, seed=4)
    results = []
    for name, batches in (("forward", [docs]), ("shuffled", [docs[60:][::-1], docs[:60]])):
        with LocalStore.create(tmp_path / name, SYNTHETIC_SCHEMA) as store:
            for batch in batches:
                store.add(batch)
            store.set_quantizer("e", np.eye(8, dtype=np.float32))
            results.append([summary(search_text(store, q, query_vector(i), 40))
                            for i, q in enumerate(QUERIES)])
    assert results[0] == results[1]


def test_ties_are_broken_by_rank_then_id(tmp_path: Path) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        store.add([IndexDocument(i, {"loc": ["x"]}, rank=r)
                   for i, r in (("b", 1.0), ("a", 1.0), ("c", 2.0), ("d", 0.0), ("aa", 1.0))])
        assert ids(store, "(term loc:x)") == ["c", "a", "aa", "b", "d"]
        assert search_text(store, "(term loc:x)", {}, size=2).ids == ["c", "a"]
        assert search_text(store, "(term loc:x)", {}, size=0).hits == ()


# -- quantizers ------------------------------------------------------------------------------


def test_probing_before_training_asks_to_train(tmp_path: Path) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(30))
        with pytest.raises(PlanError, match="train .*:exact true"):
            search_text(store, "(nn e :radius 0.5 :nprobe 2)", query_vector(0))
        assert ids(store, "(nn e :radius 0.5 :exact true)") is not None
        assert store.stats().quantizers == {"e": None}


def test_training_assigns_every_document_its_cluster_term(trained: LocalStore) -> None:
    trained.add(synthetic(10, seed=2, start=500))
    quantizer = trained.quantizers["e"]
    assert quantizer.nlist == 8 and trained.stats().quantizers == {"e": 8}
    all_ids = ids(trained, "(or (term loc:l1) (term loc:l2) (term loc:l3) (term loc:l4) "
                           "(term loc:l5) (term loc:l6) (term loc:l7) (term loc:l8) (term loc:l9))")
    docs = trained.get_documents(all_ids)
    with_vectors = [d for d in docs if d is not None and "e" in d.embeddings]
    assert len(with_vectors) > 250
    for d in docs:
        assert d is not None
        clusters = d.terms.get("e.cluster", ())
        if "e" not in d.embeddings:
            assert clusters == ()
            continue
        want = quantizer.assign(unit_rows(d.embeddings["e"][None, :]))[0]
        assert clusters == (str(want),)
        assert d.id in ids(trained, f"(term e.cluster:{want})")


def test_training_is_seeded(tmp_path: Path) -> None:
    centroids = []
    for name in ("one", "two"):
        with LocalStore.create(tmp_path / name, SYNTHETIC_SCHEMA) as store:
            store.add(synthetic(200))
            report = store.train_quantizers(sample_size=150, nlist=4, seed=3)["e"]
            assert (report.vectors, report.sample, report.nlist) == (
                store.stats().embeddings["e"], 150, 4)
            centroids.append(store.quantizers["e"].centroids)
    assert np.array_equal(centroids[0], centroids[1])
    np.testing.assert_allclose(np.linalg.norm(centroids[0], axis=1), 1.0, rtol=1e-5)


def test_training_after_deletes_equals_training_on_the_live_documents(tmp_path: Path) -> None:
    """Training reads the live rows in place when they are the matrix's first rows, else
    gathers them: both see the same vectors in the same order."""
    docs = synthetic(200)
    centroids = []
    with LocalStore.create(tmp_path / "gathered", SYNTHETIC_SCHEMA) as store:
        store.add(docs)
        store.delete([d.id for d in docs[::3]])
        store.add(docs[1:6])  # replaced: new rows at the end, the old ones dead
        store.train_quantizers(sample_size=100, nlist=4, seed=3)
        centroids.append(store.quantizers["e"].centroids)
    live = [d for n, d in enumerate(docs) if n % 3 and not 1 <= n < 6] + docs[1:6]
    with LocalStore.create(tmp_path / "in_place", SYNTHETIC_SCHEMA) as store:
        store.add(live)
        store.train_quantizers(sample_size=100, nlist=4, seed=3)
        centroids.append(store.quantizers["e"].centroids)
    assert np.array_equal(centroids[0], centroids[1])


def test_training_refusals(tmp_path: Path) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(5))
        with pytest.raises(StoreError, match="vectors for 8 clusters"):
            store.train_quantizers()
        with pytest.raises(StoreError, match="unknown embedding key 'zz'"):
            store.train_quantizers(["zz"])
        with pytest.raises(StoreError, match=r"\(nlist, 8\)"):
            store.set_quantizer("e", np.ones((2, 3)))
        with pytest.raises(StoreError, match="NaN"):
            store.set_quantizer("e", np.full((2, 8), np.nan))
        assert store.quantizers == {}


def test_probed_radius_explains_probe_ranks(trained: LocalStore) -> None:
    q = query_vector(0)
    executable = plan(parse("(nn e :radius 0.6 :nprobe 3)", trained.schema), q,
                      trained.quantizers, trained.schema)
    assert isinstance(executable, Within)
    result = trained.search(executable, q, 100)
    probes = trained.quantizers["e"].probe(q["e"], 3)
    assert result.hits
    for hit in result.hits:
        (clause,) = hit.clauses
        (doc,) = trained.get_documents([hit.id])
        assert doc is not None
        assert clause.probe_rank == probes.index(int(doc.terms["e.cluster"][0]))
        assert clause.distance <= 0.6


def test_top_k_probes_when_the_admitted_set_is_large(tmp_path: Path) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA, exact_threshold=50) as store:
        store.add(synthetic(300))
        store.train_quantizers(seed=1)
        q = query_vector(1)
        result = search_text(store, "(nn e :k 5 :nprobe 2)", q)
        (choice,) = result.stats.topk
        assert choice.strategy == "probe" and choice.nprobe == 2 and choice.branch == "q"
        assert choice.verified == choice.admitted < store.stats().embeddings["e"]
        small = search_text(store, "(and (term loc:l3) (nn e :k 5 :nprobe 2))", q)
        assert small.stats.topk[0].strategy == "exact"  # few admitted: exact is cheaper
        assert len(result.hits) == 5


# -- explanations and stats -------------------------------------------------------------------


def test_paper_hybrid_query_explains_each_hit(tmp_path: Path) -> None:
    """EBR §4.2.1 by hand (the same corpus as the osmem test): 'john smithe' misspelled
    finds John Smith in Seattle through the nn branch only."""
    key = "model-141795009"
    schema = Schema.create("people", (Namespace("text"), Namespace("location")),
                           (EmbeddingKey(key, 2, CoarseQuantizerSpec(nlist=2)),))
    near, far = [1.0, 0.1], [0.0, 1.0]
    with LocalStore.create(tmp_path / "people", schema) as store:
        store.add([
            IndexDocument("smith-seattle", {"location": ["seattle"]}, {"text": "John Smith"},
                          {key: near}),
            IndexDocument("smithe-menlo", {"location": ["menlo_park"]}, {"text": "John Smithe"},
                          {key: far}),
            IndexDocument("smith-boston", {"location": ["boston"]}, {"text": "John Smith"},
                          {key: near}),
            IndexDocument("jane-seattle", {"location": ["seattle"]}, {"text": "Jane"}, {key: far}),
        ])
        store.set_quantizer(key, np.eye(2, dtype=np.float32))
        result = search_text(store, "(and (or (term location:seattle) (term location:menlo_park)) "
                                    "(or (and (term text:john) (term text:smithe)) "
                                    "(nn model-141795009 :radius 0.24 :nprobe 1)))",
                             {key: np.array([1.0, 0.0], np.float32)})
    hits = {h.id: h for h in result.hits}
    assert {i: set(h.branches) for i, h in hits.items()} == {
        "smith-seattle": {"q", "q.0", "q.0.0", "q.1", "q.1.0.0", "q.1.1"},
        "smithe-menlo": {"q", "q.0", "q.0.1", "q.1", "q.1.0", "q.1.0.0", "q.1.0.1"},
    }
    (clause,) = hits["smith-seattle"].clauses
    assert (clause.branch, clause.key, clause.probe_rank) == ("q.1.1", key, 0)
    assert clause.distance == pytest.approx(1 - 1 / np.hypot(1, 0.1))
    assert result.ids == ["smith-seattle", "smithe-menlo"]  # the nn match scores 2 - d
    assert hits["smith-seattle"].score == pytest.approx(2 - clause.distance)
    assert result.stats.total == 2


def test_stats_count_the_work(trained: LocalStore) -> None:
    n = trained.stats().embeddings["e"]
    exact = search_text(trained, "(nn e :radius 2 :exact true)", query_vector(0))
    assert exact.stats.candidates_verified == n and exact.stats.total == n
    assert exact.stats.documents_scanned == 0
    assert set(exact.stats.seconds) == {"match", "verify", "order"}
    probed = search_text(trained, "(and (term loc:l1) (nn e :radius 2 :nprobe 2))",
                         query_vector(0))
    assert 0 < probed.stats.candidates_verified < n
    assert probed.stats.documents_scanned >= probed.stats.candidates_verified


@pytest.mark.parametrize(("node", "vectors", "message"), [
    (Within("zz", 0.5), {"zz": np.ones(8, np.float32)}, "unknown embedding key 'zz'"),
    (NN("e", radius=0.5, nprobe=2), {"e": np.ones(8, np.float32)}, "must be planned"),
    (Within("e", 0.5), {}, "no query embedding for key 'e'"),
    (Within("e", 0.5), {"e": np.ones(3, np.float32)}, "dimension 3"),
    (Within("e", 0.5), {"e": np.zeros(8, np.float32)}, "non-zero"),
])
def test_plans_the_store_cannot_run(trained: LocalStore, node: Any, vectors: Any,
                                    message: str) -> None:
    with pytest.raises(PlanError, match=message):
        trained.search(node, vectors)


def test_size_must_be_a_count(trained: LocalStore) -> None:
    with pytest.raises(PlanError, match="size"):
        trained.search(Within("e", 0.5), query_vector(0), size=-1)


def test_fetch_documents_and_vectors(trained: LocalStore) -> None:
    docs = synthetic(3)
    got = trained.get_documents(["doc0002", "nope", "doc0000"])
    assert got[1] is None
    for want, have in ((docs[2], got[0]), (docs[0], got[2])):
        assert have is not None
        assert have.rank == want.rank and have.source == want.source
        assert set(have.terms["text"]) == set(str(want.text["text"]).split()) <= set(WORDS)
        if "e" in want.embeddings:
            assert np.array_equal(have.embeddings["e"], want.embeddings["e"])
    vectors = trained.get_vectors(["doc0000", "doc0001", "doc0002", "nope"], "e")
    assert set(vectors) == {d.id for d in docs if "e" in d.embeddings}
    assert all(v.dtype == np.float32 and v.shape == (8,) for v in vectors.values())
    with pytest.raises(StoreError, match="unknown embedding key"):
        trained.get_vectors(["doc0000"], "zz")


# -- failures, locking, life cycle -------------------------------------------------------------


def test_a_write_failing_inside_the_transaction_changes_nothing(
        trained: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    before = [summary(search_text(trained, q, query_vector(i), 50)) for i, q in enumerate(QUERIES)]
    real = database.insert_documents

    def insert_then_fail(*args: Any) -> None:
        real(*args)  # rows written inside the transaction, then the failure
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(database, "insert_documents", insert_then_fail)
    with pytest.raises(StoreError, match="the disk is full"):
        trained.add(synthetic(5, seed=8, start=900) + [dataclasses.replace(synthetic(1)[0],
                                                                           rank=9.0)])
    monkeypatch.undo()
    after = [summary(search_text(trained, q, query_vector(i), 50)) for i, q in enumerate(QUERIES)]
    assert after == before
    assert trained.get_documents(["doc0900"]) == [None]
    # The next write reuses what the failed one left in the append-only buffers.
    trained.add(synthetic(5, seed=6, start=700))
    assert ids(trained, "(nn e :radius 2 :exact true)")[-1:] != []
    path = trained.directory
    expected = [summary(search_text(trained, q, query_vector(i), 50))
                for i, q in enumerate(QUERIES)]
    trained.close()
    with LocalStore.open(path) as again:
        assert again.get_documents(["doc0900"]) == [None]
        assert again.get_documents(["doc0700"])[0] is not None
        got = [summary(search_text(again, q, query_vector(i), 50)) for i, q in enumerate(QUERIES)]
    assert got == expected


def test_one_writer_per_index(trained: LocalStore) -> None:
    with pytest.raises(StoreError, match="open for writing"):
        LocalStore.open(trained.directory)
    with LocalStore.open(trained.directory, readonly=True) as reader:
        assert reader.stats().documents == trained.stats().documents
        with pytest.raises(StoreError, match="read-only"):
            reader.add(synthetic(1))
    with pytest.raises(StoreError, match="open for writing"):
        LocalStore.drop(trained.directory)


def test_life_cycle(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "index"
    with pytest.raises(StoreError, match="no local index"):
        LocalStore.open(path)
    store = LocalStore.create(path, SYNTHETIC_SCHEMA)
    store.add(synthetic(3))
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        store.search(Within("e", 0.5), query_vector(0))
    with pytest.raises(StoreError, match="not an empty directory"):
        LocalStore.create(path, SYNTHETIC_SCHEMA)
    with LocalStore.open(path) as again:
        assert again.schema == SYNTHETIC_SCHEMA
        assert again.stats().documents == 3
    LocalStore.drop(path)
    assert not path.exists()
    with pytest.raises(StoreError, match="no local index"):
        LocalStore.drop(path)


def test_drop_keeps_files_it_does_not_own(tmp_path: Path) -> None:
    path = tmp_path / "index"
    LocalStore.create(path, SYNTHETIC_SCHEMA).close()
    (path / "notes.txt").write_text("mine")
    LocalStore.drop(path)
    assert [p.name for p in path.iterdir()] == ["notes.txt"]


def test_not_an_index(tmp_path: Path) -> None:
    path = tmp_path / "index"
    path.mkdir()
    (path / database.DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an ebr local index"):
        LocalStore.open(path)


def test_cluster_terms_match_the_planner_probes(trained: LocalStore) -> None:
    """A query equal to a stored vector probes (nprobe 1) exactly that document's cluster."""
    (doc,) = trained.get_documents(["doc0003"])
    assert doc is not None
    q = {"e": doc.embeddings["e"]}
    quantizer = trained.quantizers["e"]
    assert isinstance(quantizer, CentroidQuantizer)
    assert str(quantizer.probe(q["e"], 1)[0]) == doc.terms["e.cluster"][0]
    assert "doc0003" in ids_for(trained, "(nn e :radius 0.0001 :nprobe 1)", q)


def ids_for(store: LocalStore, text: str, vectors: dict[str, np.ndarray]) -> list[str]:
    return search_text(store, text, vectors, 1000).ids


def test_several_embedding_keys(tmp_path: Path) -> None:
    schema = Schema.create("two", (Namespace("a", "keyword"),),
                           (EmbeddingKey("x", 2, CoarseQuantizerSpec(nlist=2)),
                            EmbeddingKey("y", 3, CoarseQuantizerSpec(nlist=1))))
    docs = [IndexDocument("both", {"a": ["1"]}, embeddings={"x": [1, 0], "y": [0, 0, 1]}),
            IndexDocument("x-only", {"a": ["1"]}, embeddings={"x": [0, 1]}),
            IndexDocument("y-only", {"a": ["2"]}, embeddings={"y": [0, 1, 0]})]
    vectors = {"x": np.array([1, 0.2], np.float32), "y": np.array([0, 0.1, 1], np.float32)}
    text = "(or (nn x :radius 0.5 :nprobe 1) (nn y :k 1))"
    with LocalStore.create(tmp_path / "i", schema) as store:
        store.add(docs)
        store.set_quantizer("x", np.eye(2, dtype=np.float32))
        store.train_quantizers(["y"])
        first = summary(search_text(store, text, vectors))
        assert store.stats().embeddings == {"x": 2, "y": 2}
        assert store.stats().quantizers == {"x": 2, "y": 1}
    assert [(h[0], h[1]) for h in first] == [("both", ("q", "q.0", "q.1"))]
    with LocalStore.open(tmp_path / "i") as again:
        assert summary(search_text(again, text, vectors)) == first
        (doc,) = again.get_documents(["both"])
        assert doc is not None and dict(doc.terms) == {"a": ("1",), "x.cluster": ("0",),
                                                       "y.cluster": ("0",)}
