"""A writer for the vector file tests: opens a local index and adds a batch, stopping inside
the write once the batch's vectors are (``half``: half) appended to the vector file, before
the commit, to print ``paused`` and wait to be killed; ``upgrade``: opens an index of format
2, stopping once the upgrade has appended its first vectors.
``python local_append_worker.py <index dir> whole|half|upgrade``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from local_faults import documents

from ebr.stores.local import LocalStore, vector_file


def main(path: Path, part: str) -> None:
    append = vector_file.append

    def pausing(file: Path, at: int, vectors: Any) -> None:
        append(file, at, vectors if part == "whole" else vectors[: len(vectors) // 2])
        print("paused", flush=True)
        time.sleep(600)

    if part == "upgrade":  # the open upgrades
        vector_file.append = pausing  # type: ignore[assignment]
    store = LocalStore.open(path)
    vector_file.append = pausing  # type: ignore[assignment]
    store.add(documents(100, start=300, seed=7))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
