"""Bulk writes as one continuous stream, batch after batch, through opensearch-py's
``parallel_bulk``.

A store's writes are batches of actions (index, update or delete one document).  One
long-lived ``helpers.parallel_bulk`` call, run by a consumer thread, reads the actions of
every batch handed to a :class:`BulkStream` from one queue: it chunks them (by count and by
bytes) and sends ``in_flight`` requests at once, so the next batch's first request goes out
as soon as the previous batch's last one is answered: the cluster never waits for the client
to learn that a batch is done and hand it the next (waiting for each batch's answer before
sending the next left a single node idle about a tenth of an ingest).  The helper answers the
actions in the order it took them; each answer goes to its batch's :class:`PendingWrite`,
ready once every one of its actions is answered.

The helper's chunker sends a partial chunk only once the chunk fills or its actions end, so
a batch waited for with fewer than a chunk of actions queued after it could wait forever: the
wait then *flushes* the stream (ends the helper call, which sends the partial chunk, and
starts a new one at the next batch).  An ingest hands over batch N+1 before waiting for N, so
with batches of a chunk or more it never flushes between batches.

The caller keeps two batches in flight at once only when they share no document id: a batch's
refused-for-now documents are queued again behind later batches, so a later batch writing the
same id could be overwritten by the earlier version.  Documents refused for now (429, or
502-504 per document: a primary moving after a node left; a whole request refused with 429)
are queued again with their attempt count, up to ``retries`` times, and the stream waits out
a doubling backoff before sending them.  Any other failure of a request (no cluster answers,
401/403, an error answer, a reply the client cannot read) ends the stream: the batches not
yet answered raise it, and so does the next batch handed over.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ebr.errors import StoreError
from ebr.stores.opensearch.client import cluster_errors
from ebr.stores.protocol import WriteResult

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

#: One action: the document id, the operation (``index``, ``update``, ``delete``) and the line
#: after the action line (JSON text, already serialised; none for a delete).
BulkAction = tuple[str, str, str | None]
#: What a bulk request reads of each item of the answer (a third of its JSON).
_ITEM_FIELDS = "items.*._id,items.*.status,items.*.result,items.*.error"
#: The most failures a BulkWriteError lists in its message (all are in ``failures``).
SHOWN_FAILURES = 5
#: Chunks the helper makes ahead of the requests in flight (``parallel_bulk``'s queue_size).
_CHUNKS_AHEAD = 2
#: Marks the end of the helper call's actions (a flush).
_END = None


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

    def __init__(self, stream: BulkStream, doing: str) -> None:
        self._stream, self._doing = stream, doing
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._unanswered = 0  # actions queued, not answered for good
        self._sealed = False  # every action queued
        self._last = -1  # the stream's position of its action queued last
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
        self._stream._wait(self)
        if self._error is not None:
            with cluster_errors(self._stream._client,
                                f"{self._doing} index {self._stream._index!r}"):
                raise self._error
        written = WriteResult(added=self._counts["created"], replaced=self._counts["updated"],
                              deleted=self._counts["deleted"])
        if self._failures:
            raise BulkWriteError(self._stream._index, self._failures, written)
        return written

    def _queued(self, position: int, again: bool = False) -> None:
        with self._lock:
            self._unanswered += not again
            self._last = position

    def _seal(self) -> None:
        with self._lock:
            self._sealed = True
            self._finish_if_answered()

    def _answered(self, outcome: str | None = None,
                  failure: tuple[str, int, str] | None = None,
                  error: BaseException | None = None) -> None:
        with self._lock:
            if outcome in self._counts:
                self._counts[outcome] += 1
            if failure is not None:
                self._failures.append(failure)
            if error is not None and self._error is None:
                self._error = error
            self._unanswered -= 1
            self._finish_if_answered()

    def _finish_if_answered(self) -> None:
        if self._sealed and self._unanswered == 0:
            self._done.set()


@dataclass(slots=True)
class _Entry:
    """One action in the stream: its batch, the attempts made, and (sent again) the time
    before which it waits."""

    action: BulkAction
    pending: PendingWrite
    attempt: int = 0
    not_before: float = 0.0


class BulkStream:
    """One ``parallel_bulk`` call over every batch handed over (see the module docstring).
    Use as a context manager: leaving it sends what is queued and waits for the answers;
    leaving it by an exception drops what is not sent yet."""

    def __init__(self, client: OpenSearch, index: str, *, in_flight: int, chunk_documents: int,
                 chunk_bytes: int, retries: int, retried_statuses: frozenset[int]) -> None:
        self._client, self._index = client, index
        self._in_flight = in_flight
        self._chunk_documents, self._chunk_bytes = chunk_documents, chunk_bytes
        self._retries, self._retried = retries, retried_statuses
        #: Actions queued but not answered for good past which a batch handed over waits:
        #: more than the helper holds (chunks in flight, made ahead, being filled), so a
        #: batch never waits for room the helper could only make by sending it.
        self._most_unanswered = chunk_documents * (in_flight + _CHUNKS_AHEAD + 2)
        self._queue: queue.Queue[_Entry | None] = queue.Queue()
        self._sent: deque[_Entry] = deque()  # taken by the helper, in its order, unanswered
        self._changed = threading.Condition()  # an action queued or answered, or a failure
        self._queued = 0  # actions queued so far (the next one's position)
        self._unanswered = 0
        self._failed: BaseException | None = None
        self._dropping = False
        self._consumer: threading.Thread | None = None

    def __enter__(self) -> BulkStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close(drop=error is not None)

    def submit(self, actions: Iterable[BulkAction], doing: str) -> PendingWrite:
        """Queue a batch of actions (consumed here, waiting while the stream holds more
        than it can send soon) and return at once; ``doing`` says what the batch does, for
        error messages."""
        self._raise_if_failed()
        pending = PendingWrite(self, doing)
        if self._consumer is None:
            self._consumer = threading.Thread(target=self._consume, name="ebr-bulk", daemon=True)
            self._consumer.start()
        for action in actions:
            with self._changed:
                while self._unanswered >= self._most_unanswered and self._failed is None:
                    self._changed.wait()
            self._raise_if_failed(pending)
            self._put(_Entry(action, pending))
        pending._seal()
        return pending

    def flush(self) -> None:
        """Send what is queued and wait for every answer: end the helper call (its chunker
        sends its partial chunk then), and call it again for actions queued again meanwhile."""
        while self._consumer is not None:
            self._queue.put(_END)
            self._consumer.join()
            self._consumer = None
            left = []
            while not self._queue.empty():
                entry = self._queue.get_nowait()
                if entry is not _END:
                    left.append(entry)
            if self._failed is not None or self._dropping:
                for entry in left:
                    self._answer(entry, error=self._failed or StoreError(
                        "the write was stopped before this batch was sent"))
            elif left:
                for entry in left:
                    self._queue.put(entry)
                self._consumer = threading.Thread(target=self._consume, name="ebr-bulk",
                                                  daemon=True)
                self._consumer.start()

    def close(self, drop: bool = False) -> None:
        """Send what is queued and wait for its answers (``drop``: drop what is not sent
        yet instead)."""
        self._dropping = self._dropping or drop
        self.flush()

    def _raise_if_failed(self, pending: PendingWrite | None = None) -> None:
        if self._failed is None:
            return
        if pending is not None:
            pending._error = self._failed
        with cluster_errors(self._client, f"write to index {self._index!r}"):
            raise self._failed

    def _put(self, entry: _Entry, again: bool = False) -> None:
        with self._changed:
            entry.pending._queued(self._queued, again)
            self._queued += 1
            self._unanswered += not again
            self._queue.put(entry)
            self._changed.notify_all()

    def _wait(self, pending: PendingWrite) -> None:
        """Wait for ``pending``'s answer; flush when its last action may sit in the
        helper's partial chunk (fewer than a chunk queued after it) or the stream failed."""
        with self._changed:
            while (not pending.done() and self._failed is None
                   and self._queued - pending._last > self._chunk_documents):
                self._changed.wait()
        if not pending.done():
            self.flush()

    def _answer(self, entry: _Entry, outcome: str | None = None,
                failure: tuple[str, int, str] | None = None,
                error: BaseException | None = None) -> None:
        entry.pending._answered(outcome, failure, error)
        with self._changed:
            self._unanswered -= 1
            self._changed.notify_all()

    def _actions(self) -> Iterator[BulkAction]:
        """The helper call's actions: what is queued, in order, until a flush or a
        failure; each recorded as taken, to be matched with its answer."""
        while (entry := self._queue.get()) is not _END:
            if self._failed is not None or self._dropping:
                self._queue.put(entry)  # answered by the flush
                return
            if (wait := entry.not_before - time.monotonic()) > 0:
                time.sleep(wait)  # backoff: the whole stream waits, the cluster asked for it
            self._sent.append(entry)
            yield entry.action

    def _consume(self) -> None:
        """The helper call: each answer, in the order the actions were taken, to its batch."""
        from opensearchpy import helpers

        try:
            # raise_on_exception=False: a request's failure comes back as its actions'
            # answers, in order, rather than raised while the helper's task thread may
            # still wait in _actions (its pool joins that thread before the error surfaces)
            for ok, item in helpers.parallel_bulk(
                    _CheckedReplies(self._client), self._actions(),
                    thread_count=self._in_flight,
                    queue_size=_CHUNKS_AHEAD, chunk_size=self._chunk_documents,
                    max_chunk_bytes=self._chunk_bytes, expand_action_callback=_expand,
                    raise_on_error=False, raise_on_exception=False, index=self._index,
                    filter_path=_ITEM_FIELDS):
                self._take(self._sent.popleft(), ok, item)
        except BaseException as error:  # the stream's end: raised by result() and submit()
            self._fail(error)
        while self._sent:
            self._answer(self._sent.popleft(), error=self._failed or StoreError(
                "the bulk helper ended without answering this batch"))

    def _take(self, entry: _Entry, ok: bool, item: dict[str, Any]) -> None:
        """One action's answer: counted, sent again (refused for now), reported (refused),
        or the stream's end (its request failed)."""
        (op, answer), = item.items()
        status = answer.get("status")
        error = answer.get("exception")  # the whole request failed
        if ok:
            self._answer(entry, outcome=answer.get("result"))
        elif op == "delete" and status == 404 and error is None:
            self._answer(entry)  # not in the index: nothing to delete
        elif entry.attempt < self._retries and (status == 429 if error is not None
                                                else status in self._retried):
            entry.not_before = time.monotonic() + min(2.0 ** entry.attempt, 30.0)
            entry.attempt += 1
            self._put(entry, again=True)
        elif error is not None:
            self._fail(error)
            self._answer(entry, error=error)
        else:
            self._answer(entry, failure=(str(answer.get("_id", entry.action[0])), int(status or 0),
                                         _reason(answer.get("error"))))

    def _fail(self, error: BaseException) -> None:
        with self._changed:
            if self._failed is None:
                self._failed = error
            self._changed.notify_all()


