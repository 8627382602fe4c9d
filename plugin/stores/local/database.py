"""The SQLite database: the source of truth of a local index.

Tables: ``meta`` (format, schema JSON), ``documents`` (id, rank, source JSON), ``terms``
(id, ``"ns:value"``), ``embeddings`` (id, key, the vector's slot in the key's vector file:
:mod:`ebr.stores.local.vector_file`), ``vector_files`` (key, file, committed length in
vectors), ``assignments`` (id, key, coarse cluster, PQ code or NULL when the key keeps
none: a row per embedding of a key with a trained quantizer) and ``quantizers`` (key,
float32 centroids; for keys with PQ codes ``pq_m``, the codebooks and the OPQ rotation or
NULL).  Cluster terms are not rows of ``terms``: they are derived from
``assignments.cluster``.  Training writes the narrow ``assignments`` rows of its key, never
the embeddings again (format 1 kept the cluster and code in the embedding row, so training
rewrote every ~1 KB row to set them).

Formats: ``meta.format`` is 3.  An index of format 1 or 2 is upgraded by its first writable
open (:func:`upgrade`, a transaction per step: 1 -> 2 copies the clusters and codes into
``assignments``; 2 -> 3 moves the vectors from the embedding rows, each verified, into the
vector files), or by ``ebr index upgrade`` (:meth:`~ebr.stores.local.LocalStore.upgrade`);
a read-only open of one is refused with that advice, and an older ebr refuses format 3 by
its number.

Damage is detected, never served: every row of ``documents`` (with its terms), ``embeddings``
(with the bytes of its vector), ``assignments``, ``quantizers`` and ``vector_files`` carries
a CRC-32 ``checksum`` of its values, and ``meta`` one of the schema; all are verified as
the rows load (open reads every row), a mismatch, or an assignment without its embedding, a
slot past its file's committed length or a file shorter than that, raises
:class:`~ebr.errors.IndexDamagedError`.
``meta.commits`` counts write transactions; under ``synchronous=FULL`` the writer also
records the count in ``index.sqlite-commits`` after each commit, so an open that finds
fewer commits in the database than recorded (a WAL damaged or cut short: SQLite silently
stops replaying it at the first bad frame) refuses the index.
Indexes written before checksums (no ``meta.checksums`` row) get the columns on their first
writable open; rows written before stay unverified (NULL).

Durability: WAL journal, ``synchronous=FULL`` by default.  In WAL mode every commit is
atomic whatever the setting; FULL also syncs the log at each commit, so a batch that
returned survives a power cut, not only a killed process.  Ingest commits a batch at a
time, so the sync costs little per document; ``synchronous="NORMAL"`` (safe against a
killed process, may lose the last commits on power loss, never corrupts) is there for bulk
loads that can be rerun.  Vectors are appended to their files and synced before the
transaction naming them commits, whatever the setting (:mod:`ebr.stores.local.vector_file`).

A new index is built under a temporary name and moved into place with ``os.replace``, so a
crash while creating leaves either no index or a whole one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import struct
import threading
import urllib.parse
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ebr.errors import IndexDamagedError, SchemaError, StoreError
from ebr.mappings.schema import Schema, cluster_key, cluster_term
from ebr.stores.documents import PreparedDocument
from ebr.stores.local import vector_file
from ebr.stores.local.failures import REBUILD
from ebr.stores.local.vectors import stacked

FORMAT = "3"
#: The format before ``assignments`` (clusters and codes in the embedding rows).
FORMAT_1 = "1"
#: The format before the vector files (each vector a blob in its embedding row).
FORMAT_2 = "2"
#: ``PRAGMA application_id`` of an ebr index ("EBR1"): how ``drop`` tells it from other databases.
APPLICATION_ID = 0x45425231
DB_FILE = "index.sqlite"
Synchronous = Literal["FULL", "NORMAL"]

#: Format 2's table (an upgrade from format 1 creates it too).
_ASSIGNMENTS = """
CREATE TABLE assignments (id TEXT NOT NULL, key TEXT NOT NULL, cluster INTEGER NOT NULL,
    code BLOB, checksum INTEGER, PRIMARY KEY (id, key)) WITHOUT ROWID;
"""
#: Format 3's tables (an upgrade from format 2 creates them too): embedding rows naming their
#: vector's slot in the key's vector file, and each key's vector file and its committed length in rows.
_EMBEDDINGS = """
CREATE TABLE embeddings (id TEXT NOT NULL, key TEXT NOT NULL, slot INTEGER NOT NULL,
    checksum INTEGER, PRIMARY KEY (id, key)) WITHOUT ROWID;
