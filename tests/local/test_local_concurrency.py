"""Searches running while a writer commits each see one whole commit.

The writer rewrites one group of documents per batch (same ids, a new version as rank,
terms and vectors).  Every search by a reader must find each group whole and at a single
version, and never see a group go back to an older version."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from ebr.mappings import EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument, search_text

SCHEMA = Schema.create("conc", (Namespace("grp", "keyword"), Namespace("ver", "keyword")),
                       (EmbeddingKey("e", 4),))
GROUPS, SIZE, BATCHES, READERS = 4, 25, 24, 2


def group(g: int, version: int) -> list[IndexDocument]:
    rng = np.random.default_rng(version)
    return [IndexDocument(f"g{g}-{i:02d}", {"grp": [str(g)], "ver": [str(version)]},
                          embeddings={"e": rng.normal(size=4).astype(np.float32)},
                          rank=float(version))
            for i in range(SIZE)]


def test_readers_see_whole_commits_while_a_writer_writes(tmp_path: Path) -> None:
    store = LocalStore.create(tmp_path / "index", SCHEMA)
    store.add([d for g in range(GROUPS) for d in group(g, 0)])
    q = {"e": np.array([1, 0, 0, 0], np.float32)}
    start = threading.Barrier(READERS + 1)
    done = threading.Event()
    errors: list[str] = []
    seen: list[set[float]] = [set() for _ in range(READERS)]

    def write() -> None:
        start.wait()
        try:
            for b in range(1, BATCHES + 1):
                store.add(group(b % GROUPS, b))
                done.wait(0.001)  # let readers in between commits
        finally:
            done.set()

    def read(r: int) -> None:
        start.wait()
        latest = [0.0] * GROUPS
        for i in range(100_000):  # bounded: the writer ends long before
            finished = done.is_set()
            g = i % GROUPS
            for text in (f"(term grp:{g})", f"(and (term grp:{g}) (nn e :k {SIZE}))",
                         f"(and (term grp:{g}) (nn e :radius 2 :exact true))"):
                hits = search_text(store, text, q, size=100).hits
                versions = {h.rank for h in hits}
                if len(hits) != SIZE or len(versions) != 1:
                    errors.append(f"{text}: {len(hits)} hits, versions {sorted(versions)}")
                    return
                (version,) = versions
                if version < latest[g]:
                    errors.append(f"group {g} went back from {latest[g]} to {version}")
                latest[g] = version
                seen[r].add(version)
            if finished:
                return

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read, args=(r,)) for r in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    store.close()
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    # the readers did overlap the writer: they saw several versions go by
    assert all(len(s) > 2 for s in seen), seen
