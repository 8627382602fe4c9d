"""``ebr.ingest.prefetch.prefetched``: items in order from a thread, an error raised where its
item would have come, and leaving early stops the thread and closes the source."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from ebr.ingest.prefetch import SWITCH_INTERVAL, prefetched


def test_items_come_in_order_and_are_produced_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            produced.append(i)
            yield i

    got = []
    with prefetched(items()) as ahead:
        for item in ahead:
            deadline = time.monotonic() + 5
            while len(produced) < min(item + 2, 5) and time.monotonic() < deadline:
                time.sleep(0.01)  # the next item is made while this one is worked on
            # at most one waits in the queue and one is being handed over
            assert min(item + 2, 5) <= len(produced) <= item + 3
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_an_error_is_raised_where_its_item_would_have_come() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("line 3 is broken")

    got = []
    with pytest.raises(ValueError, match="line 3 is broken"), prefetched(items()) as ahead:
        for item in ahead:
            got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt), prefetched(endless()) as ahead:
        for item in ahead:
            if item == 3:
                raise KeyboardInterrupt
    assert closed.is_set()
    assert threading.active_count() == before


def test_the_switch_interval_is_short_while_producing_and_restored_after() -> None:
    """The waiting threads get the GIL within SWITCH_INTERVAL of asking while the producer
    runs; the interpreter's own interval is back once the block is left, error or not."""
    before = sys.getswitchinterval()
    seen = []

    def items() -> Iterator[int]:
        for i in range(3):
            seen.append(sys.getswitchinterval())
            yield i

    with pytest.raises(RuntimeError, match="stop"), prefetched(items()) as ahead:
        for _ in ahead:
            assert sys.getswitchinterval() <= SWITCH_INTERVAL
        raise RuntimeError("stop")
    assert seen and max(seen) <= SWITCH_INTERVAL < before
    assert sys.getswitchinterval() == before


def test_blocks_open_at_once_restore_the_interval_found_before_the_first() -> None:
    """Two ingests in one process (threads): the switch interval is the interpreter's, so the
    block that ends first must not restore it under the other, nor the last leave it short."""
    before = sys.getswitchinterval()
    first, second = prefetched(iter(range(3))), prefetched(iter(range(3)))
    first.__enter__()
    second.__enter__()  # found it short already
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() <= SWITCH_INTERVAL  # the second still produces
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