"""
_VECTOR_FILES = """
CREATE TABLE vector_files (key TEXT PRIMARY KEY, file TEXT NOT NULL, rows INTEGER NOT NULL,
    checksum INTEGER NOT NULL) WITHOUT ROWID;
"""
_DDL = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE documents (id TEXT PRIMARY KEY, rank REAL NOT NULL, source TEXT NOT NULL,
    checksum INTEGER) WITHOUT ROWID;
CREATE TABLE terms (id TEXT NOT NULL, term TEXT NOT NULL, PRIMARY KEY (id, term)) WITHOUT ROWID;
CREATE TABLE quantizers (key TEXT PRIMARY KEY, nlist INTEGER NOT NULL,
    dimension INTEGER NOT NULL, centroids BLOB NOT NULL, pq_m INTEGER NOT NULL DEFAULT 0,
    codebooks BLOB, rotation BLOB, checksum INTEGER) WITHOUT ROWID;
""" + _ASSIGNMENTS + _EMBEDDINGS + _VECTOR_FILES
#: Format 1's columns added after its first indexes were written: (table, column, declaration).
_ADDED_COLUMNS = (("embeddings", "code", "BLOB"),
                  ("quantizers", "pq_m", "INTEGER NOT NULL DEFAULT 0"),
                  ("quantizers", "codebooks", "BLOB"), ("quantizers", "rotation", "BLOB"),
                  ("documents", "checksum", "INTEGER"), ("embeddings", "checksum", "INTEGER"),
                  ("quantizers", "checksum", "INTEGER"))
#: The file where a FULL-synchronous writer records ``meta.commits`` after each commit.
COMMITS_FILE = DB_FILE + "-commits"
_CHUNK = 500  # ids per IN (...) query
#: The writer's page cache (KiB) and the log's length (pages of 4 KiB) past which a commit
#: checkpoints: 32 MiB each.
WRITER_CACHE_KIB = 32768
WAL_CHECKPOINT_PAGES = 8192


def connect(path: Path, *, readonly: bool = False,
            synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit).

    Read-only, on media where SQLite cannot create the WAL's shared-memory file (a read-only
    directory or mount), the file is opened ``immutable``: SQLite then reads the database
    file alone, so an index whose last commits are still in its WAL is refused."""
    if readonly:
        conn = _connect_uri(path, "mode=ro")
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as e:
            conn.close()
            if getattr(e, "sqlite_errorcode", None) != sqlite3.SQLITE_CANTOPEN:
                raise
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreError(
                    f"the index in {path.parent} is on read-only media but its last commits "
                    f"are still in {wal.name}, which SQLite cannot read there; open it once "
                    "where it is writable (closing it folds them into the database)") from None
            conn = _connect_uri(path, "immutable=1")
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            # A batch of ten thousand documents dirties some 7 MB of pages: with SQLite's
            # defaults (a 2 MB cache, a checkpoint past 4 MB of log) every commit re-reads
            # pages it evicted and checkpoints (an fsync) on its own.
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        conn.execute("PRAGMA busy_timeout=10000")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_uri(path: Path, query: str) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(str(path))}?{query}"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def is_ebr_index(path: Path) -> bool:
    """Whether the file at ``path`` is an ebr index: an SQLite database marked with ebr's
    ``application_id`` (indexes written before it carry 0) holding the format and schema
    rows.  Never writes to the file."""
    try:
        conn = connect(path, readonly=True)
    except (sqlite3.Error, StoreError):
        return False
    try:
        (app,) = conn.execute("PRAGMA application_id").fetchone()
        if app not in (APPLICATION_ID, 0):
            return False
        rows = dict(conn.execute(
            "SELECT name, value FROM meta WHERE name IN ('format', 'schema')").fetchall())
        return set(rows) == {"format", "schema"}
    except sqlite3.Error:
        return False
    finally:
        conn.close()


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
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        text = schema.to_json()
        conn.executemany("INSERT INTO meta VALUES (?, ?)",
                         [("format", FORMAT), ("schema", text),
                          ("schema_checksum", str(checksum(text))), ("checksums", "1"),
                          ("commits", "0")])
        _add_vector_files(conn, schema)
        conn.execute("PRAGMA journal_mode=WAL")  # persistent: every later connection is WAL
    finally:
        conn.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_directory(directory)


def _add_vector_files(conn: sqlite3.Connection, schema: Schema) -> None:
    """A ``vector_files`` row per key, nothing committed (the files appear at the first
    append)."""
    conn.executemany("INSERT INTO vector_files VALUES (?, ?, 0, ?)",
                     [(k.name, name, vector_files_checksum(k.name, name, 0))
                      for k, name in zip(schema.keys, map(vector_file.file_name, itertools.count()),
                                         strict=False)])


def vector_files_checksum(key: str, name: str, rows: int) -> int:
    return checksum(key, name, float(rows))


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power cut."""
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
    if rows.get("format") in (FORMAT_1, FORMAT_2):
        raise StoreError(f"{where}: index format {rows['format']}, written by an older ebr; upgrade "
                         f"it to format {FORMAT} in place with `ebr index upgrade {where}` "
                         "(or open it once for writing)")
    if rows.get("format") != FORMAT:
        raise StoreError(f"{where}: index format {rows.get('format')!r}; this ebr reads "
                         f"format {FORMAT}")
    return _parsed_schema(rows, where)


