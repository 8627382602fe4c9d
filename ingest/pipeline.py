"""The ingest pipeline, one for both stores: records -> documents -> batches -> a store.

For each batch of records read from a file (:func:`~ebr.ingest.records.stream_records`):

1. each record becomes a document through the field mapping (:mod:`.field_mapping`), its
   embedding computed by the document encoder if one is given; a record that cannot become a
   valid document (unreadable line, missing id, a bad vector...) is skipped with its line
   number and reason, never dropped silently; the documents are checked here, once;
2. the batch is written (``store.add``); documents the store refuses (an OpenSearch bulk
   failure) are reported each with their line.  Step 1 of the next batch runs in a thread
   (:mod:`.prefetch`) while this one is written, so reading and encoding overlap the store's
   work (a cluster indexing a bulk request); a store that can (:class:`RendersAhead`: the
   OpenSearch store's bulk lines) makes its request lines there too, so its next write
   starts sending at once.  A store that can take the next batch before this one is
   answered (:class:`WritesPending`: the OpenSearch store's one stream of bulk requests) is
   handed it at once, so the cluster never waits between batches: two batches are in flight
   at most, and never two sharing a document id (one sent again after a 429 could
   overwrite the later one); a batch's refusals are reported once it is answered;
3. a checkpoint (the last line written) is saved once every batch up to it is answered, so
   an interrupted ingest resumes after it; ids make a replayed batch harmless (writes
   replace);
4. a key without a coarse quantizer gets one before anything is written: the first
   ``train_after`` documents holding it (default ``max(40 * nlist, 1000)``) are held in memory,
   k-means trains on them and the quantizer is set, then they are written with their clusters
   (a key that keeps PQ codes is trained by the store once that many are written, codes and
   all); the cluster terms are never missing.  A key whose ANN index needs a trained model
   first (an OpenSearch IVF-PQ key, :class:`ModelTrainingStore`) is held the same way, and
   its model trained on the same sample before any of its documents is written.

More bad records than ``max_bad_fraction`` of those read (judged once 100 are read) aborts with
:class:`IngestAborted`, the checkpoint kept, so a wrong file or mapping stops early.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import faiss
import numpy as np
import numpy.typing as npt

from ebr.errors import EbrError, StoreError
from ebr.ingest.field_mapping import FieldMapping
from ebr.ingest.lines import QUOTED_SKIPS, SkippedLine
from ebr.ingest.prefetch import prefetched
from ebr.ingest.records import Record, stream_records
from ebr.mappings.opensearch_mapping import training_minimum
from ebr.mappings.schema import EmbeddingKey, IvfPq, Schema
from ebr.quantization.kmeans import TrainingReport, train_centroids
from ebr.stores.documents import DocumentError, PreparedDocument, prepare_batch
from ebr.stores.opensearch.bulk import PendingWrite
from ebr.stores.opensearch.store import BulkWriteError
from ebr.stores.protocol import IndexDocument, Store, WriteResult

#: Records per batch written to the store.
BATCH = 1000
#: Bad records are only judged against the threshold past this many records read.
JUDGE_AFTER = 100


class DocumentEncoder(Protocol):
    """What embeds documents for one embedding key (a model directory's document tower)."""

    @property
    def key(self) -> str: ...

    def encode(self, records: Sequence[Record]) -> npt.NDArray[np.float32]: ...


class IngestAborted(StoreError):
    """Too many bad records: the ingest stopped; what was written stays, the checkpoint too."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    """What one ingest did.  ``read`` counts every line consumed (good and bad); ``skipped``
    the records that could not become documents, ``failed`` the documents the store refused
    (line, id, reason); ``added + replaced + len(skipped) + len(failed) == read``."""

    source: str
    read: int = 0
    added: int = 0
    replaced: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    resumed_after: int = 0
    trained: dict[str, TrainingReport] = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.added + self.replaced

    def summary(self) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        lines = [f"{self.source}: {self.read} records read"
                 + (f" after line {self.resumed_after} (resumed)" if self.resumed_after else "")
                 + f", {self.written} written ({self.added} new, {self.replaced} replaced), "
                 f"{len(self.skipped)} skipped, {len(self.failed)} refused by the store; "
                 f"{self.seconds:.1f} s, {rate:,.0f} records/s"
                 + (f" (encoding {self.encode_seconds:.1f} s)" if self.encode_seconds else "")]
        for key, t in self.trained.items():
            lines.append(f"  trained the coarse quantizer of {key}: nlist {t.nlist} on {t.sample} "
                         f"of {t.vectors} vectors")
        for s in self.skipped[:QUOTED_SKIPS]:
            lines.append(f"  skipped line {s.line}: {s.reason}")
        if len(self.skipped) > QUOTED_SKIPS:
            lines.append(f"  ... and {len(self.skipped) - QUOTED_SKIPS} more skipped")
        for line, doc_id, reason in self.failed[:QUOTED_SKIPS]:
            lines.append(f"  refused line {line} (id {doc_id!r}): {reason}")
        if len(self.failed) > QUOTED_SKIPS:
            lines.append(f"  ... and {len(self.failed) - QUOTED_SKIPS} more refused")
        return "\n".join(lines)


class TrainableStore(Store, Protocol):
    """A store whose coarse quantizers ingest may set or train (both stores)."""

    def set_quantizer(self, key: str, centroids: npt.ArrayLike) -> None: ...

    def train_quantizers(self, keys: Iterable[str] | None = None, *,
                         sample_size: int | None = None, nlist: int | None = None,
                         seed: int = 0, niter: int = 20) -> dict[str, TrainingReport]: ...


@runtime_checkable
class RendersAhead(Protocol):
    """A store that can make a batch's request lines before it is written (the OpenSearch
    store's bulk lines): the reading thread does so while the previous batch is written."""

    def render_ahead(self, docs: Sequence[PreparedDocument]) -> None: ...


@runtime_checkable
class WritesPending(Protocol):
    """A store that takes a batch and returns before it is answered (the OpenSearch store:
    the next batch's requests follow this one's at once)."""

    def add_pending(self, documents: Iterable[IndexDocument | PreparedDocument]
                    ) -> PendingWrite: ...


@runtime_checkable
class ModelTrainingStore(Protocol):
    """A store with keys whose ANN model must be trained on a sample before a document
    carries their embedding (the OpenSearch store's IVF-PQ keys)."""

    @property
    def untrained_models(self) -> frozenset[str]: ...

    def train_model(self, key: str, vectors: npt.ArrayLike) -> None: ...


def ingest(store: TrainableStore, source: str | Path, *, mapping: FieldMapping | None = None,
           encoder: DocumentEncoder | None = None, format: str | None = None,
           batch_size: int = BATCH, checkpoint: str | Path | None = None,
           max_bad_fraction: float = 0.1, train_after: int | None = None,
           progress: Callable[[int], None] | None = None) -> IngestReport:
    """Write every record of ``source`` into ``store`` (see the module docstring).
    ``progress`` is called with the number of lines consumed by each batch."""
    source = Path(source)
    schema = store.schema
    mapping = mapping or FieldMapping.for_schema(schema)
    mapping.check(schema)
    if encoder is not None and schema.key(encoder.key) is None:
        raise StoreError(f"the model embeds for key {encoder.key!r}, which the index does not "
                         f"declare (it has: {', '.join(k.name for k in schema.keys) or 'none'})")
    saved = _Checkpoint(Path(checkpoint), source) if checkpoint is not None else None
    report = IngestReport(str(source), resumed_after=saved.load() if saved else 0)
    run = _Run(store, mapping, encoder, report, saved, train_after, max_bad_fraction, progress)
    started = time.perf_counter()
    batches = _batches(source, format, report.resumed_after, batch_size, schema, mapping,
                       encoder, store.render_ahead if isinstance(store, RendersAhead) else None)
    with store.batched_writes(), prefetched(batches) as prepared:
        for batch in prepared:  # batch N+1 is read and encoded while batch N is written
            run.batch(batch, batch_size)
        run.batch(_Batch(report.resumed_after), batch_size, final=True)
    report.seconds = time.perf_counter() - started
    report.skipped.sort(key=lambda s: s.line)
    if saved is not None:
        saved.remove()
    return report


class _Run:
    """One ingest's state between batches.

    Until every key without a quantizer has ``due`` documents (its "warm-up"), documents are
    held in memory; then the quantizer is trained on them (the same sample for any store,
    so both stores get the same centroids) and set before anything is written, so no written
    document needs re-assigning.  Keys that keep PQ codes (the local store's) are trained by
    the store once enough documents are written, codes and all."""

    def __init__(self, store: TrainableStore, mapping: FieldMapping,
                 encoder: DocumentEncoder | None, report: IngestReport,
                 saved: _Checkpoint | None, train_after: int | None, max_bad_fraction: float,
                 progress: Callable[[int], None] | None) -> None:
        self.store, self.mapping, self.encoder, self.report = store, mapping, encoder, report
        self.saved, self.train_after, self.max_bad = saved, train_after, max_bad_fraction
        self.progress = progress
        self.held: list[tuple[int, PreparedDocument]] = []
        self.last_line = report.resumed_after
        self.holding: dict[str, int] = {}  # documents written per key (replacements too)
        self.flying: deque[_Flight] = deque()  # handed to the store, not answered yet
        self.models = (set(store.untrained_models) if isinstance(store, ModelTrainingStore)
                       else set())
        self.warming = {k.name for k in store.schema.keys
                        if k.name not in store.quantizers and not k.quantizer.pq_m} | self.models

    def _due(self, key: EmbeddingKey) -> int:
        due = self.train_after if self.train_after is not None else max(
            40 * key.quantizer.nlist, 1000)
        if key.name in self.models and isinstance(key.ann, IvfPq):
            return max(due, training_minimum(key.ann))  # the model needs this many too
        return due

    def batch(self, batch: _Batch, batch_size: int, final: bool = False) -> None:
        """Write one prepared batch (its lines counted in the report only now, so the report
        always adds up to what was written); ``final``: the input has ended."""
        self.report.read += batch.read
        self.report.skipped += batch.skipped
        self.report.encode_seconds += batch.encode_seconds
        if batch.read:
            self.last_line = batch.last_line
        docs = batch.docs
        if self.warming:  # held until their vectors have trained the quantizer
            self.held += docs
            docs = []
            self._warm_up(final)
        if not self.warming:
            ready, self.held = self.held + docs, []
            for start in range(0, len(ready), batch_size):
                self._write(ready[start:start + batch_size])
        if final:
            self._settle(keep=0)
        self._train_stored(final)
        if self.saved is not None and not self.held:
            if self.flying:  # saved once the last batch handed over is answered
                self.flying[-1].checkpoint = self.last_line
            else:
                self.saved.save(self.last_line)  # everything up to here is written
        if self.progress is not None:
            self.progress(batch.read)
        _judge(self.report, self.max_bad, self.saved, final)

    def _warm_up(self, final: bool) -> None:
        """Train the held keys that have enough documents (any at the end, from ``nlist``)."""
        for name in sorted(self.warming):
            key = self.store.schema.key(name)
            assert key is not None  # warming holds schema keys
            vectors = [d.vectors[name] for _, d in self.held if name in d.vectors]
            model = name in self.models
            if len(vectors) < (key.quantizer.nlist if final else self._due(key)) and not (
                    final and model and vectors):  # a model with too few: its clear error
                if final:
                    self.warming.discard(name)  # too few to train: written without clusters
                continue
            self._settle(keep=0)  # re-assigning or training reads what is written
            began = time.perf_counter()
            matrix = np.stack(vectors)  # checked already: float32 rows
            coarse = name not in self.store.quantizers and not key.quantizer.pq_m
            sample = np.arange(len(matrix))
            if coarse and len(matrix) >= key.quantizer.nlist:
                with _beside_the_reader():
                    centroids, sample = train_centroids(name, matrix, key.quantizer.nlist,
                                                        sample_size=None, seed=0, niter=20)
                self.store.set_quantizer(name, centroids)
                self.report.trained[name] = TrainingReport(name, len(matrix), len(sample),
                                                           key.quantizer.nlist,
                                                           time.perf_counter() - began)
            if model:
                assert isinstance(self.store, ModelTrainingStore)
                self.store.train_model(name, matrix[sample])
                self.models.discard(name)
            self.warming.discard(name)
        if self.warming and len(self.held) > _MAX_HELD:
            # A key so rare its warm-up would hold the whole file: write, train afterwards
            # (a model first, on what is held).
            self.warming &= self.models
            if self.warming:
                self._warm_up(final=True)

    def _write(self, docs: list[tuple[int, PreparedDocument]]) -> None:
        """Hand ``docs`` to the store, then wait for the answer of every batch before it."""
        if not docs:
            return
        # A later line wins over an earlier one of the same id in this batch (as across batches)
        by_id = {doc.id: (line, doc) for line, doc in docs}
        for line, doc in docs:
            if by_id[doc.id][0] != line:
                self.report.skipped.append(SkippedLine(
                    line, f"id {doc.id!r} again at line {by_id[doc.id][0]}: the later one is kept"))
        if any(doc_id in flight.lines for flight in self.flying for doc_id in by_id):
            self._settle(keep=0)  # the earlier batch's retries could overwrite this one's
        batch = [doc for _, doc in by_id.values()]
        if isinstance(self.store, WritesPending):
            answer, keep = self.store.add_pending(batch).result, 1
        else:
            answer, keep = _answered(self.store, batch), 0
        self.flying.append(_Flight({doc_id: line for doc_id, (line, _) in by_id.items()},
                                   answer))
        for doc in batch:
            for key in doc.vectors:
                self.holding[key] = self.holding.get(key, 0) + 1
        self._settle(keep)

    def _settle(self, keep: int) -> None:
        """Wait for the answers of the batches in flight but the last ``keep``: count what
        they wrote, report what was refused, save the checkpoint they reach."""
        while len(self.flying) > keep:
            flight = self.flying.popleft()
            try:
                result = flight.answer()
            except BulkWriteError as e:
                result = e.written
                self.report.failed += [(flight.lines.get(doc_id, 0), doc_id, f"{status} {reason}")
                                       for doc_id, status, reason in e.failures]
            self.report.added += result.added
            self.report.replaced += result.replaced
            if flight.checkpoint is not None and self.saved is not None:
                self.saved.save(flight.checkpoint)

    def _train_stored(self, final: bool) -> None:
        """Keys still without a quantizer (PQ codes, rare keys): the store trains them on what
        it holds, and re-assigns it.  ``holding`` is a cheap lower bound of what the index
        holds; the index is asked only when training may be due."""
        for key in self.store.schema.keys:
            if key.name in self.store.quantizers or key.name in self.warming:
                continue
            floor = key.quantizer.nlist if final else self._due(key)
            if self.holding.get(key.name, 0) < floor and not (final or self.report.resumed_after):
                continue
            self._settle(keep=0)  # counted and trained on what is written
            if self.store.stats().embeddings.get(key.name, 0) >= floor:
                self.report.trained.update(self.store.train_quantizers([key.name]))


#: The most documents held in memory waiting for a quantizer's sample.
_MAX_HELD = 200_000


@contextlib.contextmanager
def _beside_the_reader() -> Iterator[None]:
    """Faiss (k-means) in one OpenMP thread fewer than the cores, at least one: the reading
    thread keeps a core busy meanwhile, and OpenMP's threads spin waiting for the one that
    shares it (measured on 2 busy cores, 12,000 x 128-d into 256 clusters: 0.75-0.92 s in
    2 threads, 0.16 s in 1).  Faiss's thread count is the process's: restored after."""
    threads = faiss.omp_get_max_threads()
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    faiss.omp_set_num_threads(max(1, min(threads, cores - 1)))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


@dataclass
class _Batch:
    """One batch as the reading thread prepares it: the lines it consumed (up to
    ``last_line``), what was skipped and why, the time spent encoding, and the documents,
    checked (the store takes them without checking them again)."""

    last_line: int
    read: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)
    encode_seconds: float = 0.0
    docs: list[tuple[int, PreparedDocument]] = field(default_factory=list)


