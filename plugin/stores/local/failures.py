"""Operating-system and SQLite failures of a local index, as the package's errors.

Every call into SQLite or the file system that a user's disk, permissions or files can make
fail goes through :func:`failures`: what was being done, on which index, what went wrong and
what to do about it, in one :class:`~ebr.errors.StoreError` (or
:class:`~ebr.errors.IndexDamagedError` for a damaged file).  Anything else escaping is a bug.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ebr.errors import IndexDamagedError, StoreError

#: What a damaged index needs, said once for every message about damage.
REBUILD = ("rebuild it from its source records (ebr ingest into a new index) or restore a "
           "backup; `ebr index check PATH` lists what is damaged")

_FULL = {sqlite3.SQLITE_FULL}
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_FORMAT}
_DENIED = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN,
           sqlite3.SQLITE_AUTH}
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def store_error(error: sqlite3.Error | OSError, where: Path, doing: str) -> StoreError:
    """``error``, raised while ``doing`` (e.g. "writing to") the index in ``where``, as the
    error a user reads."""
    prefix = f"{doing} the index in {where} failed"
    if isinstance(error, OSError):
        code = error.errno
        detail = error.strerror or str(error)
        if code in (errno.ENOSPC, errno.EDQUOT):
            return StoreError(f"{prefix}: the disk is full ({detail}); free space and "
                              "retry (the interrupted write left nothing behind)")
        if code in (errno.EACCES, errno.EPERM, errno.EROFS):
            return StoreError(f"{prefix}: {detail} ({error.filename or where}); give this "
                              "user write access, or open the index read-only to query it")
        return StoreError(f"{prefix}: {detail} ({error.filename or where}); check the disk "
                          "and retry")
    primary = (error.sqlite_errorcode & 0xFF if isinstance(error, sqlite3.Error)
               and getattr(error, "sqlite_errorcode", None) is not None else None)
    if primary in _FULL:
        return StoreError(f"{prefix}: the disk (or the database's size limit) is full; free "
                          "space and retry (the interrupted write left nothing behind)")
    if primary in _DENIED:
        return StoreError(f"{prefix}: {error}; the directory or its files are read-only or "
                          "not this user's: fix the permissions, or open the index read-only "
                          "to query it")
    if primary in _BUSY:
        return StoreError(f"{prefix}: another process holds the database locked ({error}); "
                          "retry when it is done")
    if primary in _DAMAGED or isinstance(error, sqlite3.DatabaseError) and primary is None:
        # no code: a value SQLite stored but Python cannot read (bad UTF-8, a missing table)
        return IndexDamagedError(f"{prefix}: the database is damaged ({error}); {REBUILD}")
    return StoreError(f"{prefix}: {error}; check the disk and retry")


@contextlib.contextmanager
def failures(where: Path, doing: str) -> Iterator[None]:
    """Raise any SQLite or OS failure inside the block as :func:`store_error`."""
    try:
        yield
    except (sqlite3.Error, OSError) as e:
        raise store_error(e, where, doing) from None