def _parsed_schema(rows: Mapping[str, str], where: Path) -> Schema:
    """The schema of ``meta``'s rows, verified against its checksum."""
    if "schema_checksum" in rows and rows["schema_checksum"] != str(
            checksum(rows.get("schema"))):
        raise damaged(where, "its stored schema")
    try:
        return Schema.from_json(rows["schema"])
    except (KeyError, SchemaError) as e:
        raise StoreError(f"{where}: the stored schema cannot be read: {e}") from None


def checksum(*values: bytes | str | float | None) -> int:
    """The CRC-32 of a row's values (each length-prefixed, so boundaries count)."""
    parts: list[bytes] = []
    for v in values:
        if v is None:
            parts.append(_NULL)
            continue
        data = (v if isinstance(v, bytes) else
                v.encode("utf-8", "surrogatepass") if isinstance(v, str) else
                struct.pack("<d", v))
        parts.append(len(data).to_bytes(8, "little"))
        parts.append(data)
    return zlib.crc32(b"".join(parts))


_NULL = b"\xff" * 8  # no length is this long
_LENGTH = struct.Struct("<Q").pack
_NUMBER = struct.Struct("<Qd").pack  # a number's part: its length (8), its float64 value


# The two checksums below are :func:`checksum` spelled out for their rows' types: they run
# for every row written (embeddings twice when a quantizer is trained after ingest).


def document_checksum(doc_id: str, rank: float, source: str, terms: Sequence[str]) -> int:
    """A document row's checksum: ``checksum(doc_id, rank, source, *sorted(terms))``."""
    i, s = doc_id.encode("utf-8", "surrogatepass"), source.encode("utf-8", "surrogatepass")
    parts = [_LENGTH(len(i)), i, _NUMBER(8, rank), _LENGTH(len(s)), s]
    for term in sorted(terms):
        t = term.encode("utf-8", "surrogatepass")
        parts += (_LENGTH(len(t)), t)
    return zlib.crc32(b"".join(parts))


def embedding_checksum(doc_id: str, key: str, slot: int, vector: bytes | memoryview) -> int:
    """``checksum(doc_id, key, float(slot), vector)``: an embedding row and the vector in its
    slot of the key's vector file."""
    i, k = doc_id.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    head = b"".join((_LENGTH(len(i)), i, _LENGTH(len(k)), k, _NUMBER(8, slot),
                     _LENGTH(len(vector))))
    return zlib.crc32(vector, zlib.crc32(head))


def format_2_embedding_checksum(doc_id: str, key: str, vector: bytes, cluster: int | None = None,
                                code: bytes | None = None) -> int:
    """``checksum(doc_id, key, vector, float(cluster), code)``: the embedding row of formats 1
    and 2, the vector in the row; format 2 writes no cluster or code in it (None), format 1
    did."""
    i, k = doc_id.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    return zlib.crc32(b"".join((
        _LENGTH(len(i)), i, _LENGTH(len(k)), k, _LENGTH(len(vector)), vector,
        _NULL if cluster is None else _NUMBER(8, cluster),
        _NULL if code is None else _LENGTH(len(code)) + code)))


def assignment_checksum(doc_id: str, key: str, cluster: int, code: bytes | None) -> int:
    """``checksum(doc_id, key, float(cluster), code)``."""
    i, k = doc_id.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass")
    return zlib.crc32(b"".join((
        _LENGTH(len(i)), i, _LENGTH(len(k)), k, _NUMBER(8, cluster),
        _NULL if code is None else _LENGTH(len(code)) + code)))


