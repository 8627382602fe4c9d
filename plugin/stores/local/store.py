"""The local store: one directory per index, no server.

``<dir>/index.sqlite`` is the source of truth (:mod:`ebr.stores.local.database`); everything a
search touches is in memory (:mod:`ebr.stores.local.snapshot`), rebuilt from the database on open.

Writes: one writer at a time (a lock per store, and an exclusive ``flock`` on ``<dir>/lock``
so a second process cannot open the index for writing).  A batch is checked whole
(:mod:`ebr.stores.documents`), written in one SQLite transaction, and the next snapshot, built
during that transaction, is published only after the commit: a failed or interrupted
batch leaves neither the database nor memory changed.

Reads: a search takes the current snapshot and uses nothing else, so searches running while
a writer commits each see one whole commit.  Fetching documents reads the database (each
thread its own connection), as of the latest commit.

Keys whose schema sets ``quantizer.pq_m`` also keep PQ codes (:mod:`ebr.quantization.product`),
trained with the coarse quantizer.  A probing ``within`` or top-K ``nn`` over such a key
first scores its candidates by code and verifies exactly only those the codes put within
``radius + refine_margin`` (top-K: the best ``max(k * refine_factor, k + 32)``): what it
returns is always exact, but a document whose code errs by more than the margin can be
missed (as one in an unprobed cluster is).  ``refine_margin`` and ``refine_factor`` are
options of :meth:`LocalStore.open` and :meth:`LocalStore.create`.

Opening read-only (``readonly=True``) takes no lock and loads the index as of that moment;
it does not follow later commits by another process.  Training a quantizer holds the write
lock (writes wait; searches do not).  ``close`` must not race with calls still running in
other threads.  Besides the database the directory holds only ``lock``, which carries no
data; the database itself is created under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
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
from typing import IO

import numpy as np
import numpy.typing as npt
from pyroaring import FrozenBitMap

from ebr.errors import PlanError, StoreError
from ebr.mappings.schema import EmbeddingKey, Schema, cluster_namespace
from ebr.planning.query_vectors import Vectors
from ebr.quantization.coarse import CentroidQuantizer, assign, unit_rows
from ebr.quantization.kmeans import TrainingReport, train_centroids
from ebr.quantization.product import ProductCodes, train_product
from ebr.query.nodes import Node, named_branches
from ebr.stores.arguments import checked_centroids, schema_key
from ebr.stores.documents import PreparedDocument, check_id, prepare_batch
from ebr.stores.local import database
from ebr.stores.local.bitmaps import EMPTY, from_array, to_array
from ebr.stores.local.database import DB_FILE, ReadConnections, Synchronous, transaction
from ebr.stores.local.execution import EXACT_THRESHOLD, REFINE_FACTOR, REFINE_MARGIN, Execution, Refine
from ebr.stores.local.hits import build_hits
from ebr.stores.local.snapshot import Snapshot, SnapshotEdit, cluster_postings
from ebr.stores.local.vectors import VectorTable
from ebr.stores.protocol import (
    IndexDocument,
    IndexStats,
    SearchResult,
    SearchStats,
    Store,
    StoredDocument,
    WriteResult,
)

LOCK_FILE = "lock"
_OWN_FILES = (DB_FILE, DB_FILE + "-wal", DB_FILE + "-shm", DB_FILE + ".tmp", LOCK_FILE)


class LocalStore:
    """An open local index (implements :class:`ebr.stores.protocol.Store`).  Use :meth:`create` or
    :meth:`open`; close it (or use it as a context manager) to release the directory."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, schema: Schema,
                 snapshot: Snapshot, lock: IO[bytes] | None, exact_threshold: int,
                 refine: Refine) -> None:
        self.directory = directory
        self.exact_threshold = exact_threshold
        self.refine = refine
        self._conn = conn
        self._schema = schema
        self._snapshot = snapshot
        self._lock_file = lock
        self._write_lock = threading.Lock()
        self._readers = ReadConnections(directory / DB_FILE)
        # id -> docnum of the live version; the writer's alone (searches never need it)
        self._docnums = {snapshot.ids[d]: d for d in snapshot.live}
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
        directory.mkdir(parents=True, exist_ok=True)
        lock = _lock(directory)
        try:
            database.create(directory, schema)
        except BaseException:
            lock.close()
            raise
        lock.close()
        return cls.open(directory, synchronous=synchronous, exact_threshold=exact_threshold,
                        refine_margin=refine_margin, refine_factor=refine_factor)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
             synchronous: Synchronous = "FULL",
             exact_threshold: int = EXACT_THRESHOLD,
             refine_margin: float = REFINE_MARGIN,
             refine_factor: int = REFINE_FACTOR) -> LocalStore:
        """The index in ``path``, loaded into memory.

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
        lock = None if readonly else _lock(directory)
        try:
            try:
                conn = database.connect(db_path, readonly=readonly, synchronous=synchronous)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{directory} is not an ebr local index: {e}") from None
            try:
                if not readonly:
                    database.add_missing_columns(conn)
                schema = database.read_schema(conn, directory)
                snapshot = _load(database.read_contents(conn, schema, directory), schema)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            if lock is not None:
                lock.close()
            raise
        return cls(directory, conn, schema, snapshot, lock, exact_threshold, refine)

    @staticmethod
    def drop(path: str | os.PathLike[str]) -> None:
        """Delete the index in ``path``: its files, then the directory if nothing else is in
        it.  Refuses while another process has the index open for writing."""
        directory = Path(path)
        if not (directory / DB_FILE).is_file():
            raise StoreError(f"no local index in {directory} to drop")
        lock = _lock(directory)
        try:
            for name in _OWN_FILES:
                if name != LOCK_FILE:
                    (directory / name).unlink(missing_ok=True)
        finally:
            lock.close()
        (directory / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # other files of the user's stay, with the folder
            directory.rmdir()

    def close(self) -> None:
        if self._closed:
            return
        with self._write_lock:
            self._closed = True
            self._readers.close()
            self._conn.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock

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
            disk_bytes=sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file()),
        )

    def sample_terms(self, namespace: str, limit: int) -> list[str]:
        self._check_open()
        prefix = namespace + ":"
        found = [(-len(b), t) for t, b in self._snapshot.postings.items() if t.startswith(prefix)]
        return [t[len(prefix):] for _, t in heapq.nsmallest(limit, found)]

    # -- writes -------------------------------------------------------------------------------

    def add(self, documents: Iterable[IndexDocument]) -> WriteResult:
        """Insert or replace a batch of documents, atomically (see :mod:`ebr.stores.protocol`)."""
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
            replaced = [d.id for d in docs if d.id in self._docnums]
            deleted = [i for i in deletes if i in self._docnums]
            if not docs and not deleted:
                return WriteResult()  # nothing changes: no commit to wait for
            snap = self._snapshot
            clusters, codes = self._clusters(snap, docs)
            gone = replaced + deleted
            edit = SnapshotEdit(snap)
            with transaction(self._conn, write=True):
                old_terms = database.stored_terms(self._conn, gone)
                for doc_id in gone:
                    edit.remove(self._docnums[doc_id], old_terms[doc_id])
                database.delete_documents(self._conn, gone)
                database.insert_documents(
                    self._conn, docs, clusters,
                    [{k: c.tobytes() for k, (c, _) in p.items()} for p in codes])
                numbers = [edit.add(d, c, p) for d, c, p in zip(docs, clusters, codes,
                                                                strict=True)]
                new = edit.build()
            # Committed: publish.  Nothing below can fail short of the interpreter dying.
            for doc_id in deleted:
                del self._docnums[doc_id]
            self._docnums.update((d.id, n) for d, n in zip(docs, numbers, strict=True))
            self._snapshot = new
            return WriteResult(added=len(docs) - len(replaced), replaced=len(replaced),
                               deleted=len(deleted))

    @staticmethod
    def _clusters(snap: Snapshot, docs: Sequence[PreparedDocument]
                  ) -> tuple[list[dict[str, int]],
                             list[dict[str, tuple[npt.NDArray[np.uint8], float]]]]:
        """Each document's cluster per key with a trained quantizer, and its PQ code and
        reconstruction length per key that keeps codes."""
        out: list[dict[str, int]] = [{} for _ in docs]
        codes: list[dict[str, tuple[npt.NDArray[np.uint8], float]]] = [{} for _ in docs]
        for key, quantizer in snap.quantizers.items():
            having = [i for i, d in enumerate(docs) if key in d.vectors]
            if not having:
                continue
            vectors = np.stack([docs[i].vectors[key] for i in having])
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
                table = self._snapshot.tables[key]
                start = time.perf_counter()
                live = table.row_of(to_array(table.present))
                clusters = nlist if nlist is not None else spec.quantizer.nlist
                vectors = table.matrix[live]
                centroids, sample = train_centroids(key, vectors, clusters,
                                                    sample_size=sample_size, seed=seed,
                                                    niter=niter)
                product = None
                if spec.quantizer.pq_m:
                    units = unit_rows(vectors[sample])
                    product = train_product(
                        key, units, assign(CentroidQuantizer(centroids), units), centroids,
                        spec.quantizer.pq_m, opq=spec.quantizer.opq, seed=seed)
                self._install(key, centroids, product)
                reports[key] = TrainingReport(key, len(live), len(sample), clusters,
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
        snap = self._snapshot
        table = snap.tables[key]
        clusters = assign(quantizer, table.matrix[: table.rows])
        live = table.row_of(to_array(table.present))
        ids = (snap.ids[d] for d in table.docnums[live].tolist())
        coded = None
        if product is None:
            triples = zip(clusters[live].tolist(), itertools.repeat(None), ids, strict=False)
        else:
            codes, norms = _encode(product, table.matrix[: table.rows], clusters)
            coded = (product, codes, norms)
            triples = zip(clusters[live].tolist(), (c.tobytes() for c in codes[live]), ids,
                          strict=True)
        with transaction(self._conn, write=True):
            database.write_quantizer(
                self._conn, key, quantizer.centroids, triples,
                None if product is None else (product.codebooks, product.rotation))
            new = snap.with_quantizer(key, quantizer, clusters, coded)
        self._snapshot = new

    # -- reads --------------------------------------------------------------------------------

    def search(self, plan: Node, vectors: Vectors, size: int = 10) -> SearchResult:
        """Execute a plan from :func:`ebr.plan` made with :attr:`quantizers`; its first
        ``size`` hits in first-stage order (:mod:`ebr.stores.local.hits`), each explained."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PlanError(f"size must be a whole number >= 0, got {size!r}")
        self._check_open()
        start = time.perf_counter()
        ex = Execution(self._snapshot, self._schema, vectors, self.exact_threshold, self.refine)
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
            candidates_by_codes=ex.candidates_by_codes)
        return SearchResult(hits, stats)

    def get_documents(self, ids: Sequence[str]) -> list[StoredDocument | None]:
        self._check_open()
        found = database.fetch_documents(self._reader(), list(ids))
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
            out.append(StoredDocument(doc_id, {ns: tuple(v) for ns, v in by_ns.items()},
                                      vectors, rank, json.loads(source)))
        return out

    def get_vectors(self, ids: Sequence[str], key: str) -> dict[str, npt.NDArray[np.float32]]:
        self._check_open()
        self._key(key)
        blobs = database.fetch_vectors(self._reader(), list(ids), key)
        return {i: np.frombuffer(b, np.float32).copy() for i, b in blobs.items()}

    # -- helpers ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        return self._readers.get()

    def _key(self, key: str) -> EmbeddingKey:
        return schema_key(self._schema, key)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the index in {self.directory} is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._lock_file is None:
            raise StoreError(f"the index in {self.directory} was opened read-only")


def _lock(directory: Path) -> IO[bytes]:
    """The exclusive write lock on ``directory``; released when the file is closed (or the
    process dies)."""
    f = open(directory / LOCK_FILE, "ab")  # noqa: SIM115 - held until close()
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise StoreError(f"the index in {directory} is open for writing by another process "
                         "(or another store in this one)") from None
    return f


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
        tables[spec.name] = VectorTable.load(spec.dimension, np.array(nums, np.uint32), matrix,
                                             assigned, code_matrix, norms)
        postings.update(cluster_postings(spec.name, tables[spec.name]))
    quantizers = {k: CentroidQuantizer(c) for k, c in contents.centroids.items()}
    live = FrozenBitMap(range(count)) if count else EMPTY
    return Snapshot(0, count, list(contents.ids), np.array(contents.ranks, np.float64), live,
                    postings, tables, quantizers, products)


def _implements(store: LocalStore) -> Store:
    """Never called: where mypy checks that LocalStore has the Store protocol's shape."""
    return store
