"""The vector files (format 3): a writer killed while appending leaves an index holding
exactly its committed documents, the torn tail ignored by readers and cut by the next
append; damage to the committed vectors (a changed byte, a file cut short or gone) is a
clear error wherever a vector is read from the file, never a wrong vector served."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from local_faults import (
    SCHEMA,
    corruptions,
    doc_id,
    documents,
    filled,
    kill_when_paused,
    served,
    stored_value,
)

from ebr.cli.main import cli
from ebr.errors import IndexDamagedError
from ebr.stores.local import LocalStore

WORKER = Path(__file__).with_name("local_append_worker.py")
VECTORS = "index.vectors.0"
ROW = 4 * 8  # bytes of one vector of SCHEMA's key


def _committed(path: Path) -> int:
    return int(stored_value(path, "SELECT rows FROM vector_files WHERE key = 'e'"))


@pytest.mark.parametrize("part", ["whole", "half"])
def test_a_writer_killed_while_appending_leaves_the_committed_documents(
        tmp_path: Path, part: str) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=SCHEMA).close()
    expected = served(path)
    committed = _committed(path)
    kill_when_paused(WORKER, str(path), part)
    size = (path / VECTORS).stat().st_size
    assert size > committed * ROW  # the torn tail is there
    assert served(path) == expected  # and ignored: mapped, then rebuilt from every row
    with LocalStore.open(path, readonly=True, snapshot=False) as store:
        assert store.stats().documents == expected[0][0]
    LocalStore.check(path)
    assert (path / VECTORS).stat().st_size == size  # read-only opens leave the file alone
    with LocalStore.open(path) as store:
        result = store.add(documents(100, start=300, seed=7))
        assert result.added == 100
    assert (path / VECTORS).stat().st_size == _committed(path) * ROW  # the tail overwritten
    LocalStore.check(path)
    with LocalStore.open(path, readonly=True, snapshot=False) as store:
        got = store.get_documents([doc_id(351)])[0]
        want = documents(100, start=300, seed=7)[51].embeddings["e"]
        assert got is not None and got.embeddings["e"].tobytes() == bytes(want)


def _filled(path: Path) -> None:
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(60))
        store.train_quantizers(seed=3)
    assert CliRunner().invoke(cli, ["index", "check", str(path)]).exit_code == 0


def _refused_everywhere(path: Path, named: str) -> None:
    """A rebuilding open, a fetch from a mapped open, and the check all name the damage."""
    with pytest.raises(IndexDamagedError, match=f"damaged: {named} does not match"):
        LocalStore.open(path, readonly=True, snapshot=False)
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is None  # searches use the snapshot's own copy
        with pytest.raises(IndexDamagedError, match=f"damaged: {named} does not match"):
            store.get_documents([doc_id(i) for i in range(60)])
    result = CliRunner().invoke(cli, ["index", "check", str(path)])
    assert result.exit_code == 1 and named in result.output and "rebuild it" in result.output


def test_a_changed_byte_of_a_committed_vector_is_named(tmp_path: Path) -> None:
    path = tmp_path / "i"
    _filled(path)
    slot = int(stored_value(path, f"SELECT slot FROM embeddings WHERE id = '{doc_id(9)}'"))
    with open(path / VECTORS, "r+b") as f:
        f.seek(slot * ROW + 5)
        byte = f.read(1)
        f.seek(slot * ROW + 5)
        f.write(bytes([byte[0] ^ 0x40]))
    _refused_everywhere(path, f"embedding 'e' of '{doc_id(9)}'")


@pytest.mark.parametrize("cut", ["short", "gone"])
def test_a_vector_file_cut_short_or_gone_is_named(tmp_path: Path, cut: str) -> None:
    path = tmp_path / "i"
    _filled(path)
    committed = _committed(path)
    if cut == "short":
        os.truncate(path / VECTORS, committed * ROW - 1)
    else:
        (path / VECTORS).unlink()
    _refused_everywhere(path, f"{VECTORS}, shorter than its {committed} committed vectors,")
    with pytest.raises(IndexDamagedError, match="shorter than its"):  # a writer appends nothing
        with LocalStore.open(path) as store:
            store.add(documents(5, start=100))


def test_single_byte_corruptions_of_the_vector_file_are_refused_or_harmless(
        tmp_path: Path) -> None:
    tally = corruptions(tmp_path, 40, seed=2, wal=False, vectors=True)
    assert tally.counts["wrong data"] == tally.counts["raw exception"] == 0, tally.examples
    assert tally.counts["clean error"] > 0