def _batches(source: Path, format: str | None, start: int, batch_size: int, schema: Schema,
             mapping: FieldMapping, encoder: DocumentEncoder | None,
             ahead: Callable[[Sequence[PreparedDocument]], None] | None = None
             ) -> Iterator[_Batch]:
    """The records after line ``start``, ``batch_size`` lines a batch, as documents (their
    request lines made ``ahead`` by the store, if it can)."""

    def prepared(batch: _Batch, rows: list[tuple[int, Record]]) -> _Batch:
        batch.docs = _valid(schema, _documents(mapping, encoder, rows, batch), batch)
        if ahead is not None:
            ahead([doc for _, doc in batch.docs])
        return batch

    batch, rows = _Batch(start), []
    for line, record in stream_records(source, format=format, start=start):
        batch.read += 1
        batch.last_line = line
        if isinstance(record, str):
            batch.skipped.append(SkippedLine(line, record))
        else:
            rows.append((line, record))
        if batch.read >= batch_size:
            yield prepared(batch, rows)
            batch, rows = _Batch(line), []
    if batch.read:
        yield prepared(batch, rows)


def _documents(mapping: FieldMapping, encoder: DocumentEncoder | None,
               rows: list[tuple[int, Record]], batch: _Batch
               ) -> list[tuple[int, IndexDocument]]:
    """The rows as valid documents (embedded by ``encoder``), the others skipped with why."""
    embeddings: list[dict[str, Any]] = [{} for _ in rows]
    if encoder is not None and rows:
        began = time.perf_counter()
        try:
            vectors = encoder.encode([r for _, r in rows])
        except EbrError:  # a record the towers cannot read: find which, one by one
            vectors = None
        batch.encode_seconds += time.perf_counter() - began
        for i, (_, record) in enumerate(rows):
            if vectors is not None:
                embeddings[i][encoder.key] = vectors[i]
                continue
            try:
                embeddings[i][encoder.key] = encoder.encode([record])[0]
            except EbrError as e:
                embeddings[i] = {"": str(e)}  # marked bad below
    docs: list[tuple[int, IndexDocument]] = []
    for (line, record), computed in zip(rows, embeddings, strict=True):
        if "" in computed:
            batch.skipped.append(SkippedLine(line, f"cannot encode: {computed['']}"))
            continue
        doc = mapping.document(record, computed)
        if isinstance(doc, str):
            batch.skipped.append(SkippedLine(line, doc))
            continue
        docs.append((line, doc))
    return docs


