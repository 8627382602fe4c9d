"""Producing the next items in a background thread while the caller works on this one.

The ingest pipeline reads, encodes and checks batch N+1 while batch N is written: a write to
OpenSearch mostly waits for the cluster (the GIL is released), so the client's work hides
behind the server's instead of adding to it.

The producing thread is busy Python most of the time, so the waiting threads' next step (the
bulk stream's thread sending the next request as soon as the last one's answer is read)
waits for the GIL: up to the interpreter's switch interval, 5 ms by default, at each of the
few hand-offs between threads a request takes, while the node idles.  While items are
produced the interval is at most :data:`SWITCH_INTERVAL`, then restored (measured: a thread
pool's create-run-join beside a busy thread took 16-25 ms at 5 ms, 7 ms at 1 ms).  The
interval is the interpreter's, shared by every thread: blocks open at once (two ingests in
one process) shorten it once, and the last to end restores what it was before the first
(:func:`_short_switch_interval`).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
#: Seconds between checks of the stop flag while the queue is full.
_POLL = 0.1
#: The longest the producing thread holds the GIL while others wait (seconds).
SWITCH_INTERVAL = 0.001
_switch_lock = threading.Lock()
#: Blocks running with the interval shortened, and the interval they found before the first.
_switch_users = 0
_switch_before = 0.0


@contextlib.contextmanager
def _short_switch_interval() -> Iterator[None]:
    """The interpreter's switch interval at most :data:`SWITCH_INTERVAL` inside the block;
    restored by the last of the blocks open at once, to what it was before the first."""
    global _switch_users, _switch_before
    with _switch_lock:
        if _switch_users == 0:
            _switch_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_before, SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_before)


@contextlib.contextmanager
def prefetched(items: Iterable[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the consumer.  An
    exception raised while producing is raised to the consumer where that item would have
    come; leaving the block (at the end or by an exception) stops the thread after the item
    it is producing, and closes ``items``."""
    handoff: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put((True, item)):
                    return
            put((True, end))
        except BaseException as error:  # handed to the consumer, raised there
            put((False, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            ok, item = handoff.get()
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is end:
                return
            yield item  # type: ignore[misc]  # items are T; only the sentinel is not

    with _short_switch_interval():
        thread = threading.Thread(target=produce, name="ebr-prefetch", daemon=True)
        thread.start()
        try:
            yield consume()
        finally:
            stop.set()
            thread.join()