def damaged(where: Path, what: str) -> IndexDamagedError:
    return IndexDamagedError(f"the index in {where} is damaged: {what} does not match what "
                             f"was written; {REBUILD}")


def bump_commits(conn: sqlite3.Connection) -> int | None:
    """Inside a write transaction: count it in ``meta.commits``; the new count."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'commits'")
    return stored_commits(conn)


def stored_commits(conn: sqlite3.Connection) -> int | None:
    """``meta.commits`` (None: an index from before the counter, opened read-only)."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'commits'").fetchone()
    return None if row is None else int(row[0])


def commits_and_documents(conn: sqlite3.Connection) -> tuple[int | None, int]:
    """``meta.commits`` and the number of documents, as of one commit."""
    with transaction(conn, write=False):
        (documents,) = conn.execute("SELECT count(*) FROM documents").fetchone()
        return stored_commits(conn), int(documents)


def recorded_commits(directory: Path) -> int | None:
    """The count a FULL-synchronous writer last recorded (read before the database, so a
    commit landing meanwhile cannot make the database look behind)."""
    try:
        return int((directory / COMMITS_FILE).read_text() or "0")
    except FileNotFoundError:
        return None
    except ValueError:
        raise damaged(directory, COMMITS_FILE) from None


def check_commits(directory: Path, recorded: int | None, commits: int | None) -> None:
    """Refuse a database holding fewer commits than its writer recorded."""
    if recorded is not None and commits is not None and recorded > commits:
        raise IndexDamagedError(
            f"the index in {directory} is damaged: its database holds {commits} commits but "
            f"{recorded} were made (its write-ahead log {DB_FILE}-wal is damaged or was cut "
            f"short); {REBUILD.split('; ')[0]}")


def record_commits(directory: Path, commits: int) -> None:
    """After a commit synced to disk: the count it reached (not synced itself: a lost
    record only weakens the check, it never makes a sound index look damaged)."""
    with contextlib.suppress(OSError):  # e.g. a full disk: the write itself was committed
        fd = os.open(directory / COMMITS_FILE, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, f"{commits:020d}".encode(), 0)
        finally:
            os.close(fd)


