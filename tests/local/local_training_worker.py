"""A writer for the training test: opens a local index and retrains its quantizers, pausing
inside the write transaction once half the new ``assignments`` rows are inserted, to print
``paused`` and wait to be killed.  ``python local_training_worker.py <index dir>``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ebr.stores.local import LocalStore, database


def main(path: Path) -> None:
    store = LocalStore.open(path)
    insert = database._insert_assignments

    def pausing(conn: Any, rows: Iterable[Any]) -> None:
        rows = list(rows)
        insert(conn, rows[: len(rows) // 2])
        print("paused", flush=True)
        time.sleep(600)

    database._insert_assignments = pausing  # type: ignore[assignment]
    store.train_quantizers(seed=4)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