class _CheckedReplies:
    """The client as ``parallel_bulk`` sees it, its bulk replies checked: a request failing
    other than by a ``TransportError`` (a reply it cannot read, or one without ``items``)
    fails as one, so the helper answers its actions with the error as for any failed
    request.  Raised as it is, it would surface only after the helper's pool joined its task
    thread, which waits in :meth:`BulkStream._actions` for actions that may never come."""

    def __init__(self, client: OpenSearch) -> None:
        self._client = client
        self.transport = client.transport  # the helper's chunker reads its serializer

    def bulk(self, *args: Any, **kwargs: Any) -> Any:
        from opensearchpy.exceptions import TransportError

        try:
            reply = self._client.bulk(*args, **kwargs)
        except TransportError:
            raise
        except Exception as error:
            raise TransportError("N/A", f"the bulk reply could not be read ({error})",
                                 error) from error
        if not isinstance(reply, dict) or not isinstance(reply.get("items"), list):
            raise TransportError("N/A", "the bulk reply holds no items", reply)
        return reply


def _expand(action: BulkAction) -> tuple[dict[str, dict[str, str]], str | None]:
    """The helper's two lines of an action (its ``expand_action_callback``): the action
    line's few keys, and the line after it as it is (JSON text already: passed through)."""
    doc_id, op, data = action
    return {op: {"_id": doc_id}}, data


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', '')}: {error.get('reason', '')}"
    return str(error)