def upgrade(conn: sqlite3.Connection, directory: Path) -> str | None:
    """At a writable open: an index of an older format brought to this one, a transaction
    per step (1 -> 2: the columns its later releases added, NULL: no codes, not verified;
    its commit counter; ``assignments`` copied from its embedding rows' clusters and codes.
    2 -> 3: :func:`_move_vectors`).  The format it had, None if it needed nothing."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    if row is None or row[0] not in (FORMAT_1, FORMAT_2):
        return None  # this format, or not an ebr index (read_schema says which)
    if row[0] == FORMAT_1:
        _upgrade_format_1(conn)
    _move_vectors(conn, directory)
    conn.execute("VACUUM")  # the old rows' pages, most of the file, given back
    return str(row[0])


def _upgrade_format_1(conn: sqlite3.Connection) -> None:
    with transaction(conn, write=True):
        for table, column, decl in _ADDED_COLUMNS:
            if column not in _columns(conn, table):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('commits', '0')")
        conn.execute(_ASSIGNMENTS)
        rows = conn.execute("SELECT id, key, cluster, code FROM embeddings "
                            "WHERE cluster IS NOT NULL").fetchall()
        conn.executemany("INSERT INTO assignments (id, key, cluster, code, checksum) "
                         "VALUES (?, ?, ?, ?, ?)",
                         [(*r, assignment_checksum(*r)) for r in rows])
        conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (FORMAT_2,))


def _move_vectors(conn: sqlite3.Connection, where: Path) -> None:
    """Format 2 -> 3 in one transaction: every embedding row's vector, verified against
    the row's checksum, appended to its key's vector file (written from its start: files
    left by an upgrade killed before its commit are overwritten), and the row rewritten to
    name its slot, under a new checksum (a row from before checksums stays unverified)."""
    with transaction(conn, write=True):
        rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        schema = _parsed_schema(rows, where)
        strict = "checksums" in rows
        legacy = _legacy_columns(conn)
        conn.execute("ALTER TABLE embeddings RENAME TO embeddings_2")
        conn.execute(_EMBEDDINGS)
        conn.execute(_VECTOR_FILES)
        _add_vector_files(conn, schema)
        files = committed_vectors(conn, where)
        sizes = {k.name: 4 * k.dimension for k in schema.keys}
        pending: defaultdict[str, list[bytes]] = defaultdict(list)
        slots: defaultdict[str, int] = defaultdict(int)  # rows in the file, pending included

        def flush(key: str) -> None:
            blobs = pending.pop(key)
            name, _ = files[key]
            matrix = np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), -1)
            _append(where, name, slots[key] - len(blobs), matrix)

        moved = []
        for doc_id, key, blob, old_cluster, old_code, stored in conn.execute(
                f"SELECT id, key, vector, {legacy}, checksum FROM embeddings_2"):
            if strict if stored is None else stored != format_2_embedding_checksum(
                    doc_id, key, blob, old_cluster, old_code):
                raise damaged(where, f"embedding {key!r} of {doc_id!r}")
            if len(blob) != sizes.get(key):
                raise StoreError(f"{where}: stored embedding {key!r} of {doc_id!r} does not "
                                 "match the schema")
            slot = slots[key]
            slots[key] += 1
            pending[key].append(blob)
            if len(pending[key]) == _MOVE_BLOCK:
                flush(key)
            moved.append((doc_id, key, slot,
                          None if stored is None else embedding_checksum(doc_id, key, slot, blob)))
        for key in list(pending):
            flush(key)
        conn.executemany("INSERT INTO embeddings (id, key, slot, checksum) VALUES (?, ?, ?, ?)",
                         moved)
        for key, count in slots.items():
            name, _ = files[key]
            conn.execute("UPDATE vector_files SET rows = ?, checksum = ? WHERE key = ?",
                         (count, vector_files_checksum(key, name, count), key))
        conn.execute("DROP TABLE embeddings_2")
        conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (FORMAT,))


_MOVE_BLOCK = 65536  # vectors per append while upgrading


def _legacy_columns(conn: sqlite3.Connection) -> str:
    """The embedding rows' cluster and code as their checksums cover them: an index
    upgraded from format 1 keeps its columns (unread otherwise), a new one has none."""
    return "cluster, code" if "cluster" in _columns(conn, "embeddings") else "NULL, NULL"


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction: committed when the block ends, rolled back if it raises (an
    interrupt included).  A write transaction takes the write lock at once (``BEGIN
    IMMEDIATE``) rather than on first write.  A read inside a transaction already open on
    ``conn`` joins it."""
    if not write and conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back itself (a full disk)
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
        # per key: docnums, raw vector bytes, clusters (-1: none), PQ codes (None: none)
        self.embeddings: defaultdict[
            str, tuple[list[int], list[bytes], list[int], list[bytes | None]]] = (
            defaultdict(lambda: ([], [], [], [])))
        self.centroids: dict[str, npt.NDArray[np.float32]] = {}
        # per key with PQ codes: codebooks (m, 256, d/m) and OPQ rotation (d, d) or None
        self.products: dict[str, tuple[npt.NDArray[np.float32],
                                       npt.NDArray[np.float32] | None]] = {}
        self.commits: int | None = None  # meta.commits (None: an index from before it)


