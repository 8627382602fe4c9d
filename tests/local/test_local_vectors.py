"""Exact distances: the float32 screen plus float64 re-check decides every radius and every
top-K cut-off exactly as the reference's float64 formula does, even when the cut-off is
one of the distances."""

from __future__ import annotations

import numpy as np
import pytest

from ebr.stores.local import vectors
from ebr.stores.local.bitmaps import from_array
from ebr.stores.local.vectors import QueryDistances, VectorTable
from ebr.stores.reference import cosine_distance


def _table(n: int, d: int, seed: int) -> tuple[VectorTable, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.1, 10, (n, 1)).astype(
        np.float32)
    table = VectorTable.empty(d).appended(np.arange(n, dtype=np.uint32), matrix,
                                          np.full(n, -1, np.int32))
    q = rng.normal(size=d).astype(np.float32)
    truth = np.array([cosine_distance(q, row) for row in matrix])
    return table, q, truth


@pytest.mark.parametrize("d", [8, 128])
def test_radius_on_a_distance_decides_like_float64(d: int) -> None:
    table, q, truth = _table(400, d, seed=d)
    rows = np.arange(400, dtype=np.int64)
    distances = QueryDistances(table, q)
    for j in range(0, 400, 7):
        inside, _ = distances.within(rows, float(truth[j]))
        assert np.array_equal(inside, truth <= truth[j]), j


def test_top_k_is_the_k_smallest_by_distance_then_id() -> None:
    table, q, truth = _table(500, 64, seed=3)
    # repeated rows make exact ties, broken by id (ids here sort opposite to rows)
    table = table.appended(np.arange(500, 520, dtype=np.uint32), table.matrix[:20].copy(),
                           np.full(20, -1, np.int32))
    truth = np.concatenate([truth, truth[:20]])
    rows = np.arange(520, dtype=np.int64)
    ids = [f"id{999 - r:03d}" for r in range(520)]
    for k in (1, 5, 20, 50, 519, 520, 600):
        got_rows, got = QueryDistances(table, q).nearest(rows, k, ids.__getitem__)
        want = sorted(zip(truth.tolist(), ids, range(520), strict=True))[:k]
        assert sorted(got_rows.tolist()) == sorted(r for _, _, r in want), k
        np.testing.assert_allclose(got, truth[got_rows], rtol=1e-12)


def test_screen_is_within_its_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "BLOCK", 7)  # several blocks
    for d in (3, 64, 700):
        table, q, truth = _table(300, d, seed=d)
        screened = QueryDistances(table, q).screen(np.arange(300, dtype=np.int64)[::-1].copy())
        assert np.max(np.abs(screened - truth[::-1])) <= vectors.margin(d) / 2


def test_appending_keeps_older_tables_valid() -> None:
    """A search on an older snapshot keeps its rows while a writer appends in place."""
    first = VectorTable.empty(2).appended(np.array([0], np.uint32),
                                          np.array([[1, 0]], np.float32), np.array([-1], np.int32))
    second = first.appended(np.array([1], np.uint32), np.array([[0, 1]], np.float32),
                            np.array([-1], np.int32))
    third = first.appended(np.array([5], np.uint32), np.array([[3, 3]], np.float32),
                           np.array([-1], np.int32))  # a failed write's successor reuses the slot
    assert first.rows == 1 and list(first.present) == [0]
    assert second.rows == 2 and list(second.present) == [0, 1]
    assert third.row_of(np.array([5], np.uint32)).tolist() == [1]
    np.testing.assert_array_equal(first.matrix[:1], [[1, 0]])


def test_load_orders_rows_by_document() -> None:
    table = VectorTable.load(2, np.array([7, 2, 5], np.uint32),
                             np.array([[7, 0], [2, 0], [5, 0]], np.float32),
                             np.array([1, -1, 0], np.int32))
    assert table.docnums[: table.rows].tolist() == [2, 5, 7]
    assert table.row_of(np.array([7, 2], np.uint32)).tolist() == [2, 0]
    assert table.matrix[2, 0] == 7 and table.clusters[: table.rows].tolist() == [-1, 0, 1]


def _laid_out(n: int, d: int, nlist: int, seed: int) -> tuple[VectorTable, np.ndarray, np.ndarray]:
    """A table of ``n`` random rows over ``nlist`` clusters, its body sorted by cluster."""
    table, q, truth = _table(n, d, seed)
    clusters = np.random.default_rng(seed).integers(0, nlist, n).astype(np.int32)
    return table.with_clusters(clusters, nlist), q, truth


@pytest.mark.parametrize("d", [3, 128])
def test_scanned_slices_are_within_the_margin(d: int) -> None:
    table, q, truth = _laid_out(500, d, nlist=6, seed=d)
    slices, tail = table.probed((4, 0, 5))
    rows, dist = QueryDistances(table, q).scan(slices, tail)
    assert sorted(rows.tolist()) == np.flatnonzero(
        np.isin(table.clusters[:500], (4, 0, 5))).tolist()
    docs = table.docnums[rows]  # documents were numbered as the rows of _table
    assert np.max(np.abs(dist - truth[docs])) <= vectors.margin(d) / 2