def _valid(schema: Schema, docs: list[tuple[int, IndexDocument]], batch: _Batch
           ) -> list[tuple[int, PreparedDocument]]:
    """The documents the stores accept, prepared, the others skipped with why: the batch is
    checked whole, and one by one only when it fails (the common case costs one check)."""
    try:
        prepared = prepare_batch(schema, [doc for _, doc in docs])
        return [(line, p) for (line, _), p in zip(docs, prepared, strict=True)]
    except DocumentError:
        pass
    kept = []
    for line, doc in docs:
        try:
            kept += [(line, p) for p in prepare_batch(schema, [doc])]
        except DocumentError as e:
            batch.skipped.append(SkippedLine(line, f"{e.field}: {e.problem}"))
    return kept


@dataclass
class _Flight:
    """A batch handed to the store: its documents' lines by id, its answer (waits for it),
    and the checkpoint to save once it is answered (none while documents held before it are
    not written yet)."""

    lines: dict[str, int]
    answer: Callable[[], WriteResult]
    checkpoint: int | None = None


def _answered(store: Store, batch: list[PreparedDocument]) -> Callable[[], WriteResult]:
    """The batch written now (a store without :class:`WritesPending`), its answer kept."""
    result = store.add(batch)  # prepared: only written
    return lambda: result


