"""RecordChecker: why a record cannot be featurized, and agreement with TowerFeaturizer.featurize."""

from __future__ import annotations

from typing import Any

import pytest
from encoder_samples import make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebr.encoders import EncoderInputError, SentencePieceTokenizer, TowerConfig, TowerFeaturizer
from ebr.encoders.features.tower_featurizer import RecordChecker

QUERY = make_config().query  # trigrams(text), country(country, single-valued), transformer(text)
# words(title), trigrams(title), category(categories, multi-valued, weighted), transformer(title)
DOC = make_config().doc


@pytest.mark.parametrize(
    "record",
    [
        {"text": "cordless drill"},
        {"text": "", "country": "us"},
        {"text": "drill", "country": 7, "unrelated": [1, 2]},
        {"text": "drill", "country": None},
    ],
)
def test_good_query_records(record: dict[str, Any]) -> None:
    assert RecordChecker(QUERY)(record) is None


@pytest.mark.parametrize(
    "record",
    [
        {"title": "Drill"},
        {"title": "Drill", "categories": None},
        {"title": "Drill", "categories": "tools"},
        {"title": "Drill", "categories": ["tools", 3]},
        {"title": "Drill", "categories": {"tools": 1.0, "power": 0}},
    ],
)
def test_good_doc_records(record: dict[str, Any]) -> None:
    assert RecordChecker(DOC)(record) is None


@pytest.mark.parametrize(
    ("tower", "record", "message"),
    [
        (QUERY, {}, "field 'text' (channel 'trigrams') must be a string, got nothing"),
        (QUERY, {"country": "us"}, "field 'text' (channel 'trigrams') must be a string, got nothing"),
        (QUERY, {"text": None}, "field 'text' (channel 'trigrams') must be a string, got nothing"),
        (QUERY, {"text": 12}, "field 'text' (channel 'trigrams') must be a string, got int"),
        (QUERY, {"text": ["a"]}, "field 'text' (channel 'trigrams') must be a string, got list"),
        (QUERY, {"text": "a", "country": ["us"]},
         "categorical 'country', sample 0: single-valued feature, expected a string or integer, got list"),
        (QUERY, {"text": "a", "country": True},
         "categorical 'country', sample 0: single-valued feature, expected a string or integer, got bool"),
        (DOC, {"text": "Drill"}, "field 'title' (channel 'title_words') must be a string, got nothing"),
        (DOC, {"title": b"Drill"}, "field 'title' (channel 'title_words') must be a string, got bytes"),
        (DOC, {"title": "Drill", "categories": {"tools": -1}},
         "categorical 'category', sample 0: weight of 'tools' must be a finite number >= 0, got -1"),
        (DOC, {"title": "Drill", "categories": [1.5]},
         "categorical 'category', sample 0: value 1.5 is not a string or integer"),
        (DOC, {"title": "Drill", "categories": 2.0},
         "categorical 'category', sample 0: expected a list of values or a value→weight mapping, got float"),
    ],
)
def test_bad_records_say_why(tower: TowerConfig, record: dict[str, Any], message: str) -> None:
    assert RecordChecker(tower)(record) == message


def test_not_a_mapping() -> None:
    assert RecordChecker(QUERY)(["text"]) == "expected a record (mapping of fields), got list"  # type: ignore[arg-type]


# -- agreement with featurize -------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                     st.text(max_size=8), st.binary(max_size=3))
_values = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)),
                    st.one_of(st.floats(allow_nan=True), st.integers(-2, 2), st.booleans()), max_size=3),
)
# Weighted towards valid values so that both outcomes occur often.
_text_or_not = st.one_of(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8), _values)
_category = st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), max_size=3), _values)
_records = st.fixed_dictionaries({"text": _text_or_not, "title": _text_or_not},
                                 optional={"country": _category, "categories": _category, "other": _values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=_records, which=st.sampled_from(["query", "doc"]))
def test_checker_agrees_with_featurize(tokenizer: SentencePieceTokenizer, record: dict[str, Any],
                                       which: str) -> None:
    tower = QUERY if which == "query" else DOC
    problem = RecordChecker(tower)(record)
    featurizer = TowerFeaturizer(tower, tokenizer=tokenizer)
    if problem is None:
        batch = featurizer.featurize([record])
        assert set(batch) == {c.name for c in tower.channels}
    else:
        with pytest.raises(EncoderInputError) as caught:
            featurizer.featurize([record])
        # featurize places the error in the batch; the checker names the same problem.
        assert problem in str(caught.value)


def test_featurize_agrees_on_the_known_examples(tokenizer: SentencePieceTokenizer) -> None:
    good = {"title": "Drill", "categories": {"tools": 2}}
    bad = {"title": "Drill", "categories": {"tools": float("inf")}}
    featurizer = TowerFeaturizer(DOC, tokenizer=tokenizer)
    assert RecordChecker(DOC)(good) is None
    featurizer.featurize([good])
    assert RecordChecker(DOC)(bad) is not None
    with pytest.raises(EncoderInputError, match="weight of 'tools' must be a finite number >= 0, got inf"):
        featurizer.featurize([good, bad])
