"""Training metrics against brute-force references and hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ebr.encoders.training.metrics import batch_recall_at_k, knn_recall_at_k, roc_auc


def brute_force_auc(scores: list[float], labels: list[bool]) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


# -- ROC AUC ------------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40))
def test_roc_auc_matches_pairwise_count_with_ties(data: list[tuple[int, bool]]) -> None:
    scores = [s / 2 for s, _ in data]  # few distinct values: many ties
    labels = [y for _, y in data]
    got = roc_auc(scores, labels)
    if all(labels) or not any(labels):
        assert got is None
    else:
        assert got == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_roc_auc_on_continuous_random_scores() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.normal(size=200)
        labels = rng.random(200) < 0.3
        scores[labels] += 0.5
        assert roc_auc(scores, labels) == pytest.approx(
            brute_force_auc(scores.tolist(), labels.tolist()), abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([0.1, 0.9], [False, True], 1.0),
        ([0.9, 0.1], [False, True], 0.0),
        ([0.5, 0.5], [False, True], 0.5),
        ([0.1, 0.4, 0.35, 0.8], [False, False, True, True], 0.75),
        ([1, 1, 1, 2], [True, False, False, True], 0.75),  # (0.5 + 0.5 + 1 + 1) / 4
    ],
)
def test_roc_auc_hand_examples(scores: list[float], labels: list[bool], expected: float) -> None:
    got = roc_auc(scores, labels)
    assert got == pytest.approx(brute_force_auc(scores, labels))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("labels", [[True, True], [False, False, False], []])
def test_roc_auc_of_one_class_is_none(labels: list[bool]) -> None:
    assert roc_auc([0.5] * len(labels), labels) is None


# -- batch recall@k -----------------------------------------------------------------------------

def test_batch_recall_hand_example() -> None:
    query = torch.eye(3)
    doc = torch.tensor([[0.9, 0.1, 0.0],
                        [0.2, 0.5, 0.8],
                        [0.0, 0.6, 0.3]])
    # With query = I, row i of the scores is column i of doc:
    # [0.9, 0.2, 0.0], [0.1, 0.5, 0.6], [0.0, 0.8, 0.3].
    assert torch.equal(query @ doc.T, doc.T)
    # Query 0: own 0.9 is the best, rank 0.  Query 1: own 0.5 < 0.6, rank 1.  Query 2: 0.3 < 0.8, rank 1.
    assert batch_recall_at_k(query, doc, 1) == pytest.approx(1 / 3)
    assert batch_recall_at_k(query, doc, 2) == 1.0
    assert batch_recall_at_k(query, doc, 3) == 1.0


def test_batch_recall_ties_count_against() -> None:
    query = torch.eye(2)
    # Query 0: own 0.5, doc 1 ties it -> rank 1.  Query 1: own 0.5, doc 0 scores 0.0 -> rank 0.
    doc = torch.tensor([[0.5, 0.0], [0.5, 0.5]])
    assert batch_recall_at_k(query, doc, 1) == 0.5
    assert batch_recall_at_k(query, doc, 2) == 1.0
    # Embeddings collapsed to one point: every document ties, nothing is found at k < batch.
    collapsed = torch.ones(4, 3)
    assert batch_recall_at_k(collapsed, collapsed, 1) == 0.0
    assert batch_recall_at_k(collapsed, collapsed, 3) == 0.0
    assert batch_recall_at_k(collapsed, collapsed, 4) == 1.0


def test_batch_recall_matches_a_sort() -> None:
    generator = torch.Generator().manual_seed(0)
    query, doc = torch.randn(32, 8, generator=generator), torch.randn(32, 8, generator=generator)
    scores = (query @ doc.T).numpy()
    for k in (1, 3, 10, 32):
        top = np.argsort(-scores, axis=1)[:, :k]
        expected = np.mean([i in top[i] for i in range(32)])
        assert batch_recall_at_k(query, doc, k) == pytest.approx(expected)


# -- KNN recall@k -------------------------------------------------------------------------------

def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("k", [1, 5, 20, 200])
def test_knn_recall_matches_brute_force(k: int) -> None:
    rng = np.random.default_rng(k)
    corpus = unit(rng.normal(size=(120, 16)))
    queries = unit(rng.normal(size=(30, 16)))
    relevant = [set(rng.choice(120, size=int(rng.integers(0, 6)), replace=False).tolist()) for _ in range(30)]
    top = np.argsort(-(queries @ corpus.T), axis=1)[:, :k]
    expected = np.mean([len(r & set(top[i].tolist())) / len(r) for i, r in enumerate(relevant) if r])
    assert knn_recall_at_k(queries, relevant, corpus, k) == pytest.approx(expected, abs=1e-9)


def test_knn_recall_hand_example() -> None:
    corpus = np.eye(4, dtype=np.float32)
    queries = unit(np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 1.0], [1.0, 0.0, 0.0, 0.0]]))
    relevant = [{0, 2}, {3}, set()]  # query 2 has nothing relevant and does not count
    # Query 0's top 2 are rows 0, 1: one of its two relevant.  Query 1's top 2 are 3, 2.
    assert knn_recall_at_k(queries, relevant, corpus, 2) == pytest.approx((0.5 + 1.0) / 2)
    assert knn_recall_at_k(queries, relevant, corpus, 1) == pytest.approx((0.5 + 1.0) / 2)
    assert knn_recall_at_k(queries, [set(), set(), set()], corpus, 2) == 0.0
