"""Fault injection for the local store, runnable as a script and used by the tests.

Each class of fault is tried many times and every try ends one of four ways: a clean error
(a :class:`~ebr.errors.StoreError`, which is what a user may see), intact (the index serves
exactly what was written), wrong data (it serves something else: never acceptable), or a
raw exception (a bug).  The classes:

- ``interrupt``: ``KeyboardInterrupt`` at every statement boundary of add, delete, training
  and set_quantizer; intact means memory equals the database afterwards and a retry lands
  as the uninterrupted operation did.
- ``full disk``: batches added to a 1 MB tmpfs (or, where nothing can be mounted, a database
  at SQLite's ``max_page_count``) until it fills; then room is made and writing goes on.
- ``read-only``: the index behind a read-only bind mount, queried; writing refused.
- ``database byte`` / ``wal byte`` / ``vector byte``: one random byte changed in the closed
  database, in the write-ahead log left by a writer that stopped without closing (as when
  killed), or in the closed index's vector file.
- ``two writers``: a second writer refused; one that bypasses the lock, then the first.

    python tests/local/local_faults.py [--corruptions 300] [--seed 0]

Target: 0 wrong data, 0 raw exceptions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.local import store as store_module
from ebr.stores.local.database import DB_FILE
from ebr.stores.protocol import IndexDocument, search_text

SCHEMA = Schema.create("faults", (Namespace("tag", "keyword"), Namespace("text", "standard")),
                       (EmbeddingKey("e", 8, CoarseQuantizerSpec(nlist=4)),))
#: the same corpus with PQ codes and an OPQ rotation (every kind of stored field)
CODED = Schema.create("coded", (Namespace("tag", "keyword"), Namespace("text", "standard")),
                      (EmbeddingKey("e", 8, CoarseQuantizerSpec(nlist=4, pq_m=4, opq=True)),))
TAGS = tuple(f"t{i}" for i in range(6))
WORDS = ("red", "green", "blue", "lamp", "chair", "table")
QUERY = {"e": np.linspace(-1, 1, 8).astype(np.float32)}
OUTCOMES = ("clean error", "intact", "wrong data", "raw exception")
HERE = Path(__file__).parent  # the workers import this module


def doc_id(i: int) -> str:
    """Ids sort as they are numbered: a reload then keeps the order training samples in."""
    return f"d{i:06d}"


def documents(n: int, start: int = 0, seed: int = 0) -> list[IndexDocument]:
    rng = np.random.default_rng(seed)
    return [IndexDocument(doc_id(i), {"tag": [TAGS[i % len(TAGS)]]},
                          {"text": " ".join(rng.choice(WORDS, 2, replace=False))},
                          {"e": rng.normal(size=8).astype(np.float32)} if i % 7 else {},
                          float(i % 3), {"i": i, "note": "x" * (i % 5)})
            for i in range(start, start + n)]


def view(store: LocalStore) -> Any:
    """What searches see, order-free (a replaced document is renumbered)."""
    stats = store.stats()
    queries = ([f"(term tag:{t})" for t in TAGS] + [f"(term text:{w})" for w in WORDS]
               + [f"(term e.cluster:{c})" for c in range(4)] + ["(nn e :radius 2 :exact true)"])
    return (stats.documents, stats.embeddings, stats.terms, stats.quantizers,
            {k: q.centroids.tobytes() for k, q in store.quantizers.items()},
            [sorted((h.id, round(h.score, 6), h.rank) for h in
                    search_text(store, q, QUERY, 10_000).hits) for q in queries])


def stored_value(path: Path, sql: str) -> Any:
    """The one value ``sql`` selects from the index's database (read behind ebr's back)."""
    conn = sqlite3.connect(path / DB_FILE)
    try:
        (value,) = conn.execute(sql).fetchone()
        return value
    finally:
        conn.close()


def served(path: Path) -> Any:
    """Everything a reader is served: searches, stats and every stored document."""
    with LocalStore.open(path, readonly=True) as store:
        ids = sorted(store._snapshot.ids[d] for d in store._snapshot.live)
        docs = [(d.id, sorted(d.terms.items()), {k: v.tobytes() for k, v in d.embeddings.items()},
                 d.rank, d.source) if d else None for d in store.get_documents(ids)]
        return view(store), docs


class Tally:
    """Outcomes of one class of fault; the first few raw exceptions and wrong data kept."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def run(self, attempt: Callable[[], Any], expected: Any, label: str) -> str:
        try:
            got = attempt()
        except StoreError:
            outcome = "clean error"
        except Exception:
            outcome = "raw exception"
            self._example(label, traceback.format_exc(limit=-3))
        else:
            outcome = "intact" if got == expected else "wrong data"
            if outcome == "wrong data":
                self._example(label, "served data differs from what was written")
        self.counts[outcome] += 1
        return outcome

    def _example(self, label: str, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"{label}: {text.strip()}")


