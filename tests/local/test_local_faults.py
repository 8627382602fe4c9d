"""The local store under faults: interrupts at every statement boundary of a write, full
disks, read-only media, damaged files, other programs' databases and a second writer.

"Memory = database" is checked through the public API: every term, cluster term and an
exact all-vectors search, the stats and the centroids, as the open store answers them and
as a fresh read-only open of the same directory does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from local_corpus import SYNTHETIC_SCHEMA, query_vector, synthetic
from local_faults import (
    INTERRUPTED,
    SCHEMA,
    Interrupting,
    corruptions,
    doc_id,
    documents,
    filled,
    served,
    stored_value,
    two_writers,
    view,
)

from ebr import PlanError, QuerySyntaxError, compile_search, parse
from ebr.cli.main import cli
from ebr.errors import IndexDamagedError, StoreError
from ebr.stores.documents import DocumentError
from ebr.stores.local import LocalStore
from ebr.stores.local.database import DB_FILE
from ebr.stores.local.snapshot_file import SNAPSHOT_FILE, TEMPORARY_FILE
from ebr.stores.protocol import IndexDocument, search_text


def on_disk(path: Path) -> Any:
    """What a fresh read-only open of ``path`` serves to searches."""
    return served(path)[0]


@pytest.mark.parametrize("operation", INTERRUPTED)
def test_an_interrupt_at_any_statement_boundary_leaves_memory_equal_to_the_database(
        tmp_path: Path, operation: str) -> None:
    trained, run = INTERRUPTED[operation]
    with filled(tmp_path / "reference", trained=trained) as store:
        before = view(store)
        run(store)
        after = view(store)
    assert after != before
    at = 0
    outcomes = set()
    while True:
        path = tmp_path / f"at{at}"
        with filled(path, trained=trained) as store:
            real = store._conn
            wrapper = Interrupting(real, at)
            store._conn = wrapper  # type: ignore[assignment]
            try:
                run(store)
            except KeyboardInterrupt:
                pass
            else:
                break  # the operation has fewer boundaries than `at`: all were tried
            finally:
                store._conn = real
            memory = view(store)
            assert memory in (before, after), f"boundary {at}: neither before nor after"
            assert memory == on_disk(path), f"boundary {at}: memory differs from the database"
            outcomes.add(memory == after)
            run(store)  # the next write works, and lands whole
            assert view(store) == after == on_disk(path), f"boundary {at}: retry"
        at += 1
    assert at > 6, "too few boundaries: is the wrapper in the write path?"
    assert outcomes == {False, True}  # interrupts both before and after the commit


def test_an_interrupt_during_the_recovery_is_mended_by_the_next_write(
        tmp_path: Path) -> None:
    """Interrupted twice: in the write, and again while reloading; the next write reloads."""
    with filled(tmp_path / "i") as store:
        real = store._conn

        class Twice(Interrupting):
            def _boundary(self) -> None:
                self.seen += 1
                if self.seen in (12, 14):
                    raise KeyboardInterrupt

        store._conn = Twice(real, 0)  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            store.add(documents(5, start=118, seed=3))
        store._conn = real
        store.add(documents(2, start=200, seed=4))
        assert view(store) == on_disk(store.directory)
        assert store.stats().documents == on_disk_documents(store.directory)


def on_disk_documents(path: Path) -> int:
    return int(stored_value(path, "SELECT count(*) FROM documents"))



# -- drop and --force touch only ebr indexes ---------------------------------------------------


def _foreign_database(directory: Path) -> Path:
    directory.mkdir()
    conn = sqlite3.connect(directory / DB_FILE)
    conn.execute("CREATE TABLE accounts (name TEXT, balance REAL)")
    conn.execute("INSERT INTO accounts VALUES ('me', 100)")
    conn.commit()
    conn.close()
    return directory / DB_FILE


def test_drop_and_quickstart_force_refuse_another_programs_database(tmp_path: Path) -> None:
    foreign = _foreign_database(tmp_path / "theirs")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / DB_FILE).write_bytes(b"not a database at all" * 50)
    # an SQLite database with a meta table like ours, marked by another application
    marked = _foreign_database(tmp_path / "marked")
    conn = sqlite3.connect(marked)
    conn.executescript("CREATE TABLE meta (name TEXT, value TEXT); INSERT INTO meta VALUES "
                       "('format', '1'), ('schema', '{}'); PRAGMA application_id = 7;")
    conn.close()
    for db in (foreign, garbage / DB_FILE, marked):
        content = db.read_bytes()
        with pytest.raises(StoreError, match="is not an ebr index"):
            LocalStore.drop(db.parent)
        for args in (["index", "drop", str(db.parent), "--yes"],
                     ["quickstart", str(db.parent), "--force", "--limit", "10"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 1, result.output
            assert "is not an ebr index" in result.output
            assert len(result.output.strip().splitlines()) == 1
        assert db.read_bytes() == content
    # an ebr index is still dropped
    LocalStore.create(tmp_path / "ours", SYNTHETIC_SCHEMA).close()
    LocalStore.drop(tmp_path / "ours")
    assert not (tmp_path / "ours").exists()


# -- full disk, read-only media -----------------------------------------------------------------


def _mount(args: list[str]) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount here (needs root with CAP_SYS_ADMIN): "
                    f"{result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: a disk that really fills."""
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)])
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_is_a_clear_error_and_the_store_goes_on(small_disk: Path) -> None:
    path = small_disk / "index"
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 400_000)  # freed below to make room again
    with LocalStore.create(path, SCHEMA) as store:
        with pytest.raises(StoreError, match="the disk .*is full; free space") as failure:
            for batch in range(100):
                store.add(documents(100, start=100 * batch, seed=batch))
        assert "\n" not in str(failure.value) and str(path) in str(failure.value)
        memory = view(store)
        assert memory == on_disk(path)
        ballast.unlink()
        store.delete([doc_id(0)])
        store.add(documents(3, start=90_000, seed=99))
        assert view(store) == on_disk(path)
        assert store.get_documents([doc_id(90_000)])[0] is not None


