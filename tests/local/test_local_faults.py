"""The local store under faults: interrupts at every statement boundary of a write, full
disks, read-only media, damaged files, other programs' databases and a second writer.

"Memory = database" is checked through the public API: every term, cluster term and an
exact all-vectors search, the stats and the centroids, as the open store answers them and
as a fresh read-only open of the same directory does."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from local_corpus import SYNTHETIC_SCHEMA, WORDS, query_vector, synthetic

from ebr.stores.local import LocalStore
from ebr.stores.local.database import DB_FILE
from ebr.stores.protocol import search_text

ALL = ([f"(term loc:l{i})" for i in range(1, 10)] + [f"(term text:{w})" for w in WORDS]
       + [f"(term e.cluster:{c})" for c in range(8)] + ["(nn e :radius 2 :exact true)"])


def view(store: LocalStore) -> Any:
    """What searches see, order-free (a replaced document is renumbered)."""
    stats = store.stats()
    return (stats.documents, stats.embeddings, stats.terms, stats.quantizers,
            {k: q.centroids.tobytes() for k, q in store.quantizers.items()},
            [sorted((h.id, round(h.score, 6), h.rank) for h in
                    search_text(store, q, query_vector(0), 1000).hits) for q in ALL])


def on_disk(path: Path) -> Any:
    with LocalStore.open(path, readonly=True) as fresh:
        return view(fresh)


class Interrupting:
    """A real connection that raises KeyboardInterrupt at boundary ``at``, counting the
    boundaries before and after every statement (what Ctrl-C between statements does)."""

    def __init__(self, conn: sqlite3.Connection, at: int) -> None:
        self._conn = conn
        self.at = at
        self.seen = 0

    def _boundary(self) -> None:
        self.seen += 1
        if self.seen - 1 == self.at:
            raise KeyboardInterrupt

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self._boundary()
        cursor = self._conn.execute(*args)
        self._boundary()
        return cursor

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self._boundary()
        cursor = self._conn.executemany(*args)
        self._boundary()
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _fresh(path: Path, trained: bool) -> LocalStore:
    store = LocalStore.create(path, SYNTHETIC_SCHEMA, synchronous="NORMAL")
    store.add(synthetic(60))
    if trained:
        store.train_quantizers(seed=7)
    return store


OPERATIONS: dict[str, tuple[bool, Callable[[LocalStore], object]]] = {
    # new documents and replaced ones, with cluster terms from the trained quantizer
    "add": (True, lambda s: s.add(synthetic(5, seed=3, start=58))),
    "delete": (True, lambda s: s.delete(["doc0001", "doc0007", "doc0040", "nope"])),
    "train": (False, lambda s: s.train_quantizers(seed=7)),
    "set_quantizer": (True, lambda s: s.set_quantizer(
        "e", np.eye(8, dtype=np.float32))),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_interrupt_at_any_statement_boundary_leaves_memory_equal_to_the_database(
        tmp_path: Path, operation: str) -> None:
    trained, run = OPERATIONS[operation]
    with _fresh(tmp_path / "reference", trained) as store:
        before = view(store)
        run(store)
        after = view(store)
    assert after != before
    at = 0
    outcomes = set()
    while True:
        path = tmp_path / f"at{at}"
        with _fresh(path, trained) as store:
            real = store._conn
            wrapper = Interrupting(real, at)
            store._conn = wrapper  # type: ignore[assignment]
            try:
                run(store)
            except KeyboardInterrupt:
                pass
            else:
                break  # the operation has fewer boundaries than `at`: all were tried
            finally:
                store._conn = real
            memory = view(store)
            assert memory in (before, after), f"boundary {at}: neither before nor after"
            assert memory == on_disk(path), f"boundary {at}: memory differs from the database"
            outcomes.add(memory == after)
            run(store)  # the next write works, and lands whole
            assert view(store) == after == on_disk(path), f"boundary {at}: retry"
        at += 1
    assert at > 6, "too few boundaries: is the wrapper in the write path?"
    assert outcomes == {False, True}  # interrupts both before and after the commit


def test_an_interrupt_during_the_recovery_is_mended_by_the_next_write(
        tmp_path: Path) -> None:
    """Interrupted twice: in the write, and again while reloading; the next write reloads."""
    with _fresh(tmp_path / "i", True) as store:
        real = store._conn

        class Twice(Interrupting):
            def _boundary(self) -> None:
                self.seen += 1
                if self.seen in (12, 14):
                    raise KeyboardInterrupt

        store._conn = Twice(real, 0)  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            store.add(synthetic(5, seed=3, start=58))
        store._conn = real
        store.add(synthetic(2, seed=4, start=100))
        assert view(store) == on_disk(store.directory)
        assert store.stats().documents == on_disk_documents(store.directory)


def on_disk_documents(path: Path) -> int:
    conn = sqlite3.connect(path / DB_FILE)
    try:
        (n,) = conn.execute("SELECT count(*) FROM documents").fetchone()
        return int(n)
    finally:
        conn.close()

