"""bench/embedded_peers.py measures right: its exact answers and recall, and each engine's query
path returns exactly the exact answers where its index is exhaustive (nprobe = nlist)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import embedded_peers as peers  # noqa: E402

N, DIM, NLIST, TERMS = 600, 16, 8, 5


@pytest.fixture(scope="module")
def workload() -> peers.Workload:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:7] + 0.3 * rng.standard_normal((7, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # A radius no document's distance lies near, so float rounding cannot decide a boundary.
    distances = np.sort((1.0 - queries @ vectors.T).ravel())
    gaps = np.diff(distances)
    around = np.flatnonzero((distances[:-1] > 0.6) & (gaps > 2e-4))[0]
    radius = float(distances[around] + gaps[around] / 2)
    terms = rng.integers(0, TERMS, N)
    return peers.Workload("tiny", "tiny", peers.Settings("location", NLIST, NLIST, radius, k=10),
                          vectors, terms, [f"l{t}" for t in range(TERMS)], queries,
                          terms[:7].copy(), warmup=1)


def brute_force(w: peers.Workload, qi: int) -> tuple[set[int], set[int], list[int]]:
    """Radius matches with and without the term, and the term's top k, one document at a time."""
    q, term = w.queries[qi], w.query_terms[qi]
    cos = {i: float(np.dot(w.vectors[i], q)) for i in range(len(w.vectors))}
    radius = {i for i, c in cos.items() if 1.0 - c <= w.settings.radius}
    hybrid = {i for i in radius if w.terms[i] == term}
    top = sorted((i for i in cos if w.terms[i] == term), key=lambda i: -cos[i])[: w.settings.k]
    return hybrid, radius, top


def test_exact_answers_agree_with_brute_force(workload: peers.Workload) -> None:
    exact = peers.exact_answers(workload, workload.measured)
    assert len(exact.radius) == len(workload.measured)
    for j, qi in enumerate(workload.measured):
        hybrid, radius, top = brute_force(workload, qi)
        assert set(exact.hybrid_radius[j].tolist()) == hybrid
        assert set(exact.radius[j].tolist()) == radius
        assert exact.hybrid_topk[j].tolist() == top
    assert any(len(h) for h in exact.hybrid_radius)  # the radius selects something


def test_mean_recall_skips_empty_answers() -> None:
    ids = [np.array([1, 2]), np.array([5]), np.array([7])]
    exact = [np.array([1, 2, 3]), np.array([], np.int64), np.array([7, 8])]
    assert peers.mean_recall(ids, exact) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert math.isnan(peers.mean_recall([np.array([1])], [np.array([], np.int64)]))


def test_term_bitmap_is_what_faiss_reads() -> None:
    mask = np.zeros(21, bool)
    mask[[0, 9, 20]] = True
    bitmap = peers.term_bitmap(mask)
    selector = peers.faiss.IDSelectorBitmap(21, peers.faiss.swig_ptr(bitmap))
    assert [i for i in range(21) if selector.is_member(i)] == [0, 9, 20]


def check_exhaustive(engine: str, w: peers.Workload, tmp_path: Path) -> None:
    """At nprobe = nlist every query kind returns the exact answer (recall 1 in run_queries
    too, which pairs the measured queries with their exact answers)."""
    chosen = peers.ENGINES[engine]
    chosen.build(w, tmp_path / engine)
    opened = chosen.open(tmp_path / engine, w.settings)
    try:
        exact = peers.exact_answers(w, w.measured)
        for j, qi in enumerate(w.measured):
            term = w.term_of(qi)
            answers = (opened.hybrid_radius(w.queries[qi], term), opened.radius(w.queries[qi]),
                       opened.hybrid_topk(w.queries[qi], term))
            for found, want in zip(answers, (exact.hybrid_radius[j], exact.radius[j],
                                             exact.hybrid_topk[j]), strict=True):
                assert sorted(peers.numbers(found).tolist()) == sorted(want.tolist())
        for kind in peers.run_queries(opened, w, exact):
            assert kind.recall == 1.0
    finally:
        opened.close()


@pytest.mark.parametrize("engine", ["ebr", "faiss"])
def test_engine_paths_are_exact_when_exhaustive(engine: str, workload: peers.Workload,
                                                tmp_path: Path) -> None:
    check_exhaustive(engine, workload, tmp_path)


def test_lancedb_path_is_exact_when_exhaustive(workload: peers.Workload, tmp_path: Path) -> None:
    check_exhaustive("lancedb", workload, tmp_path)


def test_table_gives_ratios_and_judges_targets(workload: peers.Workload) -> None:
    def figures(scale: float, recall: float) -> peers.Figures:
        kind = peers.Latency(1.0 * scale, 4.0 * scale, recall, 10.0)
        return peers.Figures(10.0 * scale, 0.5 * scale, 500.0 * scale, kind, kind, kind)

    meets = peers.table(workload, {"ebr": figures(2.0, 1.0), "faiss": figures(1.0, 0.9)},
                        at_scale=True).splitlines()
    assert meets[2].startswith("| hybrid: term AND radius nn")
    assert meets[2].endswith("| 2.0x | <= 2x Faiss (p50 and p99) | yes |")
    assert meets[4].endswith("| yes |")  # recall 1.0
    assert meets[5].endswith("| 1.00 s | 0.50 s | 2.0x | <= 1 s at 1M | yes |")
    assert meets[6].endswith("| <= 800 MiB at 1M | no |")  # 1,000 MiB
    misses = peers.table(workload, {"ebr": figures(2.1, 0.98), "faiss": figures(1.0, 0.9)},
                         at_scale=False).splitlines()
    assert misses[2].endswith("| no |")  # 2.1x
    assert misses[4].endswith("| no |")  # 2.1x and recall 0.98
    assert misses[5].endswith("| <= 1 s at 1M |  |")  # absolute targets judged only at 1M