def test_a_snapshot_file_that_does_not_fit_costs_only_a_rebuild(small_disk: Path) -> None:
    path = small_disk / "index"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(300))
        store.train_quantizers(seed=3)
        expected = view(store)
        free = os.statvfs(small_disk)
        (small_disk / "ballast").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 4096))
    assert not (path / SNAPSHOT_FILE).exists() and not (path / TEMPORARY_FILE).exists()
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem == "no index.snapshot"
        assert view(store) == expected


def test_a_full_database_within_its_page_limit_is_a_clear_error(tmp_path: Path) -> None:
    """The same through SQLite's own size limit (max_page_count), where no mount is allowed."""
    with LocalStore.create(tmp_path / "i", SCHEMA) as store:
        store.add(documents(50))
        store._conn.execute("PRAGMA max_page_count = 40")
        with pytest.raises(StoreError, match="is full; free space"):
            store.add(documents(2000, start=100, seed=1))
        assert view(store) == on_disk(store.directory)
        store.delete([doc_id(1)])
        assert view(store) == on_disk(store.directory)


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """A closed index seen through a read-only bind mount."""
    source = tmp_path / "source"
    with LocalStore.create(source / "index", SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(80))
        store.train_quantizers(seed=7)
    mounted = tmp_path / "ro"
    mounted.mkdir()
    _mount(["--bind", "-o", "ro", str(source), str(mounted)])
    try:
        yield mounted / "index"
    finally:
        subprocess.run(["umount", "-l", str(mounted)], check=True)