def read_contents(conn: sqlite3.Connection, schema: Schema, where: Path,
                  maps: vector_file.Maps) -> Contents:
    """Every row (and every vector it points to), each verified against its checksum as it
    loads."""
    c = Contents()
    with transaction(conn, write=False):
        vectors = _VectorReader(conn, schema, where, maps)
        strict = conn.execute(
            "SELECT 1 FROM meta WHERE name = 'checksums'").fetchone() is not None

        def verify(stored: int | None, what: str, compute: Callable[..., int],
                   *values: Any) -> None:
            if strict if stored is None else stored != compute(*values):
                raise damaged(where, what)

        docnum: dict[str, int] = {}
        terms = conn.execute("SELECT id, term FROM terms")
        pending = next(terms, None)
        for doc_id, rank, source, stored in conn.execute(
                "SELECT id, rank, source, checksum FROM documents"):
            n = docnum[doc_id] = len(c.ids)
            c.ids.append(doc_id)
            c.ranks.append(rank)
            mine = []
            if pending is not None and pending[0] < doc_id:  # both in id order
                raise damaged(where, f"the terms of {pending[0]!r}, a missing document,")
            while pending is not None and pending[0] == doc_id:
                mine.append(pending[1])
                c.terms[pending[1]].append(n)
                pending = next(terms, None)
            verify(stored, f"document {doc_id!r}", document_checksum, doc_id, rank, source,
                   mine)
        if pending is not None:
            raise damaged(where, f"the terms of {pending[0]!r}")
        assigned = conn.execute("SELECT id, key, cluster, code, checksum FROM assignments")
        due = next(assigned, None)  # both in (id, key) order
        for doc_id, key, slot, stored in conn.execute(
                "SELECT id, key, slot, checksum FROM embeddings"):
            blob = vectors.read(doc_id, key, slot)
            verify(stored, f"embedding {key!r} of {doc_id!r}", embedding_checksum, doc_id, key,
                   slot, blob)
            if due is not None and (due[0], due[1]) < (doc_id, key):
                raise _without_embedding(where, due[0], due[1])
            cluster = pq_code = None
            if due is not None and due[0] == doc_id and due[1] == key:
                _, _, cluster, pq_code, assignment_sum = due
                verify(assignment_sum, f"the cluster of {key!r} of {doc_id!r}",
                       assignment_checksum, doc_id, key, cluster, pq_code)
                due = next(assigned, None)
            if doc_id not in docnum:
                raise damaged(where, f"embedding {key!r} of {doc_id!r}, a missing document,")
            spec = schema.key(key)
            if spec is None or len(blob) != 4 * spec.dimension:
                raise StoreError(f"{where}: stored embedding {key!r} of {doc_id!r} does not "
                                 "match the schema")
            nums, blobs, clusters, codes = c.embeddings[key]
            nums.append(docnum[doc_id])
            blobs.append(blob)
            clusters.append(-1 if cluster is None else cluster)
            codes.append(pq_code)
        if due is not None:
            raise _without_embedding(where, due[0], due[1])
        for key, nlist, dimension, blob, pq_m, codebooks, rotation, stored in conn.execute(
                "SELECT key, nlist, dimension, centroids, pq_m, codebooks, rotation, checksum "
                "FROM quantizers"):
            verify(stored, f"the quantizer of {key!r}", quantizer_checksum, key, nlist,
                   dimension, blob, pq_m, codebooks, rotation)
            c.centroids[key] = np.frombuffer(blob, np.float32).reshape(nlist, dimension).copy()
            if pq_m:
                c.products[key] = (
                    np.frombuffer(codebooks, np.float32).reshape(pq_m, -1, dimension // pq_m)
                    .copy(),
                    None if rotation is None else
                    np.frombuffer(rotation, np.float32).reshape(dimension, dimension).copy())
        c.commits = stored_commits(conn)
    return c


def committed_vectors(conn: sqlite3.Connection, where: Path) -> dict[str, tuple[str, int]]:
    """Each key's vector file and its committed length in rows, as of the caller's
    transaction."""
    found: dict[str, tuple[str, int]] = {}
    for key, name, rows, stored in conn.execute(
            "SELECT key, file, rows, checksum FROM vector_files"):
        if stored != vector_files_checksum(key, name, rows):
            raise damaged(where, f"the committed length of the vectors of {key!r}")
        found[key] = (name, rows)
    return found


class _VectorReader:
    """Vectors by slot from the committed part of the vector files, inside one transaction."""

    def __init__(self, conn: sqlite3.Connection, schema: Schema, where: Path,
                 maps: vector_file.Maps) -> None:
        self._files = committed_vectors(conn, where)
        self._sizes = {k.name: 4 * k.dimension for k in schema.keys}
        self._where = where
        self._maps = maps
        self._views: dict[str, Any] = {}

    def read(self, doc_id: str, key: str, slot: int) -> bytes:
        """The vector in ``slot`` of ``key``'s file (a slot past the committed length, or a
        key without a file, is damage to the row naming it)."""
        view = self._views.get(key)
        size = self._sizes.get(key, 0)
        name, rows = self._files.get(key, ("", 0))
        if size == 0 or not 0 <= slot < rows:
            raise damaged(self._where, f"embedding {key!r} of {doc_id!r}")
        if view is None:
            try:
                view = self._views[key] = self._maps.covering(name, rows * size)
            except vector_file.Short:
                raise damaged(self._where, f"{name}, shorter than its {rows} committed vectors,"
                              ) from None
        start = slot * size  # within the committed length: a writer cuts only past it
        return view[start:start + size]


def _append(where: Path, name: str, at: int, vectors: npt.NDArray[np.float32]) -> None:
    """:func:`vector_file.append`, a file it creates made to survive a power cut."""
    path = where / name
    created = not path.exists()
    try:
        vector_file.append(path, at * 4 * vectors.shape[1], vectors)
    except vector_file.Short:
        raise damaged(where, f"{name}, shorter than its {at} committed vectors,") from None
    if created:
        fsync_directory(where)


def _without_embedding(where: Path, doc_id: str, key: str) -> IndexDamagedError:
    return damaged(where, f"the cluster of {key!r} of {doc_id!r}, a missing embedding,")


def quantizer_checksum(key: str, nlist: int, dimension: int, centroids: bytes, pq_m: int,
                       codebooks: bytes | None, rotation: bytes | None) -> int:
    return checksum(key, float(nlist), float(dimension), centroids, float(pq_m), codebooks,
                    rotation)


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
                f"SELECT id, key, cluster FROM assignments WHERE id IN ({marks})", chunk):
            found[doc_id].append(cluster_term(key, cluster))
    return found


