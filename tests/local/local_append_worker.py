"""A writer for the vector file test: opens a local index and adds a batch, stopping inside
the write once the batch's vectors are (``half``: half) appended to the vector file, before
the commit, to print ``paused`` and wait to be killed.
``python local_append_worker.py <index dir> whole|half``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from local_faults import documents

from ebr.stores.local import LocalStore, vector_file


def main(path: Path, part: str) -> None:
    store = LocalStore.open(path)
    append = vector_file.append

    def pausing(file: Path, at: int, vectors: Any) -> None:
        append(file, at, vectors if part == "whole" else vectors[: len(vectors) // 2])
        print("paused", flush=True)
        time.sleep(600)

    vector_file.append = pausing  # type: ignore[assignment]
    store.add(documents(100, start=300, seed=7))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