class Interrupting:
    """A real connection that raises KeyboardInterrupt at boundary ``at``, counting the
    boundaries before and after every statement (what Ctrl-C between statements does)."""

    def __init__(self, conn: sqlite3.Connection, at: int) -> None:
        self._conn = conn
        self.at = at
        self.seen = 0

    def _boundary(self) -> None:
        self.seen += 1
        if self.seen - 1 == self.at:
            raise KeyboardInterrupt

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self._boundary()
        cursor = self._conn.execute(*args)
        self._boundary()
        return cursor

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self._boundary()
        cursor = self._conn.executemany(*args)
        self._boundary()
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Watched(Mapping[str, list[str]]):
    """A document's terms (``tag:t0``) that record ``probe()`` when the batch reads them, as
    it is prepared: what a write has turned off by then."""

    def __init__(self, seen: list[bool], probe: Callable[[], bool]) -> None:
        self.seen, self.probe = seen, probe

    def __getitem__(self, name: str) -> list[str]:
        return {"tag": ["t0"]}[name]

    def __iter__(self) -> Iterator[str]:
        return iter(["tag"])

    def __len__(self) -> int:
        return 1

    def items(self):  # type: ignore[override]
        self.seen.append(self.probe())
        return super().items()


# -- the classes ----------------------------------------------------------------------------------


def filled(path: Path, n: int = 120, trained: bool = True, schema: Schema = SCHEMA) -> LocalStore:
    """A new index of ``n`` documents, trained unless told otherwise, left open."""
    store = LocalStore.create(path, schema)
    store.add(documents(n))
    if trained:
        store.train_quantizers(seed=3)
    return store


INTERRUPTED: dict[str, tuple[bool, Callable[[LocalStore], object]]] = {
    "add": (True, lambda s: s.add(documents(6, start=115, seed=5))),
    "delete": (True, lambda s: s.delete([doc_id(1), doc_id(8), doc_id(40), "absent"])),
    "train": (False, lambda s: s.train_quantizers(seed=3)),
    "set_quantizer": (True, lambda s: s.set_quantizer("e", np.eye(4, 8, dtype=np.float32))),
}


def interrupts(work: Path) -> Tally:
    tally = Tally()
    for name, (trained, run) in INTERRUPTED.items():
        with filled(work / f"{name}-reference", trained=trained) as store:
            run(store)
            after = view(store)
        at = 0
        while True:
            path = work / f"{name}-{at}"
            with filled(path, trained=trained) as store:
                real = store._conn
                store._conn = Interrupting(real, at)  # type: ignore[assignment]
                try:
                    run(store)
                except KeyboardInterrupt:
                    pass
                else:
                    break
                finally:
                    store._conn = real

                def consistent(store: LocalStore = store, path: Path = path,
                               run: Callable[[LocalStore], object] = run) -> Any:
                    if view(store) != served(path)[0]:
                        return "memory differs from the database"
                    run(store)  # the retry lands whole
                    return view(store) == served(path)[0] and view(store)

                tally.run(consistent, after, f"{name} interrupted at boundary {at}")
            at += 1
    return tally


@contextmanager
def mounted(args: list[str], where: Path) -> Iterator[bool]:
    """``mount ARGS where`` for the block; False if this machine allows no mount."""
    where.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", *args, str(where)], capture_output=True).returncode:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def full_disk(work: Path) -> Tally:
    tally = Tally()
    with mounted(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], work / "disk") as ok:
        for round_ in range(5):
            path = work / "disk" / f"i{round_}" if ok else work / f"full{round_}"
            ballast = path.parent / "ballast"
            if ok:
                for p in (work / "disk").iterdir():  # the last round's index
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                ballast.write_bytes(b"\0" * (100_000 * (round_ + 1)))
            with LocalStore.create(path, SCHEMA) as store:
                if not ok:
                    store._conn.execute("PRAGMA max_page_count = 60")

                def fill(store: LocalStore = store, width: int = 40 + round_) -> Any:
                    for batch in range(1000):
                        store.add(documents(width, start=1000 * batch, seed=batch))
                    return "never full"

                tally.run(fill, None, f"full disk round {round_}")

                def after(store: LocalStore = store, path: Path = path,
                          ballast: Path = ballast) -> Any:
                    same = view(store) == served(path)[0]
                    if ok:
                        ballast.unlink()
                    else:
                        store._conn.execute("PRAGMA max_page_count = 1000000")
                    store.add(documents(3, start=900_000))
                    return same and view(store) == served(path)[0]

                tally.run(after, True, f"after the disk filled, round {round_}")
    return tally


