"""The vector layout: rows sorted by coarse cluster (a probe scans slices) plus an append
tail, kept through appends, deletes, retraining and reopening; the two ways a probing clause
reads its clusters (bitmap-first or scan-first) give the same results, and the stats say
which one the cost estimate chose.  (The hypothesis differential tests check both reads
against the reference evaluator over random histories.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from local_corpus import SYNTHETIC_SCHEMA, query_vector, synthetic
from test_local_store import summary

from ebr.stores.local import LocalStore, execution
from ebr.stores.local.vectors import VectorTable
from ebr.stores.protocol import ProbeChoice, search_text


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    store = LocalStore.create(tmp_path / "index", SYNTHETIC_SCHEMA, exact_threshold=0)
    store.add(synthetic(400))
    store.train_quantizers(seed=3)
    yield store
    store.close()


def check_layout(table: VectorTable, nlist: int) -> None:
    """Body sorted by cluster with ``starts`` delimiting each, tail in document order, and
    every row found again by its document."""
    n, body = table.rows, table.body
    clusters, docnums = table.clusters[:n], table.docnums[:n]
    assert len(table.starts) == nlist + 1 and table.starts[-1] == body
    for c in range(nlist):
        assert (clusters[table.starts[c]:table.starts[c + 1]] == c).all()
    assert (np.diff(docnums[body:].astype(np.int64)) > 0).all()
    np.testing.assert_array_equal(table.row_of(docnums), np.arange(n))
    for probes in ((0,), (3, 1), tuple(range(nlist))):
        slices, tail = table.probed(probes)
        rows = np.concatenate([*(np.arange(a, b) for a, b in slices), tail])
        np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(np.isin(clusters, probes)))


def test_rows_are_laid_out_by_cluster_through_appends_and_reopen(
        store: LocalStore, tmp_path: Path) -> None:
    table = store._snapshot.tables["e"]
    assert table.body == table.rows == store.stats().embeddings["e"]
    check_layout(table, 8)
    store.add(synthetic(30, seed=5, start=400))  # the tail
    store.delete([f"doc{i:04d}" for i in range(0, 400, 7)])  # dead rows in the body
    table = store._snapshot.tables["e"]
    assert table.rows - table.body == 30 - sum(d.embeddings == {} for d in synthetic(
        30, seed=5, start=400))
    check_layout(table, 8)
    store.close()
    with LocalStore.open(tmp_path / "index") as reopened:
        table = reopened._snapshot.tables["e"]
        assert table.body == table.rows == reopened.stats().embeddings["e"]
        check_layout(table, 8)


QUERIES = (
    "(nn e :radius 0.6 :nprobe 3)",
    "(nn e :radius 1.2 :nprobe 8)",
    "(and (term loc:l1) (nn e :radius 0.9 :nprobe 4))",
    "(and (or (term loc:l1) (term loc:l2)) (or (term text:red) (nn e :radius 0.7 :nprobe 2)))",
    "(nn e :k 7 :nprobe 2)",
    "(and (term loc:l1) (nn e :k 5 :nprobe 3))",
    "(and (term loc:l9) (nn e :k 3 :nprobe 1))",
)


@pytest.mark.parametrize("text", QUERIES)
def test_both_reads_give_the_same_results(store: LocalStore, text: str) -> None:
    store.add(synthetic(30, seed=5, start=400))
    store.delete([f"doc{i:04d}" for i in range(0, 400, 5)])
    for seed in range(5):
        q = query_vector(seed)
        results = {}
        for read, cost in (("bitmap", 0), ("scan", 10**9)):
            with mock.patch.object(execution, "GATHER_COST", cost):
                results[read] = search_text(store, text, q, size=1000)
            assert {p.read for p in results[read].stats.probes} <= {read}
        assert summary(results["scan"]) == summary(results["bitmap"]), seed
        assert results["scan"].hits or seed  # not vacuous


def test_the_cheaper_read_is_chosen_and_reported(store: LocalStore) -> None:
    q = query_vector(0)
    free = search_text(store, "(nn e :radius 0.6 :nprobe 3)", q)
    (choice,) = free.stats.probes
    assert choice == ProbeChoice("q", "scan", choice.rows, choice.rows) and choice.rows > 0
    assert free.stats.candidates_verified == choice.rows  # every probed row, in place
    tight = search_text(store, "(and (term loc:l9) (nn e :radius 0.6 :nprobe 3))", q)
    (choice,) = tight.stats.probes
    present = store._snapshot.tables["e"].present
    share = len(store._snapshot.term("loc:l9") & present) / len(present)
    assert choice.read == "bitmap" and choice.expected == round(share * choice.rows)
    assert choice.expected * execution.GATHER_COST < choice.rows
    top = search_text(store, "(nn e :k 5 :nprobe 2)", q)
    assert [p.read for p in top.stats.probes] == ["scan"]
    assert top.stats.topk[0].strategy == "probe"
