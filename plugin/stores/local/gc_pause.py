"""Python's cyclic garbage collector paused around a bulk write.

A batch of ten thousand documents allocates some hundred thousand containers (rows,
dictionaries, prepared documents) that live until the batch is written and hold no cycles;
the collector, triggered by the allocations, scans them again and again (a fifth of the
ingest's CPU time, measured at 200,000 documents).  Reference counting still frees all of
them; a cycle made meanwhile waits for the next collection.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The collector off inside the block, back on after it if it was on before (nested
    or concurrent blocks leave it on once the one that turned it off ends)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