def read_only(work: Path) -> Tally:
    tally = Tally()
    source = work / "ro-source"
    with filled(source / "index") as store:
        expected = served(source / "index")
    del store
    with mounted(["--bind", "-o", "ro", str(source)], work / "ro") as ok:
        if not ok:
            return tally
        path = work / "ro" / "index"
        tally.run(lambda: served(path), expected, "read-only open")
        tally.run(lambda: LocalStore.open(path).close(), "refused", "writable open")
        tally.run(lambda: LocalStore.drop(path), "refused", "drop")
        tally.run(lambda: LocalStore.check(path).documents, expected[0][0], "check")
    return tally


def _flip(path: Path, position: int, rng: np.random.Generator) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ int(rng.integers(1, 256))]))


def corruptions(work: Path, count: int, seed: int, *, wal: bool, vectors: bool = False
                ) -> Tally:
    """``count`` copies of one index, each with one random byte changed: in the database
    of a closed index (``vectors``: in its vector file), or (``wal``) in the WAL of a writer
    that stopped without closing."""
    tally = Tally()
    rng = np.random.default_rng(seed)
    base = work / ("wal-base" if wal else "db-base")
    store = filled(base)
    if wal:
        store._conn.execute("PRAGMA wal_autocheckpoint = 0")
        for batch in range(6):  # several commits in the WAL, each replacing documents
            store.add(documents(30, start=20 * batch, seed=100 + batch))
        expected = served(base)
        frozen = work / "wal-frozen"  # the files as a killed writer leaves them
        shutil.copytree(base, frozen)
        store.close()
        base = frozen
    else:
        store.close()
        expected = served(base)
    target = base / (DB_FILE + "-wal" if wal else "index.vectors.0" if vectors else DB_FILE)
    size = target.stat().st_size
    for n in range(count):
        copy = work / f"{'wal' if wal else 'db'}-{n}"
        shutil.copytree(base, copy)
        position = int(rng.integers(size))
        _flip(copy / target.name, position, rng)
        tally.run(lambda copy=copy: served(copy), expected, f"byte {position} of {target.name}")
        shutil.rmtree(copy)
    return tally


def kill_when_paused(worker: Path, *args: str) -> None:
    """Run the worker script with ``args`` until it prints ``paused``, then kill it (as a
    power cut or ``kill -9`` would, nothing cleaned up)."""
    process = subprocess.Popen([sys.executable, str(worker), *args], stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(HERE)})
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "paused"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def two_writers(work: Path) -> Tally:
    tally = Tally()
    path = work / "two"
    with filled(path) as first:
        code = ("import sys; from ebr.stores.local import LocalStore\n"
                "from ebr.errors import StoreError\n"
                "try:\n    LocalStore.open(sys.argv[1]).close()\nexcept StoreError:\n"
                "    sys.exit(3)\n")
        status = subprocess.run([sys.executable, "-c", code, str(path)]).returncode

        def second_process() -> Any:
            if status == 3:
                raise StoreError("refused")
            return status

        tally.run(second_process, None, "a second writer process")
        real = store_module._lock
        store_module._lock = lambda directory: os.open(os.devnull, os.O_RDONLY)
        try:  # a writer that ignores the lock (another program writing the file)
            with LocalStore.open(path) as other:
                other.add(documents(5, start=500))
                other.delete([doc_id(3)])
        finally:
            store_module._lock = real

        def first_goes_on() -> Any:
            result = first.delete([doc_id(500), doc_id(501), doc_id(3), doc_id(4)])
            return result.deleted == 3 and view(first) == served(path)[0]

        tally.run(first_goes_on, True, "the first writer after the other's commits")
    return tally


def run_all(work: Path, corruptions_per_file: int, seed: int) -> dict[str, Tally]:
    classes: dict[str, Callable[[Path], Tally]] = {
        "interrupt": interrupts, "full disk": full_disk, "read-only": read_only,
        "database byte": lambda w: corruptions(w, corruptions_per_file, seed, wal=False),
        "wal byte": lambda w: corruptions(w, corruptions_per_file, seed, wal=True),
        "vector byte": lambda w: corruptions(w, corruptions_per_file, seed, wal=False,
                                             vectors=True),
        "two writers": two_writers,
    }
    out = {}
    for name, run in classes.items():
        place = work / name.replace(" ", "-")
        place.mkdir()
        out[name] = run(place)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corruptions", type=int, default=300,
                        help="single-byte corruptions per file (database, WAL)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_all(Path(tmp), args.corruptions, args.seed)
    print(f"{'fault':<15}{'tries':>7}" + "".join(f"{o:>15}" for o in OUTCOMES))
    for name, tally in results.items():
        print(f"{name:<15}{sum(tally.counts.values()):>7}"
              + "".join(f"{tally.counts[o]:>15}" for o in OUTCOMES))
    for name, tally in results.items():
        for example in tally.examples:
            print(f"{name}: {example}")
    bad = sum(t.counts["wrong data"] + t.counts["raw exception"] for t in results.values())
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
