"""The local store: one directory per index, no server.

``<dir>/index.sqlite`` is the source of truth (:mod:`ebr.stores.local.database`, with the
vectors in ``<dir>/index.vectors.<n>``: :mod:`ebr.stores.local.vector_file`); everything a
search touches is in memory (:mod:`ebr.stores.local.snapshot`).  Open maps it from
``<dir>/index.snapshot`` when that file stands for the database (same commit counter, number
of documents and schema, its hash intact: :mod:`ebr.stores.local.snapshot_file`), else
rebuilds it from every row of the database; a writer that could not use the file deletes it
(before any new commit could make a stale file's stamp match again).  A writer saves the file
at :meth:`LocalStore.close` (or :meth:`LocalStore.save_snapshot`), when it holds commits the
file does not: saving a million documents costs seconds, too much after every commit, so a
writer killed before closing leaves a stale file and the next open rebuilds.  A writer's
first write after a mapped open builds its id -> document map and copies the mapped
append-only buffers (the matrices included) into memory: what the rebuild paid at open, paid
by writers only, once.

Writes: one writer at a time (a lock per store, and an exclusive ``flock`` on the index
directory itself, which no one deletes by accident, so a second process cannot open the
index for writing).  A batch is checked whole (:mod:`ebr.stores.documents`), written in one
SQLite transaction, and the next snapshot, built during that transaction, is published only
after the commit.  A write that fails or is interrupted anywhere (``KeyboardInterrupt``
included) is rolled back and memory is reloaded from the database, so the two never
disagree and the next write works.  A writer that finds another connection committed since
(``PRAGMA data_version``: another program writing the file) reloads before acting.
SQLite and operating-system failures surface as :class:`~ebr.errors.StoreError`
(:mod:`ebr.stores.local.failures`).

Reads: a search takes the current snapshot and uses nothing else, so searches running while
a writer commits each see one whole commit.  Fetching documents and their terms reads the
database (each thread its own connection), as of the latest commit; fetching vectors reads
the current snapshot, through an id map built at the first such read
(:mod:`ebr.stores.local.id_lookup`).

Keys whose schema sets ``quantizer.pq_m`` also keep PQ codes (:mod:`ebr.quantization.product`),
trained with the coarse quantizer.  A probing ``within`` or top-K ``nn`` over such a key
first scores its candidates by code and verifies exactly only those the codes put within
``radius + refine_margin`` (top-K: the best ``max(k * refine_factor, k + 32)``): what it
returns is always exact, but a document whose code errs by more than the margin can be
missed (as one in an unprobed cluster is).  ``refine_margin`` and ``refine_factor`` are
options of :meth:`LocalStore.open` and :meth:`LocalStore.create`.

Opening read-only (``readonly=True``) takes no lock and loads the index as of that moment;
it does not follow later commits by another process; it works on read-only media too.
Training a quantizer holds the write lock (writes wait; searches do not).  ``close`` must
not race with calls still running in other threads.  The database is created under a
temporary name and renamed into place; ``drop`` deletes only a database that identifies
itself as an ebr index.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import heapq
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
from pyroaring import FrozenBitMap

from ebr.errors import IndexDamagedError, StoreError
from ebr.mappings.schema import EmbeddingKey, Schema, cluster_namespace
from ebr.planning.query_vectors import Vectors
from ebr.quantization.coarse import CentroidQuantizer, assign, unit_rows
from ebr.quantization.kmeans import TrainingReport, train_centroids
from ebr.quantization.product import ProductCodes, train_key_product
from ebr.query.nodes import Node, named_branches
from ebr.stores.arguments import check_size, checked_centroids, schema_key
from ebr.stores.documents import PreparedDocument, check_id, prepare_batch
from ebr.stores.local import database, snapshot_file, vector_file
from ebr.stores.local.bitmaps import EMPTY, from_array, to_array
from ebr.stores.local.database import DB_FILE, ReadConnections, Synchronous, transaction
from ebr.stores.local.execution import EXACT_THRESHOLD, REFINE_FACTOR, REFINE_MARGIN, Execution, Refine
from ebr.stores.local.failures import REBUILD, failures
from ebr.stores.local.gc_pause import paused_gc
from ebr.stores.local.hits import build_hits
from ebr.stores.local.huge_pages import small_pages
from ebr.stores.local.id_lookup import IdLookup
from ebr.stores.local.lengths import load_lengths
from ebr.stores.local.snapshot import Snapshot, SnapshotEdit, cluster_postings
from ebr.stores.local.snapshot_file import SNAPSHOT_FILE, TEMPORARY_FILE, Stamp, Unusable
from ebr.stores.local.term_rows import TermRows
from ebr.stores.local.vectors import VectorTable, stacked
from ebr.stores.protocol import (
    Fetch,
    IndexDocument,
    IndexStats,
    SearchResult,
    SearchStats,
    Store,
    StoredDocument,
    WriteResult,
)

LEGACY_LOCK_FILE = "lock"  # the lock of indexes written before the directory lock; dropped with them
_OWN_FILES = (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", DB_FILE + ".tmp",
              database.COMMITS_FILE, SNAPSHOT_FILE, TEMPORARY_FILE, LEGACY_LOCK_FILE)


class LocalStore:
    """An open local index (implements :class:`ebr.stores.protocol.Store`).  Use :meth:`create` or
    :meth:`open`; close it (or use it as a context manager) to release the directory."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, schema: Schema,
                 snapshot: Snapshot, lock: int | None, exact_threshold: int,
                 refine: Refine, commits: int | None, snapshots: bool,
                 problem: str | None) -> None:
        self.directory = directory
        self.exact_threshold = exact_threshold
        self.refine = refine
        self._term_rows = TermRows()  # kept between searches (entries check their snapshot)
        self._conn = conn
        self._schema = schema
        self._snapshot = snapshot
        self._lock_fd = lock
        self._write_lock = threading.Lock()
        self._readers = ReadConnections(directory / DB_FILE)
        self._maps = vector_file.Maps(directory)  # the vector files, for every connection
        # id -> live document number, for reads from memory and the writer alike (searches
        # never need it): built by the first that asks (a million ids take a third of a second)
        self._id_lookup = IdLookup(lambda: self._snapshot)
        self._commits = commits  # meta.commits as of memory
        self._snapshots = snapshots  # whether the snapshot file is read and written
        #: why memory was not mapped from the snapshot file (None: it was)
        self.snapshot_problem = problem
        # the commits of the snapshot file known to hold memory's state (None: none does)
        self._saved = commits if problem is None else None
        # True while memory may disagree with the database (a write under way, or one that
        # failed and could not reload): the next write reloads first
        self._stale = False
        self._data_version = self._read_data_version()
        self._record = False  # whether commits are recorded (database.record_commits)
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike[str], schema: Schema, *,
               synchronous: Synchronous = "FULL",
               exact_threshold: int = EXACT_THRESHOLD,
               refine_margin: float = REFINE_MARGIN,
               refine_factor: int = REFINE_FACTOR) -> LocalStore:
        """A new, empty index in ``path`` (a missing or empty directory); the options are
        :meth:`open`'s."""
        schema.validate()
        Refine(refine_margin, refine_factor)  # bad options fail before anything is written
        directory = Path(path)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise StoreError(f"cannot create an index in {directory}: it exists and is not an "
                             "empty directory (open it, or drop it first)")
        with failures(directory, "creating"):
            directory.mkdir(parents=True, exist_ok=True)
            lock = _lock(directory)
            try:
                database.create(directory, schema)
            finally:
                os.close(lock)
        return cls.open(directory, synchronous=synchronous, exact_threshold=exact_threshold,
                        refine_margin=refine_margin, refine_factor=refine_factor)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
             synchronous: Synchronous = "FULL",
             exact_threshold: int = EXACT_THRESHOLD,
             refine_margin: float = REFINE_MARGIN,
             refine_factor: int = REFINE_FACTOR,
             snapshot: bool = True) -> LocalStore:
        """The index in ``path``, loaded into memory: mapped from its snapshot file when
        that stands for the database (:mod:`ebr.stores.local.snapshot_file`), else rebuilt
        from every row of the database (``snapshot=False``: always; a writer then deletes
        the file, which its commits would leave stale, and saves none).

        ``exact_threshold``: admitted documents up to which top-K is exact rather than
        probed (:mod:`ebr.stores.local.execution`).  For keys with PQ codes: ``refine_margin``,
        how far beyond a radius a code's approximate distance may lie for the document to
        be verified exactly (larger: fewer misses, more exact distances), and
        ``refine_factor``, top-K verifies exactly the best ``max(k * refine_factor,
        k + 32)`` by code."""
        refine = Refine(refine_margin, refine_factor)
        directory = Path(path)
        db_path = directory / DB_FILE
        if not db_path.is_file():
            raise StoreError(f"no local index in {directory} (missing {DB_FILE}); create one "
                             "first")
        with failures(directory, "opening"):
            lock = None if readonly else _lock(directory)
            try:
                conn = _connected(directory, db_path, readonly=readonly,
                                  synchronous=synchronous)
                try:
                    if not readonly:
                        database.upgrade(conn, directory)
                    recorded = database.recorded_commits(directory)
                    schema = database.read_schema(conn, directory)
                    mapped, problem = (_mapped(directory, conn, schema) if snapshot
                                       else (None, "not asked for"))
                    commits: int | None
                    if mapped is not None:
                        state, commits = mapped
                    else:
                        with _undecodable(directory):
                            contents = database.read_contents(conn, schema, directory,
                                                              vector_file.Maps(directory))
                            state = _load(contents, schema)
                        commits = contents.commits
                        if not readonly:
                            # unusable: gone before new commits could make its stamp match
                            (directory / SNAPSHOT_FILE).unlink(missing_ok=True)
                    database.check_commits(directory, recorded, commits)
                    if not readonly and synchronous != "FULL":
                        # commits not synced at once may be lost by a power cut: no record
                        (directory / database.COMMITS_FILE).unlink(missing_ok=True)
                    store = cls(directory, conn, schema, state, lock, exact_threshold,
                                refine, commits, snapshot, problem)
                    store._record = synchronous == "FULL"
                    return store
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                if lock is not None:
                    os.close(lock)
                raise

    @staticmethod
    def upgrade(path: str | os.PathLike[str]) -> str | None:
        """Bring the index in ``path`` to this ebr's format in place, as a writable open
        does (:func:`ebr.stores.local.database.upgrade`: a transaction per step), without loading
        it; the format it had, None if it was current.  Refuses while another process has
        the index open for writing, and a format this ebr does not read."""
        directory = Path(path)
        db_path = directory / DB_FILE
        if not db_path.is_file():
            raise StoreError(f"no local index in {directory} (missing {DB_FILE})")
        with failures(directory, "upgrading"):
            lock = _lock(directory)
            try:
                conn = _connected(directory, db_path, readonly=False, synchronous="FULL")
                try:
                    was = database.upgrade(conn, directory)
                    database.read_schema(conn, directory)  # an unknown format: refused
                finally:
                    conn.close()
            finally:
                os.close(lock)
        return was

    @staticmethod
    def drop(path: str | os.PathLike[str]) -> None:
        """Delete the index in ``path``: its files, then the directory if nothing else is in
        it.  Refuses while another process has the index open for writing."""
        directory = Path(path)
        if not (directory / DB_FILE).is_file():
            raise StoreError(f"no local index in {directory} to drop")
        with failures(directory, "dropping"):
            lock = _lock(directory)
            try:
                if not database.is_ebr_index(directory / DB_FILE):
                    raise StoreError(f"not dropping {directory}: its {DB_FILE} is not an ebr "
                                     "index (another program's database?); remove it yourself "
                                     "if you mean to")
                for name in _OWN_FILES:
                    (directory / name).unlink(missing_ok=True)
                for vectors in directory.glob(vector_file.PREFIX + "*"):
                    vectors.unlink()
            finally:
                os.close(lock)
        with contextlib.suppress(OSError):  # other files of the user's stay, with the folder
            directory.rmdir()

    @classmethod
    def check(cls, path: str | os.PathLike[str]) -> IndexStats:
        """A full check of the index in ``path``, read-only: SQLite's ``integrity_check``,
        every row against its checksum and every stored source; its stats if sound, else
        :class:`~ebr.errors.IndexDamagedError` naming what is damaged."""
        directory = Path(path)
        if not (directory / DB_FILE).is_file():
            raise StoreError(f"no local index in {directory} (missing {DB_FILE})")
        with failures(directory, "checking"):
            conn = database.connect(directory / DB_FILE, readonly=True)
            try:
                problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
            finally:
                conn.close()
        if problems != ["ok"]:
            raise database.damaged(directory, "its SQLite structure (" + "; ".join(
                str(p).replace("\n", " ") for p in problems) + ")")
        with cls.open(directory, readonly=True, snapshot=False) as store:
            ids = [store._snapshot.ids[d] for d in store._snapshot.live]
            for start in range(0, len(ids), 1000):
                store.get_documents(ids[start:start + 1000])
            return store.stats()

    def close(self) -> None:
        """Release the index; a writer first saves the snapshot file if its commits since
        opening are not in it (a failure to save only costs the next open a rebuild)."""
        if self._closed:
            return
        with self._write_lock:
            try:
                if self._lock_fd is not None and self._snapshots:
                    with contextlib.suppress(StoreError):
                        self._save_snapshot()
            finally:
                self._closed = True
                self._readers.close()
                self._maps.close()
                self._conn.close()
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # releases the flock

    def save_snapshot(self) -> None:
        """Save the snapshot file now (:meth:`close` does), so that a writer killed later
        leaves an index that the next open maps rather than rebuilds, as long as nothing
        is written meanwhile."""
        with self._write_lock:
            self._check_writable()
            self._save_snapshot()

    def _save_snapshot(self) -> None:
        with failures(self.directory, "saving the snapshot of"):
            if (self._stale or self._commits is None or self._saved == self._commits
                    or self._read_data_version() != self._data_version):
                return  # in the file already, or memory may not be the database's state
            if self._snapshot.count > 2 * len(self._snapshot.live):
                # Mostly numbers of deleted or replaced documents: renumbered densely, as a
                # rebuilding open would, rather than carried from file to file.
                self._reload()
            # The tail sorted into the body, the buffers cut: what every later open maps.
            snap = self._snapshot = self._snapshot.compacted()
            stamp = Stamp(self._commits, len(snap.live),
                          database.checksum(self._schema.to_json()))
            try:
                snapshot_file.save(self.directory, snap, stamp)
            except BaseException:
                (self.directory / TEMPORARY_FILE).unlink(missing_ok=True)
                raise
        self._saved = self._commits

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- what it holds ------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def quantizers(self) -> Mapping[str, CentroidQuantizer]:
        return self._snapshot.quantizers

    @property
    def version(self) -> int:
        """Commits since the index was opened (for tests and monitoring)."""
        return self._snapshot.version

    def stats(self) -> IndexStats:
        self._check_open()
        snap = self._snapshot
        return IndexStats(
            documents=len(snap.live),
            embeddings={k: len(t.present) for k, t in snap.tables.items()},
            terms=len(snap.postings),
            quantizers={k.name: (q.nlist if (q := snap.quantizers.get(k.name)) else None)
                        for k in self._schema.keys},
            disk_bytes=self._disk_bytes(),
        )

    def _disk_bytes(self) -> int:
        with failures(self.directory, "measuring"):
            return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def sample_terms(self, namespace: str, limit: int) -> list[str]:
        self._check_open()
        prefix = namespace + ":"
        found = [(-len(b), t) for t, b in self._snapshot.postings.items() if t.startswith(prefix)]
        return [t[len(prefix):] for _, t in heapq.nsmallest(limit, found)]

    # -- writes -------------------------------------------------------------------------------

    def add(self, documents: Iterable[IndexDocument | PreparedDocument]) -> WriteResult:
        """Insert or replace a batch of documents, atomically (see :mod:`ebr.stores.protocol`)."""
        with paused_gc(), small_pages():
            return self._write(prepare_batch(self._schema, documents), [])

    @contextlib.contextmanager
    def batched_writes(self) -> Iterator[None]:
        """For the Store protocol: every local write is committed, and visible, as it returns."""
        yield

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete a batch of ids, atomically; ids not in the index are ignored."""
        return self._write([], list(dict.fromkeys(check_id(i, n) for n, i in enumerate(ids))))

    def _write(self, docs: list[PreparedDocument], deletes: list[str]) -> WriteResult:
        with self._write_lock:
            self._check_writable()
            with self._writing("writing to"):
                with transaction(self._conn, write=True):
                    self._catch_up()
                    asked = [d.id for d in docs] + deletes
                    _, numbers = self._id_lookup.find(asked)
                    live = {i: n for i, n in zip(asked, numbers, strict=True) if n is not None}
                    replaced = [d.id for d in docs if d.id in live]
                    deleted = [i for i in deletes if i in live]
                    if not docs and not deleted:
                        return WriteResult()  # nothing changes
                    snap = self._snapshot
                    clusters, codes = self._clusters(snap, docs)
                    gone = replaced + deleted
                    edit = SnapshotEdit(snap)
                    old_terms = database.stored_terms(self._conn, gone)
                    for doc_id in gone:
                        edit.remove(live[doc_id], old_terms[doc_id])
                    database.delete_documents(self._conn, gone)
                    database.insert_documents(
                        self._conn, docs, clusters,
                        [{k: c.tobytes() for k, (c, _) in p.items()} if p else {}
                         for p in codes], self.directory)
                    for d, c, p in zip(docs, clusters, codes, strict=True):
                        edit.add(d, c, p)
                    new = edit.build()
                    commits = database.bump_commits(self._conn)
                self._committed(commits)
                # Committed: publish (an interrupt from here on is mended by _writing).
                self._snapshot = new
            return WriteResult(added=len(docs) - len(replaced), replaced=len(replaced),
                               deleted=len(deleted))

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        """Around a write transaction: SQLite and OS failures as StoreError, and memory made
        to agree with the database again if the block fails or is interrupted anywhere."""
        with failures(self.directory, doing), paused_gc(), small_pages():
            if self._stale:
                self._recover()
            self._stale = True
            try:
                yield
            except BaseException:
                with contextlib.suppress(Exception):  # else _stale stays: the next write retries
                    self._recover()
                raise
            self._stale = False

    def _recover(self) -> None:
        """After a failed or interrupted write: roll back what it left open, reload."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._reload()
        self._stale = False

    def _catch_up(self) -> None:
        """Inside the write transaction: reload if another connection committed since memory
        was loaded (another process writing the file without ebr's lock)."""
        if self._read_data_version() != self._data_version:
            self._reload()

    def _reload(self) -> None:
        """Memory rebuilt from the database (inside the caller's transaction if one is open)."""
        with _undecodable(self.directory):
            contents = database.read_contents(self._conn, self._schema, self.directory,
                                              self._maps)
            snap = _load(contents, self._schema)
        self._commits = contents.commits
        self._snapshot = dataclasses.replace(snap, version=self._snapshot.version + 1)
        self._data_version = self._read_data_version()

    def _read_data_version(self) -> int:
        version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    @staticmethod
    def _clusters(snap: Snapshot, docs: Sequence[PreparedDocument]
                  ) -> tuple[list[dict[str, int]],
                             list[dict[str, tuple[npt.NDArray[np.uint8], float]]]]:
        """Each document's cluster per key with a trained quantizer, and its PQ code and
        reconstruction length per key that keeps codes."""
        if not snap.quantizers:  # before training: one empty mapping, read only, for all
            return [{}] * len(docs), [{}] * len(docs)
        out: list[dict[str, int]] = [{} for _ in docs]
        codes: list[dict[str, tuple[npt.NDArray[np.uint8], float]]] = [{} for _ in docs]
        for key, quantizer in snap.quantizers.items():
            having = [i for i, d in enumerate(docs) if key in d.vectors]
            if not having:
                continue
            vectors = stacked([docs[i].vectors[key] for i in having])
            ids = assign(quantizer, vectors)
            for i, c in zip(having, ids.tolist(), strict=True):
                out[i][key] = c
            product = snap.products.get(key)
            if product is not None:
                pq, norms = product.encode(unit_rows(vectors), ids)
                for i, code, norm in zip(having, pq, norms.tolist(), strict=True):
                    codes[i][key] = (code, norm)
        return out, codes

    # -- quantizers ---------------------------------------------------------------------------

    def train_quantizers(self, keys: Iterable[str] | None = None, *,
                         sample_size: int | None = None, nlist: int | None = None,
                         seed: int = 0, niter: int = 20) -> dict[str, TrainingReport]:
        """Train each key's coarse quantizer (every key of the schema by default) with Faiss
        spherical k-means on a seeded sample (``sample_size``, default 256 per cluster) of
        its vectors, ``nlist`` clusters (default: the schema's), and re-assign every
        document's cluster term.  A key needs at least ``nlist`` vectors.

        A key whose schema sets ``quantizer.pq_m`` also gets, trained on the residuals of
        the same sample, its OPQ rotation (if ``quantizer.opq``) and product quantizer, and
        every document its code; that needs a sample of at least 256 vectors."""
        reports: dict[str, TrainingReport] = {}
        with self._write_lock:
            self._check_writable()
            for key in list(keys) if keys is not None else [k.name for k in self._schema.keys]:
                spec = self._key(key)
                start = time.perf_counter()
                _, vectors = _live_rows(self._snapshot.tables[key])
                clusters = nlist if nlist is not None else spec.quantizer.nlist
                centroids, sample = train_centroids(key, vectors, clusters,
                                                    sample_size=sample_size, seed=seed,
                                                    niter=niter)
                self._install(key, centroids,
                              train_key_product(spec, vectors[sample], centroids, seed=seed))
                reports[key] = TrainingReport(key, len(vectors), len(sample), clusters,
                                              time.perf_counter() - start)
        return reports

    def set_quantizer(self, key: str, centroids: npt.ArrayLike) -> None:
        """Use these centroids (``nlist x dimension``) as ``key``'s coarse quantizer, e.g.
        trained elsewhere, and re-assign every document's cluster term.  The key's PQ
        codes, residuals from the old centroids, are dropped: :meth:`train_quantizers`
        makes new ones."""
        with self._write_lock:
            self._check_writable()
            self._install(key, checked_centroids(self._key(key), centroids))

    def _install(self, key: str, centroids: npt.NDArray[np.float32],
                 product: ProductCodes | None = None) -> None:
        quantizer = CentroidQuantizer(centroids)
        with self._writing("training a quantizer in"):
            with transaction(self._conn, write=True):
                self._catch_up()
                snap = self._snapshot
                table = snap.tables[key]
                clusters = assign(quantizer, table.matrix[: table.rows])
                live = table.row_of(to_array(table.present))
                ids = [snap.ids[d] for d in table.docnums[live].tolist()]
                coded = None
                if product is None:
                    rows = zip(ids, clusters[live].tolist(), itertools.repeat(None),
                               strict=False)
                else:
                    codes, norms = _encode(product, table.matrix[: table.rows], clusters)
                    coded = (product, codes, norms)
                    rows = zip(ids, clusters[live].tolist(), (c.tobytes() for c in codes[live]),
                               strict=True)
                database.write_quantizer(
                    self._conn, key, quantizer.centroids, rows,
                    None if product is None else (product.codebooks, product.rotation))
                new = snap.with_quantizer(key, quantizer, clusters, coded)
                commits = database.bump_commits(self._conn)
            self._committed(commits)
            self._snapshot = new

    def _committed(self, commits: int | None) -> None:
        self._commits = commits
        if self._record and commits is not None:
            database.record_commits(self.directory, commits)

    # -- reads --------------------------------------------------------------------------------

    def search(self, plan: Node, vectors: Vectors, size: int = 10, *,
               fetch: Fetch | None = None) -> SearchResult:
        """Execute a plan from :func:`ebr.plan` made with :attr:`quantizers`; its first
        ``size`` hits in first-stage order (:mod:`ebr.stores.local.hits`), each explained.
        ``fetch`` is ignored: reading the hits' vectors and terms afterwards costs no round
        trip here (about as much as returning them would)."""
        check_size(size)
        self._check_open()
        start = time.perf_counter()
        ex = Execution(self._snapshot, self._schema, vectors, self.exact_threshold, self.refine,
                       self._term_rows)
        root = ex.bitmap(plan)
        matched = time.perf_counter()
        hits = build_hits(plan, ex, size)
        ordered = time.perf_counter()
        names = {id(node): name for name, node in named_branches(plan).items()}
        stats = SearchStats(
            total=len(root), documents_scanned=ex.documents_scanned,
            candidates_verified=ex.candidates_verified, topk=ex.topk_choices(names),
            seconds={"match": matched - start - ex.verify_seconds,
                     "verify": ex.verify_seconds, "order": ordered - matched},
            candidates_by_codes=ex.candidates_by_codes, probes=ex.probe_choices(names))
        return SearchResult(hits, stats)

    def get_documents(self, ids: Sequence[str]) -> list[StoredDocument | None]:
        self._check_open()
        with failures(self.directory, "reading"):
            found = database.fetch_documents(self._reader(), list(ids), self._schema,
                                             self.directory, self._maps)
        out: list[StoredDocument | None] = []
        for doc_id in ids:
            row = found.get(doc_id)
            if row is None:
                out.append(None)
                continue
            rank, source, terms, embeddings = row
            by_ns: dict[str, list[str]] = {}
            for term in sorted(terms):
                ns, _, value = term.partition(":")
                by_ns.setdefault(ns, []).append(value)
            vectors: dict[str, npt.NDArray[np.float32]] = {}
            for key, blob, cluster in embeddings:
                vectors[key] = np.frombuffer(blob, np.float32).copy()
                if cluster is not None:
                    by_ns[cluster_namespace(key)] = [str(cluster)]
            with _undecodable(self.directory):
                out.append(StoredDocument(doc_id, {ns: tuple(v) for ns, v in by_ns.items()},
                                          vectors, rank, json.loads(source)))
        return out

    def get_terms(self, ids: Sequence[str], namespaces: Iterable[str]
                  ) -> list[dict[str, tuple[str, ...]]]:
        self._check_open()
        with failures(self.directory, "reading"):
            found = database.fetch_terms(self._reader(), list(ids), namespaces)
        out: list[dict[str, tuple[str, ...]]] = []
        for doc_id in ids:
            by_ns: dict[str, list[str]] = {}
            for term in sorted(found.get(doc_id, ())):
                ns, _, value = term.partition(":")
                by_ns.setdefault(ns, []).append(value)
            out.append({ns: tuple(values) for ns, values in by_ns.items()})
        return out

    def get_vectors(self, ids: Sequence[str], key: str) -> dict[str, npt.NDArray[np.float32]]:
        """From memory: the current snapshot's rows (those its searches computed distances
        from), not the database (the reranker reads a search's candidates' vectors)."""
        self._check_open()
        self._key(key)
        snap, docnums = self._id_lookup.find(ids)
        table = snap.tables.get(key)
        if table is None:
            return {}
        held = [(i, d) for i, d in zip(ids, docnums, strict=True)
                if d is not None and d in table.present]
        matrix = table.matrix[table.row_of(np.array([d for _, d in held], np.uint32))]
        return {i: row for (i, _), row in zip(held, matrix, strict=True)}

    def all_vectors(self, key: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Every live ``key`` embedding of the current snapshot, in document-number order."""
        self._check_open()
        self._key(key)
        return self._live_vectors(self._snapshot, key)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _live_vectors(snap: Snapshot, key: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        table = snap.tables[key]
        docnums = to_array(table.present)
        return [snap.ids[d] for d in docnums.tolist()], table.matrix[table.row_of(docnums)]

    def _reader(self) -> sqlite3.Connection:
        return self._readers.get()

    def _key(self, key: str) -> EmbeddingKey:
        return schema_key(self._schema, key)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the index in {self.directory} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._lock_fd is None:
            raise StoreError(f"the index in {self.directory} was opened read-only")


@contextlib.contextmanager
def _undecodable(directory: Path) -> Iterator[None]:
    """Values read from the database that cannot be what ebr wrote (only a damaged file, or
    one from before checksums, gets past the checksums with such values)."""
    try:
        yield
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as e:
        raise IndexDamagedError(f"the index in {directory} is damaged: a stored value cannot "
                                f"be read ({type(e).__name__}: {e}); {REBUILD}") from None


def _connected(directory: Path, db_path: Path, *, readonly: bool,
               synchronous: Synchronous) -> sqlite3.Connection:
    """:func:`database.connect`, a file that is no SQLite database refused as no index."""
    try:
        return database.connect(db_path, readonly=readonly, synchronous=synchronous)
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorcode", None) not in (sqlite3.SQLITE_NOTADB, None):
            raise
        raise StoreError(f"{directory} is not an ebr local index: {e}") from None


def _lock(directory: Path) -> int:
    """The exclusive write lock: an ``flock`` on the index directory itself (no file to
    delete by accident), released when the descriptor is closed (or the process dies).  Not
    on the database file: closing any descriptor of that file would drop SQLite's own
    POSIX locks held by this process."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"the index in {directory} is open for writing by another process "
                         "(or another store in this one)") from None
    return fd