def test_an_index_on_read_only_media_opens_for_queries(read_only_copy: Path) -> None:
    with LocalStore.open(read_only_copy, readonly=True) as store:
        assert store.snapshot_problem is None  # mapped from the snapshot file saved at close
        assert store.stats().documents == 80
        assert len(search_text(store, "(nn e :k 5)", query_vector(0)).ids) == 5
        assert store.get_documents(["doc0003"])[0] is not None
    with pytest.raises(StoreError, match="read-only or not this user's|Read-only file system"):
        LocalStore.open(read_only_copy)
    result = CliRunner().invoke(cli, ["query", str(read_only_copy), "(nn e :k 3)",
                                      "--vector", "e=" + ",".join(["1"] * 8)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["index", "drop", str(read_only_copy), "--yes"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_read_only_media_refuses_commits_still_in_the_wal(tmp_path: Path) -> None:
    """A WAL SQLite cannot read there would be ignored: refused, not served stale."""
    source = tmp_path / "source"
    store = LocalStore.create(source / "index", SYNTHETIC_SCHEMA)
    store.add(synthetic(10))
    store._conn.execute("PRAGMA wal_autocheckpoint = 0")
    store.add(synthetic(10, seed=1, start=10))
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (DB_FILE, DB_FILE + "-wal"):
        (copy / name).write_bytes((source / "index" / name).read_bytes())
    store.close()
    mounted = tmp_path / "ro"
    mounted.mkdir()
    _mount(["--bind", "-o", "ro", str(copy), str(mounted)])
    try:
        with pytest.raises(StoreError, match="last commits are still in"):
            LocalStore.open(mounted, readonly=True)
    finally:
        subprocess.run(["umount", "-l", str(mounted)], check=True)


# -- one writer ---------------------------------------------------------------------------------


def test_the_write_lock_has_no_file_to_delete(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SYNTHETIC_SCHEMA):
        assert sorted(p.name for p in path.iterdir() if p.name != DB_FILE + "-shm") == [
            DB_FILE, DB_FILE + "-wal"]
        code = ("import sys; from ebr.stores.local import LocalStore\n"
                "from ebr.errors import StoreError\n"
                "try:\n    LocalStore.open(sys.argv[1])\n"
                "except StoreError as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                             text=True, check=True).stdout
        assert "open for writing by another process" in out


def test_a_writer_reloads_after_another_connections_commit(tmp_path: Path) -> None:
    """A second writer process is refused; one that bypasses the lock (another program
    writing the file) commits, and the first writer's next write acts on the database, not
    on stale memory (local_faults.two_writers)."""
    tally = two_writers(tmp_path)
    assert tally.counts == {"clean error": 1, "intact": 1}, tally.examples


# -- damage is detected, never served ------------------------------------------------------------


@pytest.mark.parametrize("wal", [False, True], ids=["database", "wal"])
def test_single_byte_corruptions_are_refused_or_harmless(tmp_path: Path, wal: bool) -> None:
    tally = corruptions(tmp_path, 60, seed=1, wal=wal)
    assert tally.counts["wrong data"] == tally.counts["raw exception"] == 0, tally.examples
    assert tally.counts["clean error"] > 0


def _damage(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path / DB_FILE)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("sql", "named"), [
    ("UPDATE documents SET source = replace(source, '3', '4') WHERE id = 'doc0003'",
     "document 'doc0003'"),
    ("UPDATE documents SET rank = rank + 1 WHERE id = 'doc0005'", "document 'doc0005'"),
    ("UPDATE terms SET term = 'loc:l9' WHERE id = 'doc0002' AND term LIKE 'loc:%'",
     "document 'doc0002'"),
    ("DELETE FROM documents WHERE id = 'doc0004'", "the terms of 'doc0004', a missing document,"),
    ("UPDATE embeddings SET slot = slot + 1 WHERE id = 'doc0006'",
     "embedding 'e' of 'doc0006'"),
    ("UPDATE embeddings SET slot = 1000 WHERE id = 'doc0007'", "embedding 'e' of 'doc0007'"),
    ("UPDATE vector_files SET rows = rows - 1", "the committed length of the vectors of 'e'"),
    ("UPDATE assignments SET cluster = (cluster + 1) % 8 WHERE id = 'doc0008'",
     "the cluster of 'e' of 'doc0008'"),
    ("DELETE FROM embeddings WHERE id = 'doc0009'",
     "the cluster of 'e' of 'doc0009', a missing embedding,"),
    ("UPDATE quantizers SET centroids = zeroblob(length(centroids))", "the quantizer of 'e'"),
    ("UPDATE meta SET value = replace(value, '\"synthetic\"', '\"synthetiq\"') "
     "WHERE name = 'schema'", "its stored schema"),
])
def test_damage_is_named_by_open_and_check(tmp_path: Path, sql: str, named: str) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(20))
        store.train_quantizers(seed=7)
    assert CliRunner().invoke(cli, ["index", "check", str(path)]).exit_code == 0
    _damage(path, sql)
    # An open that reads every row names it (an open that maps the snapshot file reads none:
    # damage made behind ebr's back, without a commit counted, is for the check to find).
    with pytest.raises(IndexDamagedError, match=f"damaged: {named} does not match"):
        LocalStore.open(path, readonly=True, snapshot=False)
    result = CliRunner().invoke(cli, ["index", "check", str(path)])
    assert result.exit_code == 1 and named in result.output and "rebuild it" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_wal_cut_short_is_refused(tmp_path: Path) -> None:
    """SQLite replays a WAL up to its first bad frame and silently drops the rest; the
    commit counter recorded beside it reveals the loss."""
    path = tmp_path / "i"
    store = LocalStore.create(path, SYNTHETIC_SCHEMA)
    store._conn.execute("PRAGMA wal_autocheckpoint = 0")
    for batch in range(4):
        store.add(synthetic(20, seed=batch, start=20 * batch))
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (DB_FILE, DB_FILE + "-commits", "index.vectors.0"):
        (copy / name).write_bytes((path / name).read_bytes())
    wal = (path / (DB_FILE + "-wal")).read_bytes()
    store.close()
    (copy / (DB_FILE + "-wal")).write_bytes(wal[: len(wal) // 2])
    with pytest.raises(IndexDamagedError, match="holds [0-9]+ commits but 4 were made"):
        LocalStore.open(copy)
    (copy / (DB_FILE + "-wal")).write_bytes(wal)
    with LocalStore.open(copy, readonly=True) as whole:
        assert whole.stats().documents == 80


# -- bad values refused where they enter -----------------------------------------------------


def _deep(n: int) -> dict[str, object]:
    root: dict[str, object] = {}
    node = root
    for _ in range(n):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    return root


@pytest.mark.parametrize(("document", "message"), [
    (IndexDocument("d", {}, rank=10**400), "rank: expected a finite number"),
    (IndexDocument("d", {}, source={1: "x", "1": "y"}), "object keys must be strings, got 1"),
    (IndexDocument("d", {}, source={"a": [{2: "x"}]}), "object keys must be strings, got 2"),
    (IndexDocument("d", {}, source=_deep(100_000)), "nested too deeply"),
])
def test_documents_refused_at_the_boundary(tmp_path: Path, document: IndexDocument,
                                           message: str) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        with pytest.raises(DocumentError, match=message):
            store.add([document])
        assert store.stats().documents == 0


@pytest.mark.parametrize(("vector", "message"), [
    ("1,2,3,4,5,6,7,8", "must be an array of numbers, got str"),
    (np.ones((2, 4), np.float32), r"must be one vector, got shape \(2, 4\)"),
    (np.float32(1), r"must be one vector, got shape \(\)"),
])
def test_query_vectors_refused_at_the_boundary(tmp_path: Path, vector: object,
                                               message: str) -> None:
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(5))
        with pytest.raises(PlanError, match=message):
            search_text(store, "(nn e :radius 2 :exact true)", {"e": vector})  # type: ignore[dict-item]
        with pytest.raises(PlanError, match=message):
            compile_search(parse("(nn e :k 1)"), SYNTHETIC_SCHEMA,
                           {"e": vector})  # type: ignore[dict-item]
        # one vector as a row of a matrix is still one vector
        one = np.ones((1, 8), np.float32)
        assert len(search_text(store, "(nn e :radius 2 :exact true)", {"e": one}).ids) == 5


@pytest.mark.parametrize("size", [True, 1.5, 10**12, -1])
def test_sizes_refused_by_both_stores(tmp_path: Path, size: object) -> None:
    node = parse("(term loc:l1)")
    with pytest.raises(PlanError, match="must be a whole number from 0 to"):
        compile_search(node, SYNTHETIC_SCHEMA, {}, size=size)  # type: ignore[arg-type]
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        with pytest.raises(PlanError, match="must be a whole number from 0 to"):
            store.search(node, {}, size)  # type: ignore[arg-type]


def test_queries_with_lone_surrogates_and_stdin_not_utf8_are_refused(tmp_path: Path) -> None:
    with pytest.raises(QuerySyntaxError, match="not valid UTF-8"):
        parse("(term loc:l\udcff)")
    with LocalStore.create(tmp_path / "i", SYNTHETIC_SCHEMA) as store:
        store.add(synthetic(5))
    for args in (["query", str(tmp_path / "i"), "-"], ["explain", "-"]):
        result = CliRunner().invoke(cli, args, input=b"(term loc:l\xff1)")
        assert result.exit_code == 2 and "not valid UTF-8" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    result = CliRunner().invoke(cli, ["query", str(tmp_path / "i"), "(term loc:l\udcff)"])
    assert result.exit_code == 1 and "not valid UTF-8" in result.output
