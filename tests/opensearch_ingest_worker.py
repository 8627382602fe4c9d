"""An ingest into OpenSearch killed with two batches in flight, for the resume test.  Run as a
script: ``python opensearch_ingest_worker.py <url> <index> <source> <checkpoint> <marker>``.

Every bulk request waits :data:`LINK_DELAY` before it is sent (a slow link) and holds one batch
(as a chunk holds a batch of an ingest's), so a batch is still unanswered when the next is
handed over; at the third batch handed over, the worker
writes to ``marker`` how many batches were then unanswered and kills itself (SIGKILL: no
cleanup, as a machine losing power)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

import ebr.stores.opensearch.bulk as bulk
import ebr.stores.opensearch.store as store_module
from ebr.ingest.pipeline import ingest
from ebr.stores.opensearch.store import OpenSearchStore

LINK_DELAY = 1.0
BATCH = 50
KILLED_AT = 3


def main(url: str, index: str, source: str, checkpoint: str, marker: Path) -> None:
    send = OpenSearch.bulk

    def slow_bulk(*args: Any, **kwargs: Any) -> Any:
        time.sleep(LINK_DELAY)
        return send(*args, **kwargs)

    OpenSearch.bulk = slow_bulk  # type: ignore[method-assign]
    store_module.CHUNK_DOCUMENTS = BATCH  # a bulk request holds a batch, sent once the next is handed over
    store = OpenSearchStore.open(url, index)
    add_pending = store.add_pending
    handed: list[bulk.PendingWrite] = []

    def add_then_die(documents: Any) -> bulk.PendingWrite:
        handed.append(add_pending(documents))
        if len(handed) == KILLED_AT:
            marker.write_text(str(sum(not p.done() for p in handed)))
            os.kill(os.getpid(), signal.SIGKILL)
        return handed[-1]

    store.add_pending = add_then_die  # type: ignore[method-assign]
    ingest(store, source, batch_size=BATCH, checkpoint=checkpoint, train_after=BATCH)


if __name__ == "__main__":
    main(*sys.argv[1:5], Path(sys.argv[5]))