def delete_documents(conn: sqlite3.Connection, ids: Iterable[str]) -> None:
    rows = [(i,) for i in ids]
    for table in ("documents", "terms", "embeddings", "assignments"):
        conn.executemany(f"DELETE FROM {table} WHERE id = ?", rows)


def insert_documents(conn: sqlite3.Connection, docs: Sequence[PreparedDocument],
                     clusters: Sequence[Mapping[str, int]],
                     codes: Sequence[Mapping[str, bytes]], where: Path) -> None:
    """The documents' rows; their vectors appended to the vector files of ``where`` (synced
    before the caller commits, with their new committed lengths)."""
    conn.executemany("INSERT INTO documents (id, rank, source, checksum) VALUES (?, ?, ?, ?)",
                     [(d.id, d.rank, d.source_json,
                       document_checksum(d.id, d.rank, d.source_json, d.terms)) for d in docs])
    conn.executemany("INSERT INTO terms (id, term) VALUES (?, ?)",
                     [(d.id, t) for d in docs for t in d.terms])
    having: defaultdict[str, list[int]] = defaultdict(list)
    assigned = []
    for n, (d, c, p) in enumerate(zip(docs, clusters, codes, strict=True)):
        for key in d.vectors:
            having[key].append(n)
            cluster = c.get(key)
            if cluster is not None:
                code = p.get(key)
                assigned.append((d.id, key, cluster, code,
                                 assignment_checksum(d.id, key, cluster, code)))
    files = committed_vectors(conn, where)
    rows = []
    for key, members in having.items():
        if key not in files:
            raise damaged(where, f"the committed length of the vectors of {key!r}")
        name, first = files[key]
        matrix = stacked([docs[n].vectors[key] for n in members])
        _append(where, name, first, matrix)
        data = matrix.data.cast("B")
        size = 4 * matrix.shape[1]
        for slot, n in enumerate(members, first):
            start = (slot - first) * size
            rows.append((docs[n].id, key, slot, embedding_checksum(
                docs[n].id, key, slot, data[start:start + size])))
        stop = first + len(members)
        conn.execute("UPDATE vector_files SET rows = ?, checksum = ? WHERE key = ?",
                     (stop, vector_files_checksum(key, name, stop), key))
    conn.executemany("INSERT INTO embeddings (id, key, slot, checksum) VALUES (?, ?, ?, ?)",
                     rows)
    _insert_assignments(conn, assigned)


def _insert_assignments(conn: sqlite3.Connection,
                        rows: Iterable[tuple[str, str, int, bytes | None, int]]) -> None:
    conn.executemany("INSERT INTO assignments (id, key, cluster, code, checksum) "
                     "VALUES (?, ?, ?, ?, ?)", rows)


