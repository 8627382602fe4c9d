"""opensearch-py's JSON through orjson: the same JSON as the client's own serializer for what
ebr sends, and its errors where that one raises them."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import numpy as np
import pytest

pytest.importorskip("opensearchpy")
from opensearchpy.exceptions import SerializationError  # noqa: E402
from opensearchpy.serializer import JSONSerializer  # noqa: E402

from ebr.stores.opensearch.client import connect  # noqa: E402
from ebr.stores.opensearch.serialization import OrjsonSerializer  # noqa: E402

BODIES: list[Any] = [
    {"size": 10, "query": {"script_score": {"script": {"params": {
        "query_value": np.random.default_rng(0).standard_normal(128).astype(np.float32)
        .tolist()}}}}},
    {"vector": np.arange(4, dtype=np.float32), "n": np.int64(3), "x": np.float32(0.5),
     "flag": np.bool_(True)},
    {"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "day": datetime.date(2026, 1, 2),
     "amount": decimal.Decimal("1.25"), "uid": uuid.UUID(int=7)},
    {"text": "café ß 東京 \u2028", "nested": [{"a": None}, [], {}], "big": 2 ** 53},
    {1: "int key", "k": [1.5, -0.0, 1e-7]},
]


@pytest.mark.parametrize("body", BODIES)
def test_writes_what_the_clients_own_serializer_writes(body: Any) -> None:
    ours, theirs = OrjsonSerializer().dumps(body), JSONSerializer().dumps(body)
    assert isinstance(ours, str)
    assert json.loads(ours) == json.loads(theirs)


def test_bodies_already_serialised_are_sent_as_they_are() -> None:
    assert OrjsonSerializer().dumps('{"a": 1}') == '{"a": 1}'
    assert OrjsonSerializer().dumps(b'{"index": {}}\n{"a": 1}\n') == b'{"index": {}}\n{"a": 1}\n'


def test_reads_answers_and_refuses_what_is_not_json() -> None:
    serializer = OrjsonSerializer()
    assert serializer.loads('{"took": 3, "hits": {"hits": [{"_id": "d1", "_score": 1.5}]}}') == {
        "took": 3, "hits": {"hits": [{"_id": "d1", "_score": 1.5}]}}
    with pytest.raises(SerializationError):
        serializer.loads("{not json")
    with pytest.raises(SerializationError):
        serializer.dumps({"x": object()})


def test_the_store_client_uses_it() -> None:
    client = connect("http://127.0.0.1:9")
    try:
        assert isinstance(client.transport.serializer, OrjsonSerializer)
        assert isinstance(client.transport.deserializer.loads("{}", "application/json"), dict)
        assert type(client.transport.deserializer.serializers["application/json"]) is (
            OrjsonSerializer)
    finally:
        client.close()
