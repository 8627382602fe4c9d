"""The snapshot file (``index.snapshot``): saved at close, mapped at open only when it stands
for the database; a damaged, truncated or stale one is refused and memory rebuilt from the
database, serving exactly what a store opened without it serves; a writer killed while
saving leaves a usable index; read-only opens map it and never write it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_faults import CODED, QUERY, SCHEMA, doc_id, documents, filled, view
from pyroaring import BitMap, FrozenBitMap

from ebr.stores.local import LocalStore, snapshot_file
from ebr.stores.local.snapshot_file import SNAPSHOT_FILE, TEMPORARY_FILE, Stamp, Unusable
from ebr.stores.protocol import IndexDocument, search_text

WORKER = Path(__file__).with_name("local_snapshot_worker.py")


def answers(store: LocalStore) -> Any:
    """What searches see (local_faults.view), with ordered top-K and BM25 results too."""
    ordered = ["(nn e :k 7 :nprobe 2)", "(nn e :k 4 :nprobe 4)", '(match text "red lamp")',
               "(and (term tag:t1) (nn e :k 3))", "(or (term tag:t2) (nn e :radius 0.5))"]
    return view(store), [[(h.id, round(h.score, 6), h.branches) for h in
                          search_text(store, q, QUERY, 50).hits] for q in ordered]


def database_answers(path: Path) -> Any:
    with LocalStore.open(path, readonly=True, snapshot=False) as store:
        return answers(store)


def same(a: Any, b: Any) -> bool:
    """Deep equality of snapshot values, arrays byte for byte (their unused tails too)."""
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, BitMap | FrozenBitMap | str | int | float | type(None)):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping):
        return (isinstance(b, Mapping) and a.keys() == b.keys()
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    fields = ({f.name for f in dataclasses.fields(a)} if dataclasses.is_dataclass(a)
              else set(vars(a)))
    return type(a) is type(b) and all(same(getattr(a, f), getattr(b, f)) for f in fields)


def stamp_of(store: LocalStore) -> Stamp:
    from ebr.stores.local import database
    commits, documents_ = database.commits_and_documents(store._conn)
    assert commits is not None
    return Stamp(commits, documents_, database.checksum(store.schema.to_json()))


def test_every_field_comes_back_and_arrays_are_read_only_maps(tmp_path: Path) -> None:
    path = tmp_path / "i"
    odd = [IndexDocument(i, {"tag": ["t1"]}, embeddings={"e": np.ones(8, np.float32)})
           for i in ("nul\0inside", "été", "\U0001f600", "x" * 300)]
    with LocalStore.create(path, CODED) as store:
        store.add(documents(400))
        store.add(odd)
        store.train_quantizers(seed=3)
        store.add(documents(30, start=390, seed=9))  # replaced: dead numbers stay
        store.delete([doc_id(5), doc_id(6)])
        memory = store._snapshot
        assert memory.products and memory.lengths and memory.quantizers
        snapshot_file.save(path, memory, stamp_of(store))
        loaded = snapshot_file.load(path, stamp_of(store))
    assert same(loaded, memory) and same(memory, loaded)
    table = loaded.tables["e"]
    assert table.coded and not table.matrix.flags.writeable and not table.codes.flags.writeable
    assert loaded.ids[memory.count - 34:memory.count - 30] == [d.id for d in odd]


def test_a_store_opened_from_the_file_serves_what_the_database_does(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, CODED) as store:
        store.add(documents(400))
        store.train_quantizers(seed=3)
        store.delete([doc_id(7)])
    assert (path / SNAPSHOT_FILE).is_file() and not (path / TEMPORARY_FILE).exists()
    with LocalStore.open(path) as store:
        assert store.snapshot_problem is None
        assert answers(store) == database_answers(path)
        before = (path / SNAPSHOT_FILE).read_bytes()
        # appends over the read-only maps copy them; the file is not written until close
        store.add(documents(50, start=380, seed=4))
        store.delete([doc_id(1)])
        store.train_quantizers(seed=5)
        store.add(documents(5, start=900, seed=6))
        assert (path / SNAPSHOT_FILE).read_bytes() == before
        expected = answers(store)
    assert database_answers(path) == expected
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is None
        assert answers(store) == expected


FAULTS = ("none", "flip", "truncate", "stale", "foreign commit")


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(FAULTS), st.floats(0, 1, exclude_max=True),
       st.lists(st.tuples(st.sampled_from(["add", "delete", "train"]), st.integers(0, 160),
                          st.integers(1, 40)), min_size=1, max_size=5))
def test_a_damaged_truncated_or_stale_file_is_refused_and_memory_rebuilt(
        fault: str, where: float, operations: list[tuple[str, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "i"
        with LocalStore.create(path, SCHEMA) as store:
            store.add(documents(60))
            store.train_quantizers(seed=0)
            for n, (operation, start, count) in enumerate(operations):
                if operation == "add":
                    store.add(documents(count, start=start, seed=n))
                elif operation == "delete":
                    store.delete([doc_id(i) for i in range(start, start + count, 3)])
                else:
                    store.train_quantizers(seed=n)
        saved = path / SNAPSHOT_FILE
        data = saved.read_bytes()
        if fault == "flip":
            position = int(where * len(data))
            saved.write_bytes(data[:position] + bytes([data[position] ^ 0x5A])
                              + data[position + 1:])
        elif fault == "truncate":
            saved.write_bytes(data[:int(where * len(data))])
        elif fault == "stale":  # a later commit's file replaced by the earlier one
            with LocalStore.open(path) as store:
                store.add(documents(3, start=int(where * 100), seed=77))
            saved.write_bytes(data)
        elif fault == "foreign commit":  # a writer that saves no file (killed before close)
            code = ("import sys, os; sys.path.insert(0, sys.argv[2])\n"
                    "from local_faults import documents\n"
                    "from ebr.stores.local import LocalStore\n"
                    "s = LocalStore.open(sys.argv[1]); s.delete(['d000002', 'd000010'])\n"
                    "s.add(documents(2, start=700)); os._exit(0)\n")
            subprocess.run([sys.executable, "-c", code, str(path), str(Path(__file__).parent)],
                           check=True)
        expected = database_answers(path)
        with LocalStore.open(path, readonly=True) as store:
            assert (store.snapshot_problem is None) == (fault == "none"), store.snapshot_problem
            assert answers(store) == expected
        assert saved.exists()  # read-only: left as it was
        with LocalStore.open(path) as store:  # a writer drops the file it could not use
            assert (store.snapshot_problem is None) == (fault == "none")
            assert saved.exists() == (fault == "none")
            assert answers(store) == expected
        with LocalStore.open(path, readonly=True) as store:  # and saves a good one at close
            assert store.snapshot_problem is None
            assert answers(store) == expected


@pytest.mark.parametrize("pause", ["section", "rename"])
def test_a_writer_killed_while_saving_leaves_a_usable_index(tmp_path: Path, pause: str) -> None:
    path = tmp_path / "i"
    filled(path, 300, schema=SCHEMA).close()
    before = (path / SNAPSHOT_FILE).read_bytes()
    worker = subprocess.Popen([sys.executable, str(WORKER), str(path), pause],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "paused"  # inside save, at close
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait()
    assert (path / TEMPORARY_FILE).exists()  # what the killed save left
    assert (path / SNAPSHOT_FILE).read_bytes() == before  # the old file: now stale
    expected = database_answers(path)
    assert expected[0][0] == 300 + 20  # the worker's batch was committed
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is not None and "stale" in store.snapshot_problem
        assert answers(store) == expected
    with LocalStore.open(path) as store:
        assert answers(store) == expected
    assert not (path / TEMPORARY_FILE).exists()
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is None
        assert answers(store) == expected


def test_read_only_opens_map_the_file_and_never_write(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(100))
        store.train_quantizers(seed=3)

    def files() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir()
                if p.name not in ("index.sqlite-shm", "index.sqlite-wal")}  # SQLite's

    before = files()
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is None
        assert store.stats().documents == 100
        with pytest.raises(Exception, match="read-only"):
            store.save_snapshot()
    assert files() == before
    os.truncate(path / SNAPSHOT_FILE, 100)  # unusable: read-only rebuilds, keeps the file
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is not None and "cut short" in store.snapshot_problem
        assert store.stats().documents == 100
    assert (path / SNAPSHOT_FILE).stat().st_size == 100


def test_a_writer_opened_without_the_file_deletes_it_and_saves_none(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA, synchronous="NORMAL") as store:
        store.add(documents(50))
    with LocalStore.open(path, readonly=True, snapshot=False) as store:
        assert store.snapshot_problem == "not asked for"
    assert (path / SNAPSHOT_FILE).exists()
    with LocalStore.open(path, snapshot=False) as store:
        assert not (path / SNAPSHOT_FILE).exists()
        store.add(documents(5, start=50))
    assert not (path / SNAPSHOT_FILE).exists()
    with LocalStore.open(path) as store:  # a writer without a file saves one at close
        assert store.snapshot_problem is not None and "no index.snapshot" in store.snapshot_problem
    with LocalStore.open(path, readonly=True) as store:
        assert store.snapshot_problem is None and store.stats().documents == 55


@pytest.mark.parametrize("name", [
    "subprocess:Popen",
    "ebr.stores.local.store:os.system",  # a path through a module of the store's own
    "ebr.stores.local.store:LocalStore",  # a class of the store's, but not a value it saves
])
def test_a_file_naming_a_class_outside_the_store_is_refused(tmp_path: Path, name: str) -> None:
    """Even with every hash right, a snapshot names only the classes it may hold."""
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(20))
        stamp = stamp_of(store)
    data = (path / SNAPSHOT_FILE).read_bytes()
    footer = snapshot_file._FOOTER
    offset, length, _, magic = footer.unpack(data[-footer.size:])
    header = json.loads(data[offset:offset + length])
    assert header["snapshot"]["object"] == "ebr.stores.local.snapshot:Snapshot"
    header["snapshot"]["object"] = name
    header["snapshot"]["fields"] = {"command": "touch " + str(tmp_path / "ran")}
    text = json.dumps(header).encode()
    (path / SNAPSHOT_FILE).write_bytes(data[:offset] + text + footer.pack(
        offset, len(text), xxhash.xxh3_64_intdigest(text), magic))
    with pytest.raises(Unusable, match=f"{name} is not a class a snapshot may hold"):
        snapshot_file.load(path, stamp)
    assert not (tmp_path / "ran").exists()


def test_drop_removes_the_snapshot_files(tmp_path: Path) -> None:
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(20))
    (path / TEMPORARY_FILE).write_bytes(b"left by a killed save")
    LocalStore.drop(path)
    assert not path.exists()


def test_a_value_the_file_cannot_hold_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "i"
    store = LocalStore.create(path, SCHEMA)
    store.add(documents(20))
    store._snapshot = dataclasses.replace(store._snapshot, products={"e": {1, 2}})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="cannot save a builtins.set"):
        store.close()
    assert not (path / SNAPSHOT_FILE).exists() and not (path / TEMPORARY_FILE).exists()
    with LocalStore.open(path) as again:  # closed all the same: the lock was released
        assert again.stats().documents == 20


def test_open_write_close_cycles_keep_the_file_bounded_and_the_numbers_dense(
        tmp_path: Path) -> None:
    """Each mapped open copies its buffers on the first append: the file must still hold
    only the snapshot's part of them, and replaced documents' numbers must not pile up."""
    path = tmp_path / "i"
    with LocalStore.create(path, SCHEMA) as store:
        store.add(documents(200))
        store.train_quantizers(seed=0)
    first = (path / SNAPSHOT_FILE).stat().st_size
    for cycle in range(8):
        with LocalStore.open(path) as store:
            assert store.snapshot_problem is None
            store.add(documents(100, seed=cycle + 1))  # replaces half the documents
            expected = view(store)
        with LocalStore.open(path, readonly=True) as reopened:
            snap = reopened._snapshot
            assert reopened.snapshot_problem is None and view(reopened) == expected
            assert len(snap.ranks) == len(snap.ids) == snap.count <= 2 * len(snap.live)
            assert all(len(n.lengths) == snap.count for n in snap.lengths.values())
            table = snap.tables["e"]
            assert table.body == table.rows == len(table.present) == len(table.matrix)
    assert (path / SNAPSHOT_FILE).stat().st_size < 1.6 * first
