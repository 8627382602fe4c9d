"""The rows of a constraint term, kept between searches, and their probed clusters."""

from __future__ import annotations

import gc
import weakref

import numpy as np
from pyroaring import FrozenBitMap

from ebr.stores.local.bitmaps import from_array
from ebr.stores.local.term_rows import TermRows, in_clusters
from ebr.stores.local.vectors import VectorTable


def _table(seed: int) -> VectorTable:
    """300 rows in 7 clusters laid out by cluster, then a tail of 40 (documents 0..339, the
    even-numbered ones below 100 without this key)."""
    rng = np.random.default_rng(seed)
    docs = np.array([d for d in range(300) if d >= 100 or d % 2], np.uint32)
    table = VectorTable.load(4, docs, rng.standard_normal((len(docs), 4)).astype(np.float32),
                             rng.integers(0, 7, len(docs)).astype(np.int32), nlist=7)
    return table.appended(np.arange(300, 340, dtype=np.uint32),
                          rng.standard_normal((40, 4)).astype(np.float32),
                          rng.integers(0, 7, 40).astype(np.int32))


def test_in_clusters_is_the_rows_of_the_probed_clusters() -> None:
    table = _table(1)
    rng = np.random.default_rng(2)
    for _ in range(20):
        rows = np.sort(rng.choice(table.rows, rng.integers(0, 120), replace=False))
        probes = tuple(rng.choice(9, rng.integers(1, 6), replace=False).tolist())  # 7, 8: none
        got = in_clusters(table, rows.astype(np.int64), probes)
        want = rows[np.isin(table.clusters[rows], probes)]
        assert sorted(got.tolist()) == want.tolist()
        assert len(set(got.tolist())) == len(got)


def test_term_rows_are_the_present_documents_rows_and_are_kept_per_table_and_posting() -> None:
    table = _table(3)
    posting = FrozenBitMap(from_array(np.arange(0, 400, 3)))  # some without the key, some past span
    kept = TermRows()
    rows = kept.rows("e", "t:a", table, posting)
    docs = [d for d in range(0, 400, 3) if d in table.present]
    assert sorted(table.docnums[rows].tolist()) == docs and rows.tolist() == sorted(rows.tolist())
    assert kept.rows("e", "t:a", table, posting) is rows  # the same objects: kept
    changed = FrozenBitMap(posting - FrozenBitMap([3]))  # a write made a new posting list
    again = kept.rows("e", "t:a", table, changed)
    assert again is not rows and 3 not in table.docnums[again].tolist()
    relaid = table.compacted(7)  # a new table object: its rows are looked up afresh
    assert sorted(relaid.docnums[kept.rows("e", "t:a", relaid, changed)].tolist()) == docs[1:]


def test_term_rows_keep_at_most_max_rows() -> None:
    table = _table(4)
    kept = TermRows(max_rows=100)
    a = FrozenBitMap(range(100, 160))
    first = kept.rows("e", "t:a", table, a)
    assert kept.rows("e", "t:a", table, a) is first
    kept.rows("e", "t:b", table, FrozenBitMap(range(160, 220)))  # 120 rows: t:a goes
    assert kept.rows("e", "t:a", table, a) is not first
    big = FrozenBitMap(range(100, 300))  # more than max_rows: answered, not kept
    assert kept.rows("e", "t:c", table, big) is not kept.rows("e", "t:c", table, big)


def test_an_entry_does_not_keep_a_replaced_table_alive() -> None:
    """A write or a re-layout replaces the table (training: a new copy of every vector); an
    entry made from the old one must not keep its buffers in memory."""
    table = _table(5)
    kept = TermRows()
    kept.rows("e", "t:a", table, FrozenBitMap(range(100, 160)))
    old = weakref.ref(table)
    table = table.compacted(7)  # what a re-layout publishes instead
    kept.rows("e", "t:b", table, FrozenBitMap(range(160, 170)))
    gc.collect()
    assert old() is None
    # and the entry of the table gone is not served for the new one
    rows = kept.rows("e", "t:a", table, FrozenBitMap(range(100, 160)))
    assert sorted(table.docnums[rows].tolist()) == list(range(100, 160))