def test_scan_near_keeps_the_scanned_rows_within_the_limit_tail_included() -> None:
    table, q, _ = _laid_out(400, 8, nlist=5, seed=3)
    rng = np.random.default_rng(3)
    more = rng.standard_normal((60, 8)).astype(np.float32)
    table = table.appended(np.arange(400, 460, dtype=np.uint32), more,
                           rng.integers(0, 5, 60).astype(np.int32))  # a tail of rows
    for probes in ((2,), (4, 0, 1), (0, 1, 2, 3, 4)):
        slices, tail = table.probed(probes)
        assert len(tail)  # not vacuous: tail rows are mapped too
        rows, dist = QueryDistances(table, q).scan(slices, tail)
        for limit in (-1.0, 0.6, 1.0, 3.0):
            near, near_dist = QueryDistances(table, q).scan_near(slices, tail, limit)
            keep = dist <= limit
            assert near.tolist() == rows[keep].tolist()
            assert near_dist.tolist() == dist[keep].tolist()


def test_nearest_admitted_is_the_nearest_among_the_admitted() -> None:
    table, q, truth = _laid_out(600, 16, nlist=5, seed=11)
    slices, tail = table.probed((1, 2, 3))
    rng = np.random.default_rng(0)
    ids = [f"id{r:03d}" for r in range(600)]
    for share in (1.0, 0.3, 0.02):
        admitted = from_array(np.flatnonzero(rng.random(600) < share))
        query = QueryDistances(table, q)
        rows, dist = query.scan(slices, tail)
        pool = [r for r in rows.tolist() if int(table.docnums[r]) in admitted]
        for k in (1, 7, 40):
            got = query.nearest_admitted(rows, dist, admitted, k,
                                         lambda r: ids[int(table.docnums[r])])
            if len(pool) < k:
                assert got is None
                continue
            assert got is not None
            want = sorted((truth[table.docnums[r]], ids[table.docnums[r]], r) for r in pool)[:k]
            assert sorted(got[0].tolist()) == sorted(r for _, _, r in want), (share, k)


@pytest.mark.parametrize("seed", range(6))
def test_the_near_bound_leaves_out_only_rows_that_cannot_count(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``within``, ``nearest`` and ``scan_near`` screen only the rows past a bound on the
    float32 inner product; they decide as screening every row does, on small integer vectors
    (distances tie with the cut-off), scaled copies (row lengths from 0.01 to 1000), opposite
    vectors (negative cosines) and radii from 0 to past 1."""
    monkeypatch.setattr(vectors, "NEAR_BOUND_ROWS", 1)  # the bound however few the rows
    rng = np.random.default_rng(seed)
    base = rng.integers(-3, 4, (60, 6)).astype(np.float32)
    base[np.abs(base).sum(axis=1) == 0, 0] = 1  # no zero vectors
    matrix = np.concatenate([base, base * 1000, base * 0.01, -base])
    n = len(matrix)
    clusters = rng.integers(0, 4, n).astype(np.int32)
    table = VectorTable.empty(6).appended(np.arange(n, dtype=np.uint32), matrix,
                                          clusters).with_clusters(clusters, 4)
    q = base[rng.integers(0, 60)] + (rng.integers(-1, 2, 6) if seed % 2 else 0)
    q = (q if np.abs(q).sum() else base[0]).astype(np.float32)
    rows = np.sort(rng.choice(n, 150, replace=False)).astype(np.int64)
    ids = [f"id{r:03d}" for r in range(n)]
    every = QueryDistances(table, q)
    screened = every.screen(rows)
    for radius in (0.0, 0.05, 0.2, 0.5, 1.0, 1.3, 2.0):
        inside, exact = QueryDistances(table, q).within(rows, radius)
        want_inside, want_exact = every.decide(rows, screened, radius)
        assert inside.tolist() == want_inside.tolist() and exact.tolist() == want_exact.tolist()
        slices, tail = table.probed((0, 2, 3))
        all_rows, all_dist = QueryDistances(table, q).scan(slices, tail)
        near, near_dist = QueryDistances(table, q).scan_near(slices, tail, radius)
        keep = all_dist <= radius
        assert near.tolist() == all_rows[keep].tolist()
        assert near_dist.tolist() == all_dist[keep].tolist()
    for k in (1, 3, 10, 40, 149, 150, 200):
        got_rows, got = QueryDistances(table, q).nearest(rows, k, ids.__getitem__)
        want_rows, want = every.rank(rows, screened, k, ids.__getitem__)
        assert sorted(got_rows.tolist()) == sorted(want_rows.tolist()), k
        assert sorted(got.tolist()) == sorted(want.tolist()), k