def _judge(report: IngestReport, max_bad_fraction: float, saved: _Checkpoint | None,
           final: bool = False) -> None:
    bad = len(report.skipped) + len(report.failed)
    if (report.read >= JUDGE_AFTER or final) and bad > max_bad_fraction * report.read:
        where = f"; the checkpoint {saved.path} resumes after what was written" if saved else ""
        raise IngestAborted(f"{report.summary()}\nmore than {max_bad_fraction:.0%} of the "
                            f"records are bad: stopped (is this the right file, format and "
                            f"mapping?){where}", report)


class _Checkpoint:
    """The last line written for one source file, saved atomically after every batch."""

    def __init__(self, path: Path, source: Path) -> None:
        self.path = path
        stat = source.stat()
        self.identity = {"source": str(source.resolve()), "size": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns}

    def load(self) -> int:
        if not self.path.exists():
            return 0
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            line = int(data["line"])
            identity = {k: data[k] for k in self.identity}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreError(f"cannot read the checkpoint {self.path} ({e}); delete it to "
                             "start over") from None
        if identity != self.identity:
            raise StoreError(f"the checkpoint {self.path} is for {identity['source']} as it was "
                             "then (size or modification time differ); delete it to start over")
        return line

    def save(self, line: int) -> None:
        partial = self.path.with_name(self.path.name + ".tmp")
        try:
            partial.write_text(json.dumps({**self.identity, "line": line}), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as e:
            raise StoreError(f"cannot write the checkpoint {self.path}: {e.strerror}") from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def report_dict(report: IngestReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    data = asdict(report)
    data["written"] = report.written
    return data


__all__ = ["DocumentEncoder", "IngestAborted", "IngestReport", "ingest", "report_dict"]
