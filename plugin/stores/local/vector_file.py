"""The vector files (format 3): each embedding key's vectors, appended, beside the database.

``index.vectors.<n>`` holds float32 rows of its key's dimension, one per *slot*, nothing
else; an ``embeddings`` row of the database names its vector's slot, and its checksum covers
the vector's bytes.  How many rows a file holds for good (its committed length) is a row of
the database's ``vector_files``, written in the same SQLite transaction as the embedding
rows pointing into it (:mod:`ebr.stores.local.database`).  A writer appends a batch's
vectors and syncs them *before* that transaction commits, so:

- bytes past the committed length are a torn tail (a write killed or rolled back before its
  commit): ignored by readers, cut off by the next append, which writes where it began;
- a file shorter than its committed length has lost committed vectors: the index is
  damaged, and so is a committed vector whose bytes no longer match its row's checksum
  (found wherever a vector is read from the file: a rebuilding open, a fetch, the check).

Deleted and replaced documents leave dead slots that no row points to: the files only grow
(compacting them, rewriting the live slots and the rows' slot numbers, is not done yet).
Vectors here are out of SQLite's rows because a 512-byte blob makes a row insert 2.5 times
slower and every byte of it is written twice more (log, then checkpoint).
"""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: ``index.vectors.<n>``: the file of the n-th key of ``vector_files`` (numbered, not named
#: after the key, so that keys differing only in case stay apart on any file system).
PREFIX = "index.vectors."


def file_name(number: int) -> str:
    return f"{PREFIX}{number}"


def append(path: Path, at: int, vectors: npt.NDArray[np.float32]) -> None:
    """Write ``vectors`` at byte ``at`` (the committed length: a torn tail beyond it is cut
    off first) and sync them; the caller commits the new length afterwards.  Raises
    :class:`Short` if the file holds fewer than ``at`` bytes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < at:
            raise Short(path.name)
        os.ftruncate(fd, at)
        data = np.ascontiguousarray(vectors, np.float32).data.cast("B")
        while data:
            written = os.pwrite(fd, data, at)
            data, at = data[written:], at + written
        os.fsync(fd)
    finally:
        os.close(fd)


class Short(Exception):
    """A vector file holds fewer bytes than its committed length (or is missing)."""


class Maps:
    """Read-only memory maps of an index's vector files, shared by its threads: a map is
    made again when a file grew past it (maps still in use by other readers stay valid
    until dropped)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._maps: dict[str, mmap.mmap] = {}
        self._lock = threading.Lock()

    def covering(self, name: str, length: int) -> mmap.mmap | bytes:
        """The file ``name``, mapped over at least its first ``length`` bytes; raises
        :class:`Short` if it is missing or shorter."""
        if length == 0:
            return b""
        with self._lock:
            found = self._maps.get(name)
            if found is not None and len(found) >= length:
                return found
            try:
                fd = os.open(self.directory / name, os.O_RDONLY)
            except FileNotFoundError:
                raise Short(name) from None
            try:
                if os.fstat(fd).st_size < length:
                    raise Short(name)
                found = self._maps[name] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            finally:
                os.close(fd)
            return found

    def close(self) -> None:
        """Drop the maps (each is unmapped once no reader holds it)."""
        with self._lock:
            self._maps.clear()
