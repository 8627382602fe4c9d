"""Bad input: each case raises its DocumentError subclass naming the document, its record
and the field; the whole batch is rejected, nothing of it is written, and earlier commits
are untouched (in memory and in the database)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ebr.mappings import EmbeddingKey, Namespace, Schema
from ebr.stores import documents
from ebr.stores.documents import (
    DimensionError,
    DocumentError,
    DuplicateIdError,
    InvalidDocumentError,
    InvalidTextError,
    InvalidVectorError,
    UnknownFieldError,
)
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument, search_text

SCHEMA = Schema.create("bad", (Namespace("a", "keyword"), Namespace("t", "standard")),
                       (EmbeddingKey("m", 3),))
GOOD = [1.0, 0.0, 0.0]


def doc(doc_id: Any = "bad", **fields: Any) -> IndexDocument:
    fields.setdefault("embeddings", {"m": GOOD})
    return IndexDocument(doc_id, **fields)


CASES: list[tuple[str, Any, type[DocumentError], str, str]] = [
    # name, the bad record, error, doc id in the message, field
    ("dimension", doc(embeddings={"m": [1.0, 2.0]}), DimensionError, "bad", "embeddings.m"),
    ("matrix not vector", doc(embeddings={"m": [GOOD]}), DimensionError, "bad", "embeddings.m"),
    ("nan", doc(embeddings={"m": [1.0, float("nan"), 0.0]}), InvalidVectorError, "bad",
     "embeddings.m"),
    ("inf", doc(embeddings={"m": np.array([np.inf, 0, 0])}), InvalidVectorError, "bad",
     "embeddings.m"),
    ("zero", doc(embeddings={"m": [0.0, 0.0, 0.0]}), InvalidVectorError, "bad", "embeddings.m"),
    ("beyond float32", doc(embeddings={"m": [1e39, 0.0, 0.0]}), InvalidVectorError, "bad",
     "embeddings.m"),
    ("not numbers", doc(embeddings={"m": ["x", "y", "z"]}), InvalidVectorError, "bad",
     "embeddings.m"),
    ("length overflows", doc(embeddings={"m": np.array([3e38, 3e38, 0], np.float32)}),
     InvalidVectorError, "bad", "embeddings.m"),
    ("length underflows", doc(embeddings={"m": np.array([1e-30, 0, 0], np.float32)}),
     InvalidVectorError, "bad", "embeddings.m"),
    ("unknown namespace", doc(terms={"nope": ["x"]}), UnknownFieldError, "bad", "terms.nope"),
    ("unknown text namespace", doc(text={"nope": "x"}), UnknownFieldError, "bad", "text.nope"),
    ("cluster namespace", doc(terms={"m.cluster": ["1"]}), UnknownFieldError, "bad",
     "terms.m.cluster"),
    ("unknown key", doc(embeddings={"zz": GOOD}), UnknownFieldError, "bad", "embeddings.zz"),
    ("bytes term", doc(terms={"a": [b"\xff"]}), InvalidTextError, "bad", "terms.a"),
    ("surrogate term", doc(terms={"a": ["ok", "\udcff"]}), InvalidTextError, "bad", "terms.a"),
    ("surrogate text", doc(text={"t": "caf\udce9"}), InvalidTextError, "bad", "text.t"),
    ("surrogate source", doc(source={"title": "\udcff"}), InvalidTextError, "bad", "source"),
    ("surrogate id", doc("b\udcffd"), InvalidTextError, "'b\\udcffd'", "id"),
    ("bytes id", doc(b"bad"), InvalidTextError, "b'bad'", "id"),
    ("empty term", doc(terms={"a": [""]}), InvalidTextError, "bad", "terms.a"),
    ("term list is a string", doc(terms={"a": "seattle"}), InvalidDocumentError, "bad",
     "terms.a"),
    ("rank nan", doc(rank=float("nan")), InvalidDocumentError, "bad", "rank"),
    ("rank text", doc(rank="high"), InvalidDocumentError, "bad", "rank"),
    ("rank infinite", doc(rank=float("inf")), InvalidDocumentError, "bad", "rank"),
    ("rank bool", doc(rank=True), InvalidDocumentError, "bad", "rank"),
    ("source not json", doc(source={"x": object()}), InvalidDocumentError, "bad", "source"),
    ("source nan", doc(source={"x": float("nan")}), InvalidDocumentError, "bad", "source"),
    ("source not object", doc(source=["x"]), InvalidDocumentError, "bad", "source"),
    ("empty id", doc(""), InvalidDocumentError, "", "id"),
    ("long id", doc("x" * 513), InvalidDocumentError, "xxx", "id"),
    ("not a document", {"id": "bad"}, InvalidDocumentError, "{'id': 'bad'}", "document"),
]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = LocalStore.create(tmp_path / "index", SCHEMA)
    s.add([IndexDocument("kept", {"a": ["x"]}, text={"t": "Hello"}, embeddings={"m": GOOD},
                         source={"v": 1})])
    yield s
    s.close()


def _state(s: LocalStore) -> Any:
    q = {"m": np.array(GOOD, np.float32)}
    docs = [None if d is None else (d.id, dict(d.terms), {k: v.tolist() for k, v in
                                                           d.embeddings.items()}, d.rank, d.source)
            for d in s.get_documents(["kept", "good-1", "good-2", "bad"])]
    stats = dataclasses.replace(s.stats(), disk_bytes=None)  # the WAL moves on close
    return stats, search_text(s, "(or (term a:x) (term a:y) (nn m :k 10))", q).hits, docs


@pytest.mark.parametrize(("name", "bad", "error", "doc_id", "field"), CASES,
                         ids=[c[0] for c in CASES])
@pytest.mark.filterwarnings("error")  # the error alone: no NumPy warning printed beside it
def test_bad_record_rejects_the_batch(store: LocalStore, name: str, bad: Any,
                                      error: type[DocumentError], doc_id: str,
                                      field: str) -> None:
    before = _state(store)
    version = store.version
    batch = [IndexDocument("good-1", {"a": ["y"]}, embeddings={"m": GOOD}), bad,
             IndexDocument("good-2", {"a": ["y"]})]
    with pytest.raises(error) as caught:
        store.add(batch)
    err = caught.value
    assert err.position == 1
    assert err.field == field
    assert doc_id in str(err) and field in str(err) and "record 1" in str(err)
    assert "rejected" in str(err)
    assert store.version == version
    assert _state(store) == before
    # nothing reached the database either
    path = store.directory
    store.close()
    with LocalStore.open(path, readonly=True) as again:
        assert _state(again) == before


def test_duplicate_ids_in_one_batch(store: LocalStore) -> None:
    before = _state(store)
    with pytest.raises(DuplicateIdError) as caught:
        store.add([IndexDocument("good-1"), IndexDocument("dup", {"a": ["1"]}),
                   IndexDocument("dup", {"a": ["2"]})])
    assert caught.value.doc_id == "dup" and caught.value.position == 2
    assert "first at record 1" in str(caught.value)
    assert _state(store) == before


def test_prepared_documents_are_only_checked_for_repeats(store: LocalStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """What the ingest pipeline hands over (prepared once) is written without a second
    check; an id repeated in the batch is still refused."""
    prepared = documents.prepare_batch(SCHEMA, [IndexDocument("p1", {"a": ["x"]}),
                                                IndexDocument("p2", {"a": ["y"]})])

    def checked_again(*args: Any) -> None:
        raise AssertionError("a prepared document was checked again")

    monkeypatch.setattr(documents, "_prepare", checked_again)
    assert store.add(prepared).added == 2
    assert [d and d.terms["a"] for d in store.get_documents(["p1", "p2"])] == [("x",), ("y",)]
    with pytest.raises(DuplicateIdError):
        store.add([prepared[0], prepared[0]])


def test_the_first_problem_in_batch_order_is_reported(store: LocalStore) -> None:
    with pytest.raises(DimensionError) as caught:
        store.add([IndexDocument("one", embeddings={"m": [1.0]}),
                   IndexDocument("two", terms={"nope": ["x"]})])
    assert caught.value.doc_id == "one"


def test_bad_id_in_a_delete_deletes_nothing(store: LocalStore) -> None:
    before = _state(store)
    with pytest.raises(InvalidTextError):
        store.delete(["kept", "\udcff"])
    assert _state(store) == before


def test_errors_are_ebr_errors() -> None:
    from ebr import EbrError

    for _, _, error, _, _ in CASES:
        assert issubclass(error, EbrError)
