"""The ingest pipeline, one for both stores: records -> documents -> batches -> a store.

For each batch of records read from a file (:func:`~ebr.ingest.records.stream_records`):

1. each record becomes a document through the field mapping (:mod:`.field_mapping`), its
   embedding computed by the document encoder if one is given; a record that cannot become a
   valid document (unreadable line, missing id, a bad vector...) is skipped with its line
   number and reason, never dropped silently;
2. the batch is written (``store.add``); documents the store refuses (an OpenSearch bulk
   failure) are reported each with their line;
3. a checkpoint (the last line written) is saved, so an interrupted ingest resumes after it;
   ids make a replayed batch harmless (writes replace);
4. a key without a coarse quantizer gets one trained on what has been written once
   ``train_after`` documents hold it (and at the end, if there are at least ``nlist``), and
   every written document is re-assigned: the cluster terms are never missing.

More bad records than ``max_bad_fraction`` of those read (past the first 100) aborts with
:class:`IngestAborted`, the checkpoint kept, so a wrong file or mapping stops early.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ebr.errors import EbrError, StoreError
from ebr.ingest.field_mapping import FieldMapping
from ebr.ingest.lines import QUOTED_SKIPS, SkippedLine
from ebr.ingest.records import Record, stream_records
from ebr.quantization.kmeans import TrainingReport
from ebr.stores.documents import DocumentError, prepare_batch
from ebr.stores.opensearch.store import BulkWriteError
from ebr.stores.protocol import IndexDocument, Store

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
    def train_quantizers(self, keys: Iterable[str] | None = None, *,
                         sample_size: int | None = None, nlist: int | None = None,
                         seed: int = 0, niter: int = 20) -> dict[str, TrainingReport]: ...


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
    started = time.perf_counter()
    pending: list[tuple[int, Record]] = []
    last_line = report.resumed_after
    flushed = 0  # lines consumed as of the last batch written

    def flush() -> None:
        nonlocal pending, flushed
        if pending:
            _write_batch(store, mapping, encoder, pending, report)
        _train_when_due(store, report, train_after, final=False)
        if saved is not None:
            saved.save(last_line)
        if progress is not None:
            progress(report.read - flushed)
        flushed = report.read
        pending = []

    for line, record in stream_records(source, format=format, start=report.resumed_after):
        report.read += 1
        last_line = line
        if isinstance(record, str):
            report.skipped.append(SkippedLine(line, record))
        else:
            pending.append((line, record))
        if report.read - flushed >= batch_size:
            flush()
            _judge(report, max_bad_fraction, saved)
    flush()
    _train_when_due(store, report, train_after, final=True)
    _judge(report, max_bad_fraction, saved, final=True)
    report.seconds = time.perf_counter() - started
    if saved is not None:
        saved.remove()
    return report


def _write_batch(store: TrainableStore, mapping: FieldMapping, encoder: DocumentEncoder | None,
                 rows: list[tuple[int, Record]], report: IngestReport) -> None:
    embeddings: list[dict[str, Any]] = [{} for _ in rows]
    if encoder is not None:
        began = time.perf_counter()
        try:
            vectors = encoder.encode([r for _, r in rows])
        except EbrError:  # a record the towers cannot read: find which, one by one
            vectors = None
        report.encode_seconds += time.perf_counter() - began
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
            report.skipped.append(SkippedLine(line, f"cannot encode: {computed['']}"))
            continue
        doc = mapping.document(record, computed)
        if isinstance(doc, str):
            report.skipped.append(SkippedLine(line, doc))
            continue
        try:
            prepare_batch(store.schema, [doc])  # one at a time: a bad record is skipped alone
        except DocumentError as e:
            report.skipped.append(SkippedLine(line, f"{e.field}: {e.problem}"))
            continue
        docs.append((line, doc))
    # A later line wins over an earlier one of the same id in this batch (as across batches).
    by_id = {doc.id: (line, doc) for line, doc in docs}
    for line, doc in docs:
        if by_id[doc.id][0] != line:
            report.skipped.append(SkippedLine(line, f"id {doc.id!r} again at line "
                                                    f"{by_id[doc.id][0]}: the later one is kept"))
    if not by_id:
        return
    try:
        result = store.add([doc for _, doc in by_id.values()])
    except BulkWriteError as e:
        result = e.written
        lines = {doc_id: line for doc_id, (line, _) in by_id.items()}
        report.failed += [(lines.get(doc_id, 0), doc_id, f"{status} {reason}")
                          for doc_id, status, reason in e.failures]
    report.added += result.added
    report.replaced += result.replaced


def _train_when_due(store: TrainableStore, report: IngestReport, train_after: int | None,
                    final: bool) -> None:
    untrained = [k for k in store.schema.keys if k.name not in store.quantizers]
    if not untrained:
        return
    counts = store.stats().embeddings
    for key in untrained:
        due = train_after if train_after is not None else max(40 * key.quantizer.nlist, 1000)
        have = counts.get(key.name, 0)
        if have >= due or (final and have >= key.quantizer.nlist):
            report.trained.update(store.train_quantizers([key.name]))


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
