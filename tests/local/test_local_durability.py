"""Durability: a writer process killed with SIGKILL in the middle of a long ingest leaves an
index that opens, holds every batch it reported committed, whole, and no partial batch.

The worker (``local_ingest_worker.py``) reports each commit on stdout.  Each round kills it
a different fraction of a batch's time after a report, so the kill falls at different points
of the next batch: checking, writing the transaction, building the snapshot."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from local_ingest_worker import PER_BATCH, batch

from ebr.stores.local import LocalStore
from ebr.stores.protocol import search_text

WORKER = Path(__file__).with_name("local_ingest_worker.py")


def _ingest_until_killed(path: Path, first: int, lines: int, fraction: float) -> int:
    """Run the worker from batch ``first``; once it has reported ``lines`` commits, wait
    ``fraction`` of the time a batch takes and SIGKILL it.  The last batch it reported."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(path), str(first)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    reported: list[tuple[int, float]] = []
    deadline = time.monotonic() + 60
    try:
        while len(reported) < lines:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"the worker stopped: {proc.stderr.read() if proc.stderr else ''}")
            reported.append((int(line), time.monotonic()))
            assert time.monotonic() < deadline, "the worker is too slow"
        per_batch = (reported[-1][1] - reported[1][1]) / (len(reported) - 2)
        time.sleep(fraction * per_batch)
        os.kill(proc.pid, signal.SIGKILL)
        # on a loaded machine the worker may have reported more commits than were read
        reported += [(int(line), 0.0) for line in proc.stdout.read().split()]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):  # closed here, not by the garbage collector
            stream.close()
    assert proc.returncode == -signal.SIGKILL
    return reported[-1][0]


def _check(path: Path, reported: int) -> int:
    """Every batch up to the one the head document names is whole, none after it; returns
    that last whole batch."""
    raw = sqlite3.connect(path / "index.sqlite")
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        raw.close()  # (a connection's ``with`` commits, it does not close)
    with LocalStore.open(path) as store:
        (head,) = store.get_documents(["head"])
        assert head is not None
        last = int(head.source["batch"])
        # the kill may land after a commit and before its line was printed
        assert reported <= last <= reported + 1
        for b in range(last + 2):
            docs = batch(b)[:PER_BATCH]
            found = search_text(store, f"(term batch:{b})", {}, size=PER_BATCH + 1).ids
            if b > last:
                assert found == [], f"batch {b} is partly there"
                continue
            assert sorted(found) == sorted(d.id for d in docs), f"batch {b} is not whole"
            vectors = store.get_vectors([d.id for d in docs], "e")
            for d in docs:
                assert np.array_equal(vectors[d.id], d.embeddings["e"])
        assert store.stats().documents == (last + 1) * PER_BATCH + 1
        # trained after the second batch: every vector has its cluster term
        assert store.stats().quantizers == {"e": 4}
        first = batch(last)[0]
        q = {"e": np.asarray(first.embeddings["e"], np.float32)}
        assert first.id in search_text(store, "(nn e :radius 0.01 :nprobe 1)", q).ids
    return last


def test_a_killed_writer_leaves_every_committed_batch_and_no_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "index"
    last = -1
    for fraction in (0.2, 0.5, 0.8):  # each round a new process takes up the same index
        reported = _ingest_until_killed(path, last + 1, lines=4, fraction=fraction)
        last = _check(path, reported)
