"""The reranker's reads on the local store: ``get_terms`` (a range of the terms table) and
``get_vectors`` (the current snapshot, through its id map) must say what ``get_documents``,
which reads and verifies whole rows, says, after any writes (adds, replacements, deletions,
a reopen, a compaction, a quantizer trained), for any ids (unknown, repeated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

KEY = "m"
SCHEMA = Schema.create("reads", (Namespace("title", "english"), Namespace("tag", "keyword")),
                       (EmbeddingKey(KEY, 3, CoarseQuantizerSpec(nlist=2)),))
IDS = [f"d{i}" for i in range(8)]
NAMESPACES = ["title", "tag", "m.cluster", "nope"]

documents = st.builds(
    lambda i, words, tags, vector: IndexDocument(
        IDS[i], {"tag": tags} if tags else {}, {"title": " ".join(words)} if words else {},
        {KEY: vector} if vector is not None else {}),
    st.integers(0, len(IDS) - 1),
    st.lists(st.sampled_from(["red", "drills", "the", "cordless", "saw"]), max_size=4),
    st.lists(st.sampled_from(["a:b", "x y", "z"]), max_size=2, unique=True),
    st.none() | st.lists(st.floats(-1, 1, width=32), min_size=3, max_size=3)
    .filter(lambda v: any(abs(x) > 0.01 for x in v)).map(lambda v: np.array(v, np.float32)))
steps = st.lists(st.one_of(
    st.lists(documents, min_size=1, max_size=4, unique_by=lambda d: d.id).map(lambda d: ("add", d)),
    st.lists(st.sampled_from(IDS), min_size=1, max_size=3).map(lambda d: ("delete", d)),
    st.sampled_from([("reopen", None), ("train", None), ("save", None)])), min_size=1, max_size=10)


def assert_reads_agree(store: LocalStore) -> None:
    asked = [*IDS, "unknown", IDS[0]]
    whole = store.get_documents(asked)
    terms = store.get_terms(asked, NAMESPACES)
    vectors = store.get_vectors(asked, KEY)
    for doc_id, doc, got in zip(asked, whole, terms, strict=True):
        expected = {} if doc is None else {ns: doc.terms[ns] for ns in NAMESPACES if ns in doc.terms}
        assert got == expected, doc_id
        if doc is None or KEY not in doc.embeddings:
            assert doc_id not in vectors
        else:
            assert vectors[doc_id].dtype == np.float32
            np.testing.assert_array_equal(vectors[doc_id], doc.embeddings[KEY])
    assert store.get_terms(asked, []) == [{} for _ in asked]
    assert store.get_terms([], NAMESPACES) == [] and store.get_vectors([], KEY) == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_terms_and_vectors_read_as_the_whole_documents_say(tmp_path: Path, script: list) -> None:
    path = tmp_path / f"index-{np.random.default_rng().integers(1 << 40)}"
    store = LocalStore.create(path, SCHEMA, synchronous="OFF")
    try:
        for action, arg in script:
            if action == "add":
                store.add(arg)
            elif action == "delete":
                store.delete(arg)
            elif action == "save":  # compacts memory, renumbering it when half is dead
                store.save_snapshot()
            elif action == "reopen":
                store.close()
                store = LocalStore.open(path)
            else:
                store.set_quantizer(KEY, np.array([[1, 0, 0], [0, 1, 0]], np.float32))
            assert_reads_agree(store)
    finally:
        store.close()


def test_a_read_only_store_reads_its_own_commit(tmp_path: Path) -> None:
    """Vectors come from memory: a read-only store keeps the commit it opened, as its
    searches do, while the writer moves on."""
    path = tmp_path / "index"
    one, two = np.array([1, 0, 0], np.float32), np.array([0, 1, 0], np.float32)
    with LocalStore.create(path, SCHEMA) as writer:
        writer.add([IndexDocument("a", {"tag": ["z"]}, embeddings={KEY: one})])
        with LocalStore.open(path, readonly=True) as reader:
            writer.add([IndexDocument("a", {"tag": ["z"]}, embeddings={KEY: two}),
                        IndexDocument("b", embeddings={KEY: two})])
            got = reader.get_vectors(["a", "b"], KEY)
            assert list(got) == ["a"]
            np.testing.assert_array_equal(got["a"], one)
        np.testing.assert_array_equal(writer.get_vectors(["a"], KEY)["a"], two)
