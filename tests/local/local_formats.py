"""Older formats of a local index, rewritten from a closed current one as those ebr
releases wrote them (for the upgrade tests)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ebr.mappings import Schema
from ebr.stores.local.database import DB_FILE, format_2_embedding_checksum
from ebr.stores.local.snapshot_file import SNAPSHOT_FILE


def as_format_2(path: Path) -> None:
    """Each vector back in its embedding row (in id order, as format 2 stored it), no vector
    files; the snapshot file goes, so the upgraded open reads every row."""
    conn = sqlite3.connect(path / DB_FILE)
    try:
        (text,) = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        sizes = {k.name: 4 * k.dimension for k in Schema.from_json(text).keys}
        files = {key: (path / name).read_bytes() if rows else b""
                 for key, name, rows in conn.execute("SELECT key, file, rows FROM vector_files")}
        conn.execute("CREATE TABLE old (id TEXT NOT NULL, key TEXT NOT NULL, vector BLOB "
                     "NOT NULL, checksum INTEGER, PRIMARY KEY (id, key)) WITHOUT ROWID")
        rows = []
        for i, k, slot in conn.execute("SELECT id, key, slot FROM embeddings").fetchall():
            blob = files[k][slot * sizes[k]:(slot + 1) * sizes[k]]
            rows.append((i, k, blob, format_2_embedding_checksum(i, k, blob)))
        conn.executemany("INSERT INTO old VALUES (?, ?, ?, ?)", rows)
        conn.execute("DROP TABLE embeddings")
        conn.execute("ALTER TABLE old RENAME TO embeddings")
        conn.execute("DROP TABLE vector_files")
        conn.execute("UPDATE meta SET value = '2' WHERE name = 'format'")
        conn.commit()
    finally:
        conn.close()
    for vectors in path.glob("index.vectors.*"):
        vectors.unlink()
    (path / SNAPSHOT_FILE).unlink(missing_ok=True)


def as_format_1(path: Path, *, before_codes: bool = False) -> None:
    """Format 1: each embedding row holding its vector, cluster and code under its checksum,
    no ``assignments``; ``before_codes``: with the first release's tables (no code or PQ
    columns)."""
    as_format_2(path)
    conn = sqlite3.connect(path / DB_FILE)
    try:
        conn.execute("ALTER TABLE embeddings ADD COLUMN cluster INTEGER")
        conn.execute("ALTER TABLE embeddings ADD COLUMN code BLOB")
        rows = conn.execute("SELECT id, key, vector, a.cluster, a.code FROM embeddings "
                            "LEFT JOIN assignments AS a USING (id, key)").fetchall()
        conn.executemany(
            "UPDATE embeddings SET cluster = ?, code = ?, checksum = ? WHERE id = ? AND key = ?",
            [(c, code, format_2_embedding_checksum(i, k, v, c, code), i, k)
             for i, k, v, c, code in rows])
        conn.execute("DROP TABLE assignments")
        conn.execute("UPDATE meta SET value = '1' WHERE name = 'format'")
        if before_codes:
            for table, column in (("embeddings", "code"), ("quantizers", "pq_m"),
                                  ("quantizers", "codebooks"), ("quantizers", "rotation")):
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.commit()
    finally:
        conn.close()

