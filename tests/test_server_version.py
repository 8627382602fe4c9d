from __future__ import annotations

import pytest

from ebr import ServerVersion, UnsupportedError, compile_search, parse
from ebr.mappings import Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body

SCHEMA = Schema.create("x", (Namespace("t"),))


@pytest.mark.parametrize(("number", "expected"), [
    ("2.19.1", ServerVersion(2, 19, 1)),
    ("3.0.0-SNAPSHOT", ServerVersion(3, 0, 0)),
    ("3.0.0-beta1", ServerVersion(3, 0, 0)),
    ("2.19.0-rc1-SNAPSHOT", ServerVersion(2, 19, 0)),
])
def test_parse(number: str, expected: ServerVersion) -> None:
    assert ServerVersion.parse(number) == expected


def test_from_info_refuses_unknown_distributions() -> None:
    info = {"version": {"distribution": "opensearch", "number": "3.1.0"}}
    assert ServerVersion.from_info(info) == ServerVersion(3, 1, 0)
    with pytest.raises(UnsupportedError, match="override_main_response_version"):
        ServerVersion.from_info({"version": {"number": "7.10.2"}})
    with pytest.raises(UnsupportedError, match="cannot read"):
        ServerVersion.parse("latest")


@pytest.mark.parametrize("number", ["2.18.0", "2.4.0", "1.3.20"])
def test_old_servers_are_refused_with_a_reason(number: str) -> None:
    old = ServerVersion.parse(number)
    with pytest.raises(UnsupportedError, match=f"OpenSearch {number} is too old: .*2.19.0"):
        compile_search(parse("(term t:a)"), SCHEMA, {}, version=old)
    with pytest.raises(UnsupportedError, match="too old"):
        index_body(SCHEMA, version=old)


def test_supported_servers_compile() -> None:
    for number in ("2.19.0", "3.0.0", "3.8.1"):
        body = compile_search(parse("(term t:a)"), SCHEMA, {}, version=ServerVersion.parse(number))
        assert body.body["size"] == 10
