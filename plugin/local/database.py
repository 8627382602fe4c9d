"""The SQLite database: the source of truth of a local index.

Tables: ``meta`` (format, schema JSON), ``documents`` (id, rank, source JSON), ``terms``
(id, ``"ns:value"``), ``embeddings`` (id, key, float32 blob, coarse cluster or NULL before
training) and ``quantizers`` (key, float32 centroids).  Cluster terms are not rows of
``terms``: they are derived from ``embeddings.cluster``, so retraining rewrites one column.

Durability: WAL journal, ``synchronous=FULL`` by default.  In WAL mode every commit is
atomic whatever the setting; FULL also syncs the log at each commit, so a batch that
returned survives a power cut, not only a killed process.  Ingest commits a batch at a
time, so the sync costs little per document; ``synchronous="NORMAL"`` (safe against a
killed process, may lose the last commits on power loss, never corrupts) is there for bulk
loads that can be rerun.

A new index is built under a temporary name and moved into place with ``os.replace``, so a
crash while creating leaves either no index or a whole one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ebr.errors import SchemaError
from ebr.local.batch import PreparedDocument
from ebr.local.snapshot import cluster_term
from ebr.mappings.schema import Schema
from ebr.store import StoreError

FORMAT = "1"
DB_FILE = "index.sqlite"
Synchronous = Literal["FULL", "NORMAL"]

_DDL = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE documents (id TEXT PRIMARY KEY, rank REAL NOT NULL, source TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE terms (id TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (id, term)) WITHOUT ROWID;
CREATE TABLE embeddings (id TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,
    cluster INTEGER, PRIMARY KEY (id, key)) WITHOUT ROWID;
CREATE TABLE quantizers (key TEXT PRIMARY KEY, nlist INTEGER NOT NULL,
    dimension INTEGER NOT NULL, centroids BLOB NOT NULL) WITHOUT ROWID;
"""
_CHUNK = 500  # ids per IN (...) query


