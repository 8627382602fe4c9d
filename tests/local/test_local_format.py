"""The database's format: an index of format 1 (each embedding row holding its vector, cluster
and PQ code) or 2 (its vector) is upgraded by its first writable open, or by ``ebr index
upgrade``, and then serves what it served before; a read-only open of one, and any format
this ebr does not know, are clear errors; a writer killed while training writes the new
assignments leaves the index as it was before."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from local_faults import (
    CODED,
    SCHEMA,
    documents,
    filled,
    kill_when_paused,
    served,
    stored_value,
)
from local_formats import as_format_1, as_format_2

from ebr.cli.main import cli
from ebr.errors import StoreError
from ebr.mappings import Schema
from ebr.stores.local import LocalStore
from ebr.stores.local.database import DB_FILE

WORKER = Path(__file__).with_name("local_training_worker.py")
APPEND_WORKER = Path(__file__).with_name("local_append_worker.py")


def stored_format(path: Path) -> str:
    return str(stored_value(path, "SELECT value FROM meta WHERE name = 'format'"))


@pytest.mark.parametrize(("schema", "before_codes"), [(CODED, False), (SCHEMA, True)],
                         ids=["with-codes", "before-codes"])
def test_a_format_1_index_is_upgraded_by_a_writable_open(
        tmp_path: Path, schema: Schema, before_codes: bool) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=schema).close()
    expected = served(path)
    as_format_1(path, before_codes=before_codes)
    with pytest.raises(StoreError, match="index format 1, written by an older ebr; upgrade "
                                         "it to format 3 in place with `ebr index upgrade "):
        LocalStore.open(path, readonly=True)
    with LocalStore.open(path) as store:
        assert store.snapshot_problem is not None  # rebuilt from the upgraded rows
    assert stored_format(path) == "3"
    assert served(path) == expected
    LocalStore.check(path)  # every row verified against its checksum
    with LocalStore.open(path) as store:  # and it takes writes and training as a new one
        store.add(documents(30, start=290, seed=9))
        store.train_quantizers(seed=5)
    with LocalStore.open(path, readonly=True, snapshot=False) as rebuilt:
        again = served(path)
        assert again[0][0] == 320 and again != expected
        assert rebuilt.stats().documents == 320
    LocalStore.check(path)


def test_ebr_index_upgrade_upgrades_in_place_what_read_only_commands_refuse(
        tmp_path: Path) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=CODED).close()
    expected = served(path)
    as_format_1(path)
    runner = CliRunner()
    refused = runner.invoke(cli, ["index", "stats", str(path)])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert f"with `ebr index upgrade {path}`" in refused.output
    held = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:  # another writer's lock (a writable open here would upgrade): refused, untouched
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = runner.invoke(cli, ["index", "upgrade", str(path)])
    finally:
        os.close(held)
    assert busy.exit_code == 1 and "open for writing by another process" in busy.output
    assert stored_format(path) == "1"
    done = runner.invoke(cli, ["index", "upgrade", str(path)])
    assert done.exit_code == 0, done.output
    assert done.output == f"upgraded the index in {path} from format 1 to format 3\n"
    assert stored_format(path) == "3"
    assert served(path) == expected  # read-only opens work again, serving what they did
    assert runner.invoke(cli, ["index", "check", str(path)]).exit_code == 0
    again = runner.invoke(cli, ["index", "upgrade", str(path)])
    assert again.exit_code == 0
    assert again.output == f"the index in {path} is already in format 3: nothing to do\n"
    missing = runner.invoke(cli, ["index", "upgrade", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no local index in" in missing.output


def test_a_format_this_ebr_does_not_know_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "i"
    LocalStore.create(path, SCHEMA).close()
    conn = sqlite3.connect(path / DB_FILE)
    conn.execute("UPDATE meta SET value = '4' WHERE name = 'format'")
    conn.commit()
    conn.close()
    for readonly in (True, False):
        with pytest.raises(StoreError, match="index format '4'; this ebr reads format 3"):
            LocalStore.open(path, readonly=readonly)
    with pytest.raises(StoreError, match="index format '4'; this ebr reads format 3"):
        LocalStore.upgrade(path)


def test_a_writer_killed_while_training_leaves_the_index_as_before(tmp_path: Path) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=CODED).close()
    expected = served(path)
    kill_when_paused(WORKER, str(path))  # half the assignments written
    assert served(path) == expected  # the old training, whole (a mapped open)
    with LocalStore.open(path, readonly=True, snapshot=False) as store:
        assert store.stats().quantizers == {"e": 4}
    LocalStore.check(path)
    with LocalStore.open(path) as store:  # and training again works
        store.train_quantizers(seed=4)
    retrained = served(path)
    assert retrained[0][0] == expected[0][0] and retrained != expected
    LocalStore.check(path)


@pytest.mark.parametrize("through", ["open", "command"])
def test_a_format_2_index_moves_its_vectors_into_the_vector_files(
        tmp_path: Path, through: str) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, CODED) as store:
        store.add(documents(300))
        store.train_quantizers(seed=3)
        store.add(documents(40, start=280, seed=5))  # replaced: dead slots, not carried over
        store.delete([f"d{i:06d}" for i in range(0, 300, 9)])
    expected = served(path)
    as_format_2(path)
    before = (path / DB_FILE).stat().st_size
    with pytest.raises(StoreError, match="index format 2, written by an older ebr"):
        LocalStore.open(path, readonly=True)
    if through == "open":
        LocalStore.open(path).close()
    else:
        done = CliRunner().invoke(cli, ["index", "upgrade", str(path)])
        assert done.output == f"upgraded the index in {path} from format 2 to format 3\n"
    assert stored_format(path) == "3"
    live = stored_value(path, "SELECT count(*) FROM embeddings")
    assert stored_value(path, "SELECT rows FROM vector_files") == live  # no dead slots
    assert (path / "index.vectors.0").stat().st_size == live * 4 * 8
    assert (path / DB_FILE).stat().st_size < before  # the blobs' pages given back
    assert served(path) == expected
    LocalStore.check(path)
    with LocalStore.open(path) as store:  # and it takes writes as a new one
        store.add(documents(30, start=330, seed=9))
    assert served(path)[0][0] == expected[0][0] + 30
    LocalStore.check(path)


def test_an_upgrade_refuses_a_damaged_vector_and_leaves_format_2(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(50))
    as_format_2(path)
    conn = sqlite3.connect(path / DB_FILE)
    conn.execute("UPDATE embeddings SET vector = zeroblob(32) WHERE id = 'd000008'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="damaged: embedding 'e' of 'd000008' does not match"):
        LocalStore.upgrade(path)
    assert stored_format(path) == "2"
    assert stored_value(path, "SELECT count(*) FROM embeddings WHERE vector IS NOT NULL") > 40


def test_a_writer_killed_while_upgrading_leaves_format_2_for_the_next_upgrade(
        tmp_path: Path) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=CODED).close()
    expected = served(path)
    as_format_2(path)
    kill_when_paused(APPEND_WORKER, str(path), "upgrade")
    assert stored_format(path) == "2"
    assert (path / "index.vectors.0").stat().st_size > 0  # written, never committed
    assert LocalStore.upgrade(path) == "2"  # overwrites it from the start
    assert (path / "index.vectors.0").stat().st_size == stored_value(
        path, "SELECT count(*) FROM embeddings") * 4 * 8
    assert served(path) == expected
    LocalStore.check(path)
