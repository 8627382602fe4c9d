"""Bulk writes as one continuous stream of ``_bulk`` requests, batch after batch.

A store's writes are batches of actions (index, update or delete one document).  Each batch
handed to a :class:`BulkStream` is cut into requests (by count and by bytes) queued behind the
previous batch's, and ``in_flight`` threads send them as they come: the next batch's first
request goes out as soon as the last one's answer is read, so the cluster never waits for the
client to learn that a batch is done and hand it the next one (waiting for each batch's answer
before sending the next left a single node idle about a tenth of an ingest).  The answer of
each batch is its :class:`PendingWrite`, ready once every one of its actions is answered.

opensearch-py's bulk helpers cannot do this: a helper call ends with its batch (its threads
started and joined each time), and its chunker waits to fill a chunk across what it is given,
so one helper call over every batch could not tell a batch's end (nor answer it) without the
next.  The request itself is the client's (:func:`~ebr.stores.opensearch.client.send`, the
client's retries of dropped connections and 502/503/504 included).

The caller keeps two batches in flight at once only when they share no document id: a batch's
refused-for-now documents are sent again after it, so a later batch writing the same id could
be overwritten by the earlier version.  Documents refused for now (429, or 502-504 per
document: a primary moving after a node left) are sent again with doubling backoff by the
thread that got the answer, up to ``retries`` times; a request refused whole with 429 is
retried so too.  Any other failure of a request (no cluster answers, 401/403, an error
answer) ends the stream: the batches not yet answered raise it, and so does the next batch
handed over.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from ebr.errors import StoreError
from ebr.stores.opensearch.client import cluster_errors, send
from ebr.stores.protocol import WriteResult

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

#: One action: the document id, the operation (``index``, ``update``, ``delete``) and the line
#: after the action line (JSON text, already serialised; none for a delete).
BulkAction = tuple[str, str, bytes | None]
#: What a bulk request reads of each item of the answer (a third of its JSON).
_ITEM_FIELDS = "items.*._id,items.*.status,items.*.result,items.*.error"
#: The most failures a BulkWriteError lists in its message (all are in ``failures``).
SHOWN_FAILURES = 5
#: Seconds between checks of the stream's end while its queue is full.
_POLL = 0.1


class BulkWriteError(StoreError):
    """Documents the cluster refused; the rest of the batch was written.  ``failures`` holds
    ``(document id, status, reason)`` for each, ``written`` what was written."""

    def __init__(self, index: str, failures: list[tuple[str, int, str]],
                 written: WriteResult) -> None:
        self.failures = failures
        self.written = written
        shown = "; ".join(f"{i!r}: {status} {reason}" for i, status, reason in
                          failures[:SHOWN_FAILURES])
        more = f" (and {len(failures) - SHOWN_FAILURES} more)" if len(failures) > SHOWN_FAILURES else ""
        super().__init__(f"{len(failures)} documents of the batch were refused by index {index!r}"
                         f", the others written ({written.added} added, {written.replaced} "
                         f"replaced, {written.deleted} deleted): {shown}{more}")


class PendingWrite:
    """One batch handed to a :class:`BulkStream`: :meth:`result` waits until every action
    is answered."""

    def __init__(self, client: OpenSearch, index: str, doing: str) -> None:
        self._client, self._index, self._doing = client, index, doing
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._unanswered = 0  # requests queued or in flight
        self._sealed = False  # every action queued
        self._counts = {"created": 0, "updated": 0, "deleted": 0}
        self._failures: list[tuple[str, int, str]] = []
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._done.is_set()

    @property
    def wrote(self) -> bool:
        """Answered, and something was written (documents refused or not), no request
        having failed."""
        return self.done() and self._error is None and any(self._counts.values())

    def result(self) -> WriteResult:
        """What the batch wrote, once answered; :class:`BulkWriteError` when documents were
        refused, a :class:`StoreError` saying what failed when a request did."""
        self._done.wait()
        if self._error is not None:
            with cluster_errors(self._client, f"{self._doing} index {self._index!r}"):
                raise self._error
        written = WriteResult(added=self._counts["created"], replaced=self._counts["updated"],
                              deleted=self._counts["deleted"])
        if self._failures:
            raise BulkWriteError(self._index, self._failures, written)
        return written

    def _queued(self) -> None:
        with self._lock:
            self._unanswered += 1

    def _seal(self) -> None:
        with self._lock:
            self._sealed = True
            self._finish_if_answered()

    def _answered(self, counts: dict[str, int], failures: list[tuple[str, int, str]],
                  error: BaseException | None = None) -> None:
        with self._lock:
            for outcome, n in counts.items():
                self._counts[outcome] += n
            self._failures += failures
            if error is not None and self._error is None:
                self._error = error
            self._unanswered -= 1
            self._finish_if_answered()

    def _finish_if_answered(self) -> None:
        if self._sealed and self._unanswered == 0:
            self._done.set()


@dataclass
class _Request:
    """One bulk request's actions, for one batch."""

    pending: PendingWrite
    actions: list[BulkAction] = field(default_factory=list)
    size: int = 0


