"""A document's source as stored: orjson's JSON where it writes what the standard encoder
writes, the standard encoder's verdict (and error) everywhere else."""

from __future__ import annotations

import json
import math
import uuid
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebr.mappings import Namespace, Schema
from ebr.stores.documents import InvalidDocumentError, InvalidTextError, prepare_batch
from ebr.stores.protocol import IndexDocument

SCHEMA = Schema.create("s", (Namespace("a", "keyword"),), ())
STANDARD = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

_scalars = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text())
JSONISH = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


def _stored(source: Any) -> str:
    return prepare_batch(SCHEMA, [IndexDocument("d", source=source)])[0].source_json


@given(st.dictionaries(st.text(max_size=5), JSONISH, max_size=5))
def test_a_source_reads_back_as_the_standard_encoder_writes_it_or_is_refused_alike(
        source: dict[str, Any]) -> None:
    try:
        expected = STANDARD.encode(source)
        expected.encode("utf-8")
    except (ValueError, UnicodeEncodeError):  # NaN, infinities, lone surrogates
        with pytest.raises(InvalidDocumentError):  # InvalidTextError is one
            _stored(source)
        return
    stored = _stored(source)
    assert json.loads(stored) == json.loads(expected)
    assert "\\u" not in stored or "\\u" in expected  # no ASCII escapes added


@pytest.mark.parametrize(("source", "problem"), [
    ({"x": math.nan}, "Out of range float values"),
    ({"x": [1, {"y": -math.inf}]}, "Out of range float values"),
    ({"x": {1: "a"}}, "object keys must be strings, got 1"),
    ({"x": object()}, "not serialisable as JSON"),
])
def test_what_the_standard_encoder_refuses_is_refused_with_its_reason(
        source: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidDocumentError, match=problem):
        _stored(source)


def test_text_that_is_not_utf8_is_refused_as_such() -> None:
    with pytest.raises(InvalidTextError, match="not valid UTF-8"):
        _stored({"title": "caf\udce9"})


@pytest.mark.parametrize("source", [
    {"big": 1 << 70, "n": None},  # beyond 64 bits, a null: the standard path
    OrderedDict(b=1, a=[1.5, "é"]),  # a mapping subclass
    {"deep": json.loads("[" * 300 + "]" * 300)},  # deeper than orjson nests
])
def test_what_orjson_leaves_is_written_by_the_standard_encoder(source: Any) -> None:
    assert _stored(source) == STANDARD.encode(dict(source))


def test_values_orjson_writes_natively_are_kept_as_their_text() -> None:
    """UUIDs (refused by the standard encoder) are stored as orjson writes them: their text."""
    value = uuid.UUID(int=7)
    assert json.loads(_stored({"u": value})) == {"u": str(value)}
