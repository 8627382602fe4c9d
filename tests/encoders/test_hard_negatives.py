"""Hard negatives: mined bands against a numpy exact search; sampling between band and corpus."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from ebr.encoders.training.hard_negatives import HardNegatives


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def reference_band(queries: np.ndarray, positives: list[set[int]], corpus: np.ndarray,
                   band: tuple[int, int]) -> list[list[int]]:
    """Ranks low..high (1-based) of each query's exact ranking, without its positives."""
    order = np.argsort(-(queries.astype(np.float64) @ corpus.astype(np.float64).T), axis=1, kind="stable")
    low, high = band
    return [[int(d) for d in order[i, low - 1:high] if int(d) not in positives[i]]
            for i in range(len(queries))]


@pytest.mark.parametrize(("band", "corpus_size"),
                         [((1, 10), 60), ((11, 30), 60), ((5, 5), 60), ((41, 80), 60), ((61, 70), 60),
                          ((3, 200), 60)])
def test_mine_keeps_the_band_minus_positives(band: tuple[int, int], corpus_size: int) -> None:
    rng = np.random.default_rng(sum(band))
    corpus = unit(rng.normal(size=(corpus_size, 8)))
    queries = unit(rng.normal(size=(12, 8)))
    scores = queries @ corpus.T
    assert all(len(set(np.round(row, 5))) == corpus_size for row in scores)  # distinct: one true ranking
    order = np.argsort(-scores, axis=1)
    # Positives both inside and outside the band, and one query with none.
    positives = [{int(order[i, band[0] - 1]) if band[0] <= corpus_size else 0, int(order[i, 0]),
                  int(order[i, -1])} for i in range(11)] + [set()]
    mined = HardNegatives.mine(queries, positives, corpus, band, easy_hard_ratio=2.0)
    width = band[1] - band[0] + 1
    assert mined.candidates.shape == (12, width) and mined.candidates.dtype == np.int64
    assert mined.corpus_size == corpus_size and mined.easy_hard_ratio == 2.0
    expected = reference_band(queries, positives, corpus, band)
    for i in range(12):
        row = mined.candidates[i].tolist()
        assert row == expected[i] + [-1] * (width - len(expected[i]))  # in rank order, then padding
        assert not set(row) & positives[i]


def test_mine_pads_when_the_corpus_is_small() -> None:
    corpus = np.eye(4, dtype=np.float32)
    queries = unit(np.array([[4.0, 3.0, 2.0, 1.0]]))
    mined = HardNegatives.mine(queries, [set()], corpus, (2, 6), 1.0)
    assert mined.candidates.tolist() == [[1, 2, 3, -1, -1]]
    mined = HardNegatives.mine(queries, [{2}], corpus, (2, 6), 1.0)
    assert mined.candidates.tolist() == [[1, 3, -1, -1, -1]]
    mined = HardNegatives.mine(queries, [set()], corpus, (5, 6), 1.0)  # the band starts past the corpus
    assert mined.candidates.tolist() == [[-1, -1]]


def test_sample_with_ratio_zero_always_takes_the_band() -> None:
    hard = HardNegatives(np.array([[7, 3, 9, -1, -1], [-1, -1, -1, -1, -1]], dtype=np.int64), 0.0, 1000)
    rng = random.Random(0)
    drawn = Counter(hard.sample(0, rng) for _ in range(3000))
    assert set(drawn) == {7, 3, 9}
    assert all(900 < n < 1100 for n in drawn.values())  # uniform over the band


def test_sample_falls_back_to_random_when_the_band_is_empty() -> None:
    hard = HardNegatives(np.full((2, 4), -1, dtype=np.int64), 0.0, 50)
    rng = random.Random(1)
    drawn = [hard.sample(1, rng) for _ in range(2000)]
    assert all(0 <= d < 50 for d in drawn)
    assert len(set(drawn)) == 50


def test_sample_with_a_huge_ratio_is_nearly_always_random() -> None:
    hard = HardNegatives(np.array([[5, -1]], dtype=np.int64), 1e6, 100_000)
    rng = random.Random(2)
    drawn = [hard.sample(0, rng) for _ in range(5000)]
    assert drawn.count(5) <= 2
    assert len(set(drawn)) > 4800  # about 125 birthday collisions are expected among 5000 of 100000


@pytest.mark.parametrize(("ratio", "expected_random"), [(1.0, 0.5), (3.0, 0.75), (100.0, 100 / 101)])
def test_sample_mixes_at_the_ratio(ratio: float, expected_random: float) -> None:
    # Band members are 0-9; the "random" draws come from a corpus of 10^6, so a draw below 10
    # is almost surely from the band.
    hard = HardNegatives(np.arange(10, dtype=np.int64)[None, :], ratio, 1_000_000)
    rng = random.Random(3)
    draws = 20_000
    from_band = sum(hard.sample(0, rng) < 10 for _ in range(draws))
    assert from_band / draws == pytest.approx(1 - expected_random, abs=0.015)