def write_quantizer(conn: sqlite3.Connection, key: str, centroids: npt.NDArray[np.float32],
                    assignments: Iterable[tuple[str, int, bytes | None]],
                    product: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]
                    | None = None) -> None:
    """Store ``key``'s centroids, its PQ ``product`` (codebooks, rotation or None) if it
    keeps codes, and every document's cluster and code ``(id, cluster, code)``: rows of
    ``assignments`` (the embeddings' rows, vectors and all, are not written again)."""
    codebooks, rotation = product if product is not None else (None, None)
    row = (key, centroids.shape[0], centroids.shape[1],
           np.ascontiguousarray(centroids, np.float32).tobytes(),
           0 if codebooks is None else codebooks.shape[0],
           None if codebooks is None else codebooks.tobytes(),
           None if rotation is None else rotation.tobytes())
    conn.execute("INSERT OR REPLACE INTO quantizers (key, nlist, dimension, centroids, pq_m, "
                 "codebooks, rotation, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (*row, quantizer_checksum(*row)))
    conn.execute("DELETE FROM assignments WHERE key = ?", (key,))
    # In id order, the table's key order: appended, each page written once.
    _insert_assignments(conn, sorted(
        ((i, key, c, code, assignment_checksum(i, key, c, code)) for i, c, code in assignments),
        key=itemgetter(0)))


# -- reads for fetch ---------------------------------------------------------------------------


def fetch_documents(conn: sqlite3.Connection, ids: Sequence[str], schema: Schema, where: Path,
                    maps: vector_file.Maps
                    ) -> dict[str, tuple[float, str, list[str], list[tuple[str, bytes, int | None]]]]:
    """rank, source JSON, terms and embeddings ``(key, blob, cluster)`` of the stored ids,
    verified against their checksums."""
    found: dict[str, tuple[float, str, list[str], list[tuple[str, bytes, int | None]]]] = {}
    sums: dict[str, int | None] = {}
    with transaction(conn, write=False):
        vectors = _VectorReader(conn, schema, where, maps)
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for doc_id, rank, source, stored in conn.execute(
                    f"SELECT id, rank, source, checksum FROM documents WHERE id IN ({marks})",
                    chunk):
                found[doc_id] = (rank, source, [], [])
                sums[doc_id] = stored
            for doc_id, term in conn.execute(
                    f"SELECT id, term FROM terms WHERE id IN ({marks})", chunk):
                _of(found, doc_id, where, "the terms")[2].append(term)
            clusters: dict[tuple[str, str], int] = {}
            for doc_id, key, cluster, pq_code, stored in conn.execute(
                    "SELECT id, key, cluster, code, checksum FROM assignments "
                    f"WHERE id IN ({marks})", chunk):
                if stored is not None and stored != assignment_checksum(doc_id, key, cluster,
                                                                        pq_code):
                    raise damaged(where, f"the cluster of {key!r} of {doc_id!r}")
                clusters[doc_id, key] = cluster
            for doc_id, key, slot, stored in conn.execute(
                    f"SELECT id, key, slot, checksum FROM embeddings WHERE id IN ({marks})",
                    chunk):
                blob = vectors.read(doc_id, key, slot)
                if stored is not None and stored != embedding_checksum(doc_id, key, slot, blob):
                    raise damaged(where, f"embedding {key!r} of {doc_id!r}")
                _of(found, doc_id, where, f"embedding {key!r}")[3].append(
                    (key, blob, clusters.pop((doc_id, key), None)))
            if clusters:
                raise _without_embedding(where, *next(iter(clusters)))
    for doc_id, (rank, source, terms, _) in found.items():
        stored = sums[doc_id]
        if stored is not None and stored != document_checksum(doc_id, rank, source, terms):
            raise damaged(where, f"document {doc_id!r}")
    return found


def _of(found: dict[str, Any], doc_id: str, where: Path, what: str) -> Any:
    """A fetched document's row, for one of its terms or embeddings (a damaged database can
    return a row under an id that no document has: the open's full read once caught it,
    the snapshot file's open does not read the rows)."""
    if doc_id not in found:
        raise damaged(where, f"{what} of {doc_id!r}, a missing document,")
    return found[doc_id]


def fetch_terms(conn: sqlite3.Connection, ids: Sequence[str], namespaces: Iterable[str]
                ) -> dict[str, list[str]]:
    """The ``ns:value`` terms of the stored ids in ``namespaces`` (an id holding none is
    absent), cluster namespaces included: a range of the terms table's key per namespace, no
    checksums (the reranker reads them for every request; :func:`fetch_documents` verifies
    whole documents)."""
    wanted = sorted(set(namespaces))
    keys = [k for k in map(cluster_key, wanted) if k is not None]
    terms = [ns for ns in wanted if cluster_key(ns) is None]
    # under SQLite's binary collation ';' follows ':', so "ns:" <= term < "ns;" is the namespace
    ranges = " OR ".join("(term >= ? AND term < ?)" for _ in terms)
    bounds = [b for ns in terms for b in (f"{ns}:", f"{ns};")]
    found: dict[str, list[str]] = {}
    with transaction(conn, write=False):  # one commit's view across the chunks
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows: Iterable[tuple[str, str]] = conn.execute(
                f"SELECT id, term FROM terms WHERE id IN ({marks}) AND ({ranges})",
                [*chunk, *bounds]) if terms else ()
            for doc_id, term in rows:
                found.setdefault(doc_id, []).append(term)
            for key in keys:
                for doc_id, cluster in conn.execute(
                        f"SELECT id, cluster FROM assignments WHERE key = ? AND id IN ({marks})",
                        [key, *chunk]):
                    found.setdefault(doc_id, []).append(cluster_term(key, cluster))
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
        if conn is not None and conn.in_transaction:
            conn.execute("ROLLBACK")  # left by an interrupted read: it would pin an old commit
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
