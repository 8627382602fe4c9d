"""Retrieval metrics against hand-computed values (``ebr.evaluation.metrics``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ebr.evaluation.metrics import (
    RetrievalReport,
    dcg,
    evaluate_rankings,
    mrr_at_k,
    ndcg_at_k,
    ranked_lists,
    recall_at_k,
    top_k_indices,
)

L3 = math.log2(3)  # the discount at rank 2


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        (["a", "b", "c", "d"], {"b", "d", "x"}, 1, 0.0),
        (["a", "b", "c", "d"], {"b", "d", "x"}, 2, 1 / 3),
        (["a", "b", "c", "d"], {"b", "d", "x"}, 4, 2 / 3),
        (["a", "b", "c", "d"], {"b", "d", "x"}, 10, 2 / 3),  # fewer results than k
        ([], {"b"}, 10, 0.0),  # an empty run
        (["b", "a"], ["b", "b"], 1, 1.0),  # relevant is a set: a repeated judgment counts once
    ],
)
def test_recall_at_k(ranked: list[str], relevant: set[str], k: int, expected: float) -> None:
    assert recall_at_k(ranked, relevant, k) == pytest.approx(expected)


def test_dcg_is_linear_gain_over_log2_rank_plus_one() -> None:
    assert dcg([3.0, 2.0, 1.0]) == pytest.approx(3 + 2 / L3 + 1 / 2)
    assert dcg([]) == 0


GAINS = {"b": 2.0, "c": 1.0, "x": 2.0, "z": 0.0}  # a is unjudged; z is judged with gain 0
IDEAL3 = 2 + 2 / L3 + 1 / 2  # the ideal order x, b, c (or b, x, c)


@pytest.mark.parametrize(
    ("ranked", "k", "expected"),
    [
        (["a", "b", "c"], 3, (2 / L3 + 1 / 2) / IDEAL3),  # ≈ 0.4683
        (["a", "b", "c"], 1, 0.0),
        (["a", "b", "c"], 2, (2 / L3) / (2 + 2 / L3)),  # the ideal DCG is cut at k too
        (["x", "b", "c"], 3, 1.0),
        (["b", "x", "c"], 3, 1.0),  # tied gains: either order is ideal
        (["b", "z", "x", "c"], 4, (2 + 2 / math.log2(4) + 1 / math.log2(5)) / IDEAL3),
        (["b"], 10, 2 / IDEAL3),  # fewer results than k: the ideal still counts every judged gain
        ([], 10, 0.0),
    ],
)
def test_ndcg_at_k(ranked: list[str], k: int, expected: float) -> None:
    assert ndcg_at_k(ranked, GAINS, k) == pytest.approx(expected)


def test_ndcg_value_by_hand() -> None:
    assert ndcg_at_k(["a", "b", "c"], GAINS, 3) == pytest.approx(0.468348, abs=1e-6)


def test_ndcg_undefined_without_positive_gain() -> None:
    with pytest.raises(ValueError, match="undefined"):
        ndcg_at_k(["a"], {"a": 0.0}, 10)


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        (["a", "b", "c"], {"c"}, 10, 1 / 3),
        (["a", "b", "c"], {"c", "b"}, 10, 1 / 2),  # the first relevant counts
        (["a", "b", "c"], {"c"}, 2, 0.0),  # past the cut-off
        (["a", "b", "c"], set(), 10, 0.0),
        (["c"], {"c"}, 10, 1.0),
    ],
)
def test_mrr_at_k(ranked: list[str], relevant: set[str], k: int, expected: float) -> None:
    assert mrr_at_k(ranked, relevant, k) == pytest.approx(expected)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(["a"], {"a"}, 0)
    with pytest.raises(ValueError, match="repeats"):
        mrr_at_k(["a", "a"], {"a"}, 10)
    with pytest.raises(ValueError, match="undefined"):
        recall_at_k(["a"], set(), 10)


QRELS = {
    "q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0},  # relevant: d1
    "q2": {"d4": 2.5, "d5": 2.67},  # 2.5 is relevant (>=)
    "q3": {"d6": 2.33},  # no relevant product: excluded from every average
    "q4": {"d7": 3.0},  # no run: scored as an empty ranking
}
RUNS = {"q1": ["d2", "d1", "d9"], "q2": ["d5"], "q3": ["d6"], "unjudged": ["d1"]}


def test_evaluate_by_hand() -> None:
    report = evaluate_rankings(RUNS, QRELS, ks=(1, 2))
    q1_ndcg = (1 + 2 / L3) / (2 + 1 / L3)  # gains d1: 2, d2: 1; ranked d2, d1
    q2_ndcg = 1.67 / (1.67 + 1.5 / L3)  # gains d5: 1.67, d4: 1.5; ranked d5
    assert report.queries == 3
    assert report.missing_runs == 1
    assert report.recall[1] == pytest.approx((0 + 0.5 + 0) / 3)
    assert report.recall[2] == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.ndcg == pytest.approx((q1_ndcg + q2_ndcg + 0) / 3)
    assert report.mrr == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert set(report.per_query) == {"q1", "q2", "q4"}
    assert report.per_query["q1"] == pytest.approx((0.0, 1.0, q1_ndcg, 0.5))


def test_evaluate_threshold_and_table() -> None:
    # With a stricter threshold q2 has no relevant product and drops out.
    report = evaluate_rankings(RUNS, QRELS, ks=(10,), relevant_at=2.7)
    assert report.queries == 2
    assert report.columns() == ["recall@10", "ndcg@10", "mrr@10"]
    assert report.markdown_header().splitlines()[0] == "| system | queries | recall@10 | ndcg@10 | mrr@10 |"
    assert report.markdown_row("s") == "| s | 2 | 0.500 | 0.430 | 0.250 |"
    assert isinstance(report, RetrievalReport)


def test_evaluate_needs_a_relevant_query() -> None:
    with pytest.raises(ValueError, match="no judged query"):
        evaluate_rankings(RUNS, {"q3": QRELS["q3"]})


def test_top_k_indices_breaks_ties_by_index() -> None:
    scores = np.array([[0.1, 0.9, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0, -1.0]])
    assert top_k_indices(scores, 2).tolist() == [[1, 2], [0, 1]]
    assert top_k_indices(scores, 4).tolist() == [[1, 2, 4, 3], [0, 1, 2, 3]]
    assert top_k_indices(scores, 9).shape == (2, 5)  # k larger than the corpus
    assert top_k_indices(np.full((1, 6), 7.0), 3).tolist() == [[0, 1, 2]]


def test_top_k_indices_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(20, 50)).astype(np.float32)  # many ties
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    assert np.array_equal(top_k_indices(scores, 7), expected)


def test_ranked_lists() -> None:
    runs = ranked_lists(["q", "r"], np.array([[2, 0], [1, -1]]), ["a", "b", "c"])
    assert runs == {"q": ["c", "a"], "r": ["b"]}
    with pytest.raises(ValueError, match="shape"):
        ranked_lists(["q"], np.array([1, 2]), ["a", "b", "c"])