class BulkStream:
    """Bulk requests sent by ``in_flight`` threads, in the order batches hand them over (see
    the module docstring).  Use as a context manager: leaving it sends what is queued and
    stops the threads; leaving it by an exception drops what is not sent yet."""

    def __init__(self, client: OpenSearch, index: str, *, in_flight: int, chunk_documents: int,
                 chunk_bytes: int, retries: int, retried_statuses: frozenset[int]) -> None:
        self._client, self._index = client, index
        self._chunk_documents, self._chunk_bytes = chunk_documents, chunk_bytes
        self._retries, self._retried = retries, retried_statuses
        self._path = f"/{quote(index, safe='')}/_bulk"
        # Bounded: a batch is cut into requests as fast as they are sent, not all at once
        self._queue: queue.Queue[_Request | None] = queue.Queue(maxsize=in_flight + 1)
        self._failed: BaseException | None = None
        self._dropping = False
        self._threads = [threading.Thread(target=self._send_all, name="ebr-bulk", daemon=True)
                         for _ in range(in_flight)]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> BulkStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close(drop=error is not None)

    def submit(self, actions: Iterable[BulkAction], doing: str) -> PendingWrite:
        """Queue a batch of actions (consumed here, a request at a time as the queue has
        room) and return at once; ``doing`` says what the batch does, for error messages."""
        pending = PendingWrite(self._client, self._index, doing)
        request = _Request(pending)
        for action in actions:
            request.actions.append(action)
            request.size += len(action[0]) + len(action[2] or b"") + 32
            if len(request.actions) >= self._chunk_documents or request.size >= self._chunk_bytes:
                self._put(request)
                request = _Request(pending)
        if request.actions:
            self._put(request)
        pending._seal()
        return pending

    def close(self, drop: bool = False) -> None:
        """Send what is queued (``drop``: drop it instead), then stop the threads."""
        self._dropping = self._dropping or drop
        for _ in self._threads:
            self._queue.put(None)  # the threads take what is queued, so this finds room
        for thread in self._threads:
            thread.join()

    def _put(self, request: _Request) -> None:
        request.pending._queued()
        while True:
            if self._failed is not None:
                request.pending._answered({}, [], self._failed)
                with cluster_errors(self._client, f"write to index {self._index!r}"):
                    raise self._failed
            try:
                self._queue.put(request, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _send_all(self) -> None:
        while (request := self._queue.get()) is not None:
            if self._failed is not None or self._dropping:
                request.pending._answered({}, [], self._failed or StoreError(
                    "the write was stopped before this batch was sent"))
                continue
            try:
                counts, failures = self._send(request.actions)
            except BaseException as error:  # the stream's end: raised by result() and submit()
                self._failed = error
                request.pending._answered({}, [], error)
                continue
            request.pending._answered(counts, failures)

    def _send(self, actions: list[BulkAction]) -> tuple[dict[str, int], list[tuple[str, int, str]]]:
        """Send one request's actions, and again those refused for now, with backoff."""
        from opensearchpy.exceptions import TransportError

        counts = {"created": 0, "updated": 0, "deleted": 0}
        failures: list[tuple[str, int, str]] = []
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                items = send(self._client, "POST", self._path, {"filter_path": _ITEM_FIELDS},
                             _body(actions))["items"]
            except TransportError as err:
                if err.status_code != 429 or last:
                    raise
                items = [{op: {"_id": i, "status": 429, "error": str(err)}}
                         for i, op, _ in actions]  # refused whole: every action again
            again: list[BulkAction] = []
            for action, item in zip(actions, items, strict=True):
                (op, answer), = item.items()
                status = int(answer.get("status", 0))
                if 200 <= status < 300:
                    outcome = answer.get("result")
                    if outcome in counts:
                        counts[outcome] += 1
                elif op == "delete" and status == 404:
                    continue  # not in the index: nothing to delete
                elif status in self._retried and not last:
                    again.append(action)
                else:
                    failures.append((str(answer.get("_id", action[0])), status,
                                     _reason(answer.get("error"))))
            if not again:
                break
            time.sleep(min(2.0 ** attempt, 30.0))
            actions = again
        return counts, failures


def _body(actions: list[BulkAction]) -> bytes:
    """The NDJSON body of a bulk request: each action line, and the line after it."""
    parts: list[bytes] = []
    for doc_id, op, data in actions:
        parts.append(b'{"%s":{"_id":%s}}\n' % (op.encode(), orjson.dumps(doc_id)))
        if data is not None:
            parts += (data, b"\n")
    return b"".join(parts)


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', '')}: {error.get('reason', '')}"
    return str(error)
