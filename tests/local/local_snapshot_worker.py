"""A writer for the snapshot test: opens a local index, commits a batch, then closes it,
pausing inside the snapshot file's save (``section``: after a few sections are written;
``rename``: with the whole temporary file synced, before it is renamed into place) to print
``paused`` and wait to be killed.  ``python local_snapshot_worker.py <index dir> <pause>``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from local_faults import documents

from ebr.stores.local import LocalStore, snapshot_file


def pause() -> None:
    print("paused", flush=True)
    time.sleep(600)


def main(path: Path, where: str) -> None:
    store = LocalStore.open(path)
    store.add(documents(20, start=300, seed=11))
    if where == "section":
        section = snapshot_file._Writer.section
        calls = 0

        def pausing(self: Any, data: Any) -> list[int]:
            nonlocal calls
            calls += 1
            if calls == 6:
                self.f.flush()
                pause()
            return section(self, data)

        snapshot_file._Writer.section = pausing  # type: ignore[method-assign]
    else:
        replace = os.replace

        def pausing_replace(source: Any, target: Any) -> None:
            pause()
            replace(source, target)

        snapshot_file.os.replace = pausing_replace  # type: ignore[assignment]
    store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