def _live_rows(table: VectorTable) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The rows of the live documents in document-number order, and their vectors: a
    read-only view of the matrix when they are its first rows in that order (after an
    ingest, before training), else a copy (half a gigabyte at a million 128-d rows)."""
    rows = table.row_of(to_array(table.present))
    if np.array_equal(rows, np.arange(len(rows))):
        view = table.matrix[:len(rows)]
        view.flags.writeable = False  # a view of a buffer writers append to
        return rows, view
    return rows, table.matrix[rows]


def _encode(product: ProductCodes, matrix: npt.NDArray[np.float32],
            clusters: npt.NDArray[np.int32]) -> tuple[npt.NDArray[np.uint8],
                                                      npt.NDArray[np.float32]]:
    """PQ codes and reconstruction lengths of every row, a block at a time (unit copies of
    a million rows would double the matrix's memory)."""
    codes = np.empty((len(matrix), product.m), np.uint8)
    norms = np.empty(len(matrix), np.float32)
    for start in range(0, len(matrix), _ENCODE_BLOCK):
        stop = start + _ENCODE_BLOCK
        codes[start:stop], norms[start:stop] = product.encode(
            unit_rows(matrix[start:stop]), clusters[start:stop])
    return codes, norms


_ENCODE_BLOCK = 65536


def _mapped(directory: Path, conn: sqlite3.Connection, schema: Schema
            ) -> tuple[tuple[Snapshot, int] | None, str | None]:
    """The snapshot mapped from the file and the commits it stands for, if the file stands
    for the database; else None and why not."""
    commits, documents = database.commits_and_documents(conn)
    if commits is None:
        return None, "the database has no commit counter (written by an older ebr)"
    stamp = Stamp(commits, documents, database.checksum(schema.to_json()))
    try:
        snap = snapshot_file.load(directory, stamp)
    except Unusable as e:
        return None, str(e)
    return (dataclasses.replace(snap, version=0), commits), None


def _load(contents: database.Contents, schema: Schema) -> Snapshot:
    """The snapshot of freshly read contents: documents numbered in the order read."""
    count = len(contents.ids)
    postings = {t: FrozenBitMap(from_array(nums)) for t, nums in contents.terms.items()}
    tables: dict[str, VectorTable] = {}
    products = {k: ProductCodes(contents.centroids[k], codebooks, rotation)
                for k, (codebooks, rotation) in contents.products.items()}
    for spec in schema.keys:
        nums, blobs, clusters, codes = contents.embeddings.get(spec.name, ([], [], [], []))
        product = products.get(spec.name)
        if not nums:
            tables[spec.name] = VectorTable.empty(spec.dimension,
                                                  product.m if product is not None else 0)
            continue
        matrix = np.frombuffer(b"".join(blobs), np.float32).reshape(len(nums), spec.dimension)
        assigned = np.array(clusters, np.int32)
        code_matrix = norms = None
        if product is not None:
            if any(c is None or len(c) != product.m for c in codes):
                raise StoreError(f"{spec.name!r} keeps PQ codes but some stored embeddings "
                                 "have none (or the wrong length); retrain its quantizer")
            code_matrix = np.frombuffer(b"".join(codes),  # type: ignore[arg-type]
                                        np.uint8).reshape(len(nums), product.m)
            norms = product.norms(code_matrix, assigned)
        centroids = contents.centroids.get(spec.name)
        tables[spec.name] = VectorTable.load(spec.dimension, np.array(nums, np.uint32), matrix,
                                             assigned, code_matrix, norms,
                                             0 if centroids is None else len(centroids))
        postings.update(cluster_postings(spec.name, tables[spec.name]))
    quantizers = {k: CentroidQuantizer(c) for k, c in contents.centroids.items()}
    live = FrozenBitMap(range(count)) if count else EMPTY
    return Snapshot(0, count, list(contents.ids), np.array(contents.ranks, np.float64), live,
                    postings, tables, quantizers, products,
                    load_lengths(contents.terms, count))


def _implements(store: LocalStore) -> Store:
    """Never called: where mypy checks that LocalStore has the Store protocol's shape."""
    return store
