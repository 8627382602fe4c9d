"""Training data: the corpus, positives, the validation split, batches and pseudo-queries."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.training.config import TrainConfig
from ebr.encoders.training.data import (
    Example,
    TrainingData,
    batches,
    epoch_examples,
    in_validation,
    prepare,
    pseudo_query,
    query_key,
    records_texts,
)
from ebr.encoders.training.pairs import Pair

NO_SPLIT = TrainConfig(validation_fraction=0.0)


def q(text: str) -> dict[str, Any]:
    return {"text": text}


# -- prepare ------------------------------------------------------------------------------------

def test_corpus_is_deduplicated_with_the_extra_corpus_first() -> None:
    extra = [{"id": "e1", "title": "extra one"}, {"title": "plain"}, {"id": "e1", "title": "same id"}]
    pairs = [
        Pair(q("a"), {"id": "d1", "title": "one"}, None, 1),
        Pair(q("b"), {"title": "plain"}, None, 2),  # same fields as an extra document
        Pair(q("c"), {"id": "d1", "title": "one, retitled"}, None, 3),  # same id
        Pair(q("d"), {"title": "two"}, None, 4),
        Pair(q("e"), {"id": "e1"}, None, 5),
    ]
    data = prepare(pairs, NO_SPLIT, corpus=extra)
    assert data.corpus == [{"id": "e1", "title": "extra one"}, {"title": "plain"},
                           {"id": "d1", "title": "one"}, {"title": "two"}]
    assert [e.doc for e in data.train] == [2, 1, 2, 3, 0]
    assert data.validation == []


def test_positives_by_threshold_and_unlabelled_are_positive() -> None:
    pairs = [Pair(q("a"), q("x"), 3.0), Pair(q("b"), q("y"), 2.0), Pair(q("c"), q("z"), 1.99),
             Pair(q("d"), q("w"), None), Pair(q("e"), q("v"), -1.0)]
    data = prepare(pairs, TrainConfig(validation_fraction=0.0, positive_threshold=2.0))
    assert data.train == [Example(q("a"), 0, True, True), Example(q("b"), 1, True, True),
                          Example(q("c"), 2, False, True), Example(q("d"), 3, True, False),
                          Example(q("e"), 4, False, True)]
    assert data.train_positives == [data.train[i] for i in (0, 1, 3)]
    # The default threshold 0 makes every non-negative label a positive.
    assert [e.positive for e in prepare(pairs, NO_SPLIT).train] == [True, True, True, True, False]


def test_no_positive_is_an_error() -> None:
    pairs = [Pair(q("a"), q("x"), 0.0), Pair(q("b"), q("y"), 1.0)]
    with pytest.raises(EncoderConfigError) as caught:
        prepare(pairs, TrainConfig(validation_fraction=0.0, positive_threshold=2.0))
    assert str(caught.value) == ("no positive training pair (a pair is positive when it has no label or "
                                 "its label is >= positive_threshold 2)")


def test_no_positive_left_for_training_after_the_split_is_an_error() -> None:
    # q1 is a validation query at 0.3 (see the golden split below): nothing is left to train on.
    with pytest.raises(EncoderConfigError, match="no positive training pair"):
        prepare([Pair(q("q1"), q("x"))], TrainConfig(validation_fraction=0.3))


def test_split_is_a_stable_hash_of_the_query() -> None:
    # Golden: the split must not change between runs, processes or versions (a changed split
    # would train on earlier validation queries).
    assert [i for i in range(40) if in_validation(q(f"q{i}"), 0.3)] == [
        1, 2, 4, 5, 12, 14, 17, 18, 19, 20, 21, 27, 28, 31, 33, 34, 39]
    assert not any(in_validation(q(f"q{i}"), 0.0) for i in range(200))
    assert query_key({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    assert in_validation({"a": "x", "b": "y"}, 0.5) == in_validation({"b": "y", "a": "x"}, 0.5)


def test_validation_split_holds_out_whole_queries() -> None:
    rng = random.Random(3)
    pairs = [Pair(q(f"q{rng.randrange(300)}"), {"id": str(rng.randrange(500))}, None, n) for n in range(2000)]
    config = TrainConfig(validation_fraction=0.3)
    data = prepare(pairs, config)
    train_queries = {query_key(e.query) for e in data.train}
    validation_queries = {query_key(e.query) for e in data.validation}
    assert not train_queries & validation_queries
    assert len(data.train) + len(data.validation) == 2000
    assert all(in_validation(e.query, 0.3) for e in data.validation)
    assert not any(in_validation(e.query, 0.3) for e in data.train)
    assert 0.2 < len(validation_queries) / (len(train_queries) + len(validation_queries)) < 0.4
    again = prepare(list(reversed(pairs)), config)
    assert {query_key(e.query) for e in again.validation} == validation_queries


def test_explicit_validation_pairs_replace_the_split() -> None:
    train = [Pair(q(f"q{i}"), {"id": str(i)}) for i in range(10)]  # q1, q2, q4, q5 would be split off
    validation = [Pair(q("v"), {"id": "3"}), Pair(q("w"), {"id": "new"}, -1.0)]
    data = prepare(train, TrainConfig(validation_fraction=0.3), validation_pairs=validation)
    assert [e.query for e in data.train] == [q(f"q{i}") for i in range(10)]
    assert data.validation == [Example(q("v"), 3, True, False), Example(q("w"), 10, False, True)]
    assert data.corpus[10] == {"id": "new"}  # validation documents join the corpus, after training's


def test_grouped_queries() -> None:
    train = [Pair(q("a"), {"id": "1"}), Pair(q("b"), {"id": "2"}), Pair(q("a"), {"id": "3"}),
             Pair(q("a"), {"id": "1"}), Pair(q("c"), {"id": "4"}, 0.0)]
    validation = [Pair(q("v"), {"id": "2"}), Pair(q("w"), {"id": "5"}, -1.0), Pair(q("v"), {"id": "5"}, 1.0),
                  Pair({"text": "v", "country": "us"}, {"id": "1"})]
    data = prepare(train, TrainConfig(validation_fraction=0.0, positive_threshold=0.5), validation)
    assert data.train_queries() == ([q("a"), q("b")], [{0, 2}, {1}])
    assert data.validation_queries() == ([q("v"), {"text": "v", "country": "us"}], [{1, 4}, {0}])
    assert TrainingData().validation_queries() == ([], [])


# -- batches ------------------------------------------------------------------------------------

def test_batches_defer_a_repeated_document() -> None:
    examples = [(q(str(i)), doc) for i, doc in enumerate([0, 0, 1, 2, 0, 3])]
    got = [[e[0]["text"] for e in batch] for batch in batches(examples, 3)]
    assert got == [["0", "2", "3"], ["1", "5"], ["4"]]


@settings(max_examples=300, deadline=None)
@given(docs=st.lists(st.integers(0, 8), max_size=60), size=st.integers(1, 7))
def test_batches_keep_every_example_once_without_repeats(docs: list[int], size: int) -> None:
    examples = [(q(str(i)), doc) for i, doc in enumerate(docs)]
    result = list(batches(examples, size))
    seen = [int(e[0]["text"]) for batch in result for e in batch]
    assert sorted(seen) == list(range(len(docs)))
    for batch in result:
        assert 1 <= len(batch) <= size
        assert len({doc for _, doc in batch}) == len(batch)
    if docs and size == 1:
        assert len(result) == len(docs)


# -- pseudo-queries -----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab c\t\n"), max_size=40), seed=st.integers(0, 1000))
def test_pseudo_query_is_a_run_of_one_to_four_words(text: str, seed: int) -> None:
    query = pseudo_query({"title": text}, "title", "text", random.Random(seed))
    words = text.split()
    if not words:
        assert query is None
        return
    assert query is not None and set(query) == {"text"}
    run = query["text"].split()
    assert 1 <= len(run) <= min(4, len(words))
    assert query["text"] == " ".join(run)
    assert any(words[i:i + len(run)] == run for i in range(len(words) - len(run) + 1))


@pytest.mark.parametrize("doc", [{}, {"title": None}, {"title": 3}, {"title": ["a b"]}, {"title": " \t"},
                                 {"name": "a b"}])
def test_pseudo_query_needs_text(doc: dict[str, Any]) -> None:
    assert pseudo_query(doc, "title", "text", random.Random(0)) is None


def test_pseudo_query_reaches_every_run() -> None:
    rng = random.Random(1)
    seen = {pseudo_query({"title": "a b c d e"}, "title", "q", rng)["q"] for _ in range(2000)}  # type: ignore[index]
    words = "a b c d e".split()
    assert seen == {" ".join(words[i:i + n]) for n in range(1, 5) for i in range(len(words) - n + 1)}


def corpus_data(corpus_size: int, positives: int) -> TrainingData:
    pairs = [Pair(q(f"q{i}"), {"id": str(i % corpus_size), "title": f"title {i % corpus_size} words here"})
             for i in range(positives)]
    extra = [{"id": str(i), "title": f"title {i} words here"} for i in range(corpus_size)]
    data = prepare(pairs + [Pair(q("neg"), {"id": "0"}, -1.0)], NO_SPLIT, corpus=extra)
    assert len(data.corpus) == corpus_size and len(data.train_positives) == positives
    return data


@pytest.mark.parametrize(("pseudo", "expected_extra"), [(0.0, 0), (0.5, 10), (1.0, 20), (0.26, 5), (2.0, 40)])
def test_epoch_examples_count(pseudo: float, expected_extra: int) -> None:
    data = corpus_data(20, 13)
    config = TrainConfig(validation_fraction=0.0, pseudo_queries=pseudo,
                         pseudo_query_fields=("title", "text"))
    examples = epoch_examples(data, config, random.Random(5))
    assert len(examples) == 13 + expected_extra
    positives = sorted((e.query["text"], e.doc) for e in data.train_positives)
    queries = [(query["text"], doc) for query, doc in examples]
    assert sorted(x for x in queries if x[0].startswith("q")) == positives
    for text, doc in queries:
        if not text.startswith("q"):  # a pseudo-query: words of its own document's title
            assert text in data.corpus[doc]["title"]


def test_epoch_examples_skip_documents_without_the_text() -> None:
    data = corpus_data(4, 4)
    data.corpus[:] = [{"id": str(i)} for i in range(4)]
    examples = epoch_examples(data, TrainConfig(pseudo_queries=5.0), random.Random(0))
    assert len(examples) == 4


def test_epoch_examples_are_deterministic_for_a_seed() -> None:
    data = corpus_data(30, 25)
    config = TrainConfig(pseudo_queries=0.5)
    first = epoch_examples(data, config, random.Random(42))
    assert epoch_examples(data, config, random.Random(42)) == first
    assert epoch_examples(data, config, random.Random(43)) != first
    assert [x[1] for x in first] != sorted(x[1] for x in first)  # shuffled


def test_records_texts() -> None:
    records = [{"title": "a", "text": "b", "n": 1}, {"title": "", "text": None}, {"text": "c"}]
    assert list(records_texts(records, ["title", "text", "n"])) == ["a", "b", "c"]