def connect(path: Path, *, readonly: bool = False,
            synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    if readonly:
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def create(directory: Path, schema: Schema) -> None:
    """A new database holding ``schema`` at ``directory/index.sqlite``."""
    final = directory / DB_FILE
    tmp = directory / (DB_FILE + ".tmp")
    tmp.unlink(missing_ok=True)  # left by a crash during an earlier create
    conn = sqlite3.connect(str(tmp), isolation_level=None)
    try:
        # The file is not the index until renamed: no per-statement syncs, one fsync below.
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(f"BEGIN; {_DDL} COMMIT;")
        conn.executemany("INSERT INTO meta VALUES (?, ?)",
                         [("format", FORMAT), ("schema", schema.to_json())])
        conn.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection is WAL
    finally:
        conn.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_schema(conn: sqlite3.Connection, where: Path) -> Schema:
    try:
        rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{where} is not an ebr local index: {e}") from None
    if rows.get("format") != FORMAT:
        raise StoreError(f"{where}: index format {rows.get('format')!r}; this ebr reads "
                         f"format {FORMAT}")
    try:
        return Schema.from_json(rows["schema"])
    except (KeyError, SchemaError) as e:
        raise StoreError(f"{where}: the stored schema cannot be read: {e}") from None


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction: committed when the block ends, rolled back if it raises.  A write
    transaction takes the write lock at once (``BEGIN IMMEDIATE``) rather than on first write."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- what open loads -------------------------------------------------------------------------


class Contents:
    """Everything a snapshot is built from, read in one transaction."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.ranks: list[float] = []
        self.terms: defaultdict[str, list[int]] = defaultdict(list)
        # per key: docnums, raw vector bytes, clusters (-1: none)
        self.embeddings: defaultdict[str, tuple[list[int], list[bytes], list[int]]] = (
            defaultdict(lambda: ([], [], [])))
        self.centroids: dict[str, npt.NDArray[np.float32]] = {}


def read_contents(conn: sqlite3.Connection, schema: Schema, where: Path) -> Contents:
    c = Contents()
    with transaction(conn, write=False):
        docnum: dict[str, int] = {}
        for doc_id, rank in conn.execute("SELECT id, rank FROM documents"):
            docnum[doc_id] = len(c.ids)
            c.ids.append(doc_id)
            c.ranks.append(rank)
        for doc_id, term in conn.execute("SELECT id, term FROM terms"):
            c.terms[term].append(docnum[doc_id])
        for doc_id, key, blob, cluster in conn.execute(
                "SELECT id, key, vector, cluster FROM embeddings"):
            spec = schema.key(key)
            if spec is None or len(blob) != 4 * spec.dimension:
                raise StoreError(f"{where}: stored embedding {key!r} of {doc_id!r} does not "
                                 "match the schema")
            nums, blobs, clusters = c.embeddings[key]
            nums.append(docnum[doc_id])
            blobs.append(blob)
            clusters.append(-1 if cluster is None else cluster)
        for key, nlist, dimension, blob in conn.execute(
                "SELECT key, nlist, dimension, centroids FROM quantizers"):
            c.centroids[key] = np.frombuffer(blob, np.float32).reshape(nlist, dimension).copy()
    return c


# -- writes (inside a write transaction) ------------------------------------------------------


def stored_terms(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    """The terms of stored documents, their cluster terms included, by id."""
    found: dict[str, list[str]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for doc_id, term in conn.execute(
                f"SELECT id, term FROM terms WHERE id IN ({marks})", chunk):
            found[doc_id].append(term)
        for doc_id, key, cluster in conn.execute(
                f"SELECT id, key, cluster FROM embeddings WHERE id IN ({marks}) "
                "AND cluster IS NOT NULL", chunk):
            found[doc_id].append(cluster_term(key, cluster))
    return found


def delete_documents(conn: sqlite3.Connection, ids: Iterable[str]) -> None:
    rows = [(i,) for i in ids]
    for table in ("documents", "terms", "embeddings"):
        conn.executemany(f"DELETE FROM {table} WHERE id = ?", rows)


def insert_documents(conn: sqlite3.Connection, docs: Sequence[PreparedDocument],
                     clusters: Sequence[Mapping[str, int]]) -> None:
    conn.executemany("INSERT INTO documents (id, rank, source) VALUES (?, ?, ?)",
                     [(d.id, d.rank, d.source_json) for d in docs])
    conn.executemany("INSERT INTO terms (id, term) VALUES (?, ?)",
                     [(d.id, t) for d in docs for t in d.terms])
    conn.executemany("INSERT INTO embeddings (id, key, vector, cluster) VALUES (?, ?, ?, ?)",
                     [(d.id, key, v.tobytes(), c.get(key)) for d, c in zip(docs, clusters,
                                                                          strict=True)
                      for key, v in d.vectors.items()])


def write_quantizer(conn: sqlite3.Connection, key: str, centroids: npt.NDArray[np.float32],
                    assignments: Iterable[tuple[int, str]]) -> None:
    """Store ``key``'s centroids and every document's cluster ``(cluster, id)``."""
    conn.execute("INSERT OR REPLACE INTO quantizers (key, nlist, dimension, centroids) "
                 "VALUES (?, ?, ?, ?)",
                 (key, centroids.shape[0], centroids.shape[1],
                  np.ascontiguousarray(centroids, np.float32).tobytes()))
    conn.executemany("UPDATE embeddings SET cluster = ? WHERE id = ? AND key = ?",
                     [(c, i, key) for c, i in assignments])


# -- reads for fetch ---------------------------------------------------------------------------


def fetch_documents(conn: sqlite3.Connection, ids: Sequence[str]
                    ) -> dict[str, tuple[float, str, list[str], list[tuple[str, bytes, int | None]]]]:
    """rank, source JSON, terms and embeddings ``(key, blob, cluster)`` of the stored ids."""
    found: dict[str, tuple[float, str, list[str], list[tuple[str, bytes, int | None]]]] = {}
    with transaction(conn, write=False):
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for doc_id, rank, source in conn.execute(
                    f"SELECT id, rank, source FROM documents WHERE id IN ({marks})", chunk):
                found[doc_id] = (rank, source, [], [])
            for doc_id, term in conn.execute(
                    f"SELECT id, term FROM terms WHERE id IN ({marks})", chunk):
                found[doc_id][2].append(term)
            for doc_id, key, blob, cluster in conn.execute(
                    f"SELECT id, key, vector, cluster FROM embeddings WHERE id IN ({marks})",
                    chunk):
                found[doc_id][3].append((key, blob, cluster))
    return found


def fetch_vectors(conn: sqlite3.Connection, ids: Sequence[str], key: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with transaction(conn, write=False):  # one commit's view across the chunks
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(conn.execute(
                f"SELECT id, vector FROM embeddings WHERE key = ? AND id IN ({marks})",
                [key, *chunk]).fetchall())
    return found


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        yield unique[start:start + _CHUNK]


class ReadConnections:
    """One read-only connection per thread (a connection must not serve two threads at
    once); all closed together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
