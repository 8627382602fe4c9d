"""The osmem test harness (tests/support/osmem.py) and the emulator semantics ebr relies on.

The boolean skeleton of compiled queries is checked against osmem, so these tests pin down
what must hold there (and on a real OpenSearch): filter/should/must_not semantics, a bool with
only must_not, ids, match_none/match_all, terms/exists, ``_name`` -> ``matched_queries`` and
nested bools. Every expected id set is written out by hand from ``DOCS``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.osmem import (
    OsmemUnavailable,
    SearchTruncatedError,
    load_documents,
    osmem_client_or_skip,
    running_osmem,
    search_ids,
    search_matched,
)

opensearchpy = pytest.importorskip("opensearchpy")

REPO_ROOT = Path(__file__).resolve().parents[1]

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "terms": {
            "properties": {
                "location": {"type": "keyword"},
                "text": {"type": "keyword"},
            }
        }
    },
}

DOCS: list[tuple[str, dict[str, Any]]] = [
    ("d1", {"terms": {"location": ["paris"], "text": ["cat", "dog"]}}),
    ("d2", {"terms": {"location": ["berlin"], "text": ["cat"]}}),
    ("d3", {"terms": {"location": ["paris", "london"], "text": ["fish"]}}),
    ("d4", {"terms": {"location": ["london"], "text": ["dog", "bird"]}}),
    ("d5", {"terms": {"location": [], "text": ["cat"]}}),  # no location
    ("d6", {"terms": {"location": ["tokyo"], "text": []}}),  # no text
]
ALL = {"d1", "d2", "d3", "d4", "d5", "d6"}
SIZE = len(DOCS)


def term(field: str, value: str, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"value": value}
    if name is not None:
        body["_name"] = name
    return {"term": {f"terms.{field}": body}}


def bool_(**clauses: Any) -> dict[str, Any]:
    return {"bool": clauses}


@pytest.fixture(scope="module")
def corpus(osmem_client: Any) -> Iterator[str]:  # noqa: F811  (fixture parameter)
    index = f"ebr-osmem-support-{uuid.uuid4().hex[:8]}"
    load_documents(osmem_client, index, MAPPINGS, DOCS)
    yield index
    osmem_client.indices.delete(index=index)


def ids_of(client: Any, index: str, query: dict[str, Any]) -> set[str]:
    return search_ids(client, index, query, SIZE)


# ---------------------------------------------------------------------------------------------
# Harness


def test_load_documents_creates_index_as_asked(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    index = osmem_client.indices.get(index=corpus)[corpus]
    assert index["settings"]["index"]["number_of_replicas"] == "0"
    assert index["mappings"]["properties"]["terms"]["properties"] == {
        "location": {"type": "keyword"},
        "text": {"type": "keyword"},
    }
    assert osmem_client.count(index=corpus)["count"] == 6
    assert search_ids(osmem_client, corpus, {"match_all": {}}, 6) == ALL


def test_search_ids_refuses_to_truncate(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    with pytest.raises(SearchTruncatedError, match="matched 6 documents but size=5"):
        search_ids(osmem_client, corpus, {"match_all": {}}, 5)
    with pytest.raises(SearchTruncatedError):
        search_ids(osmem_client, corpus, term("location", "paris"), 1)  # d1, d3
    assert search_ids(osmem_client, corpus, {"match_none": {}}, 0) == set()


def test_load_documents_fails_loudly(osmem_client: Any) -> None:  # noqa: F811
    index = f"ebr-osmem-bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ValueError, match="duplicate document ids"):
        load_documents(osmem_client, index, MAPPINGS, [("x", {}), ("x", {})])
    # A field the strict mapping does not know: the bulk item fails, so must the helper.
    with pytest.raises(opensearchpy.helpers.BulkIndexError):
        load_documents(osmem_client, index, MAPPINGS, [("x", {"terms": {"locaton": ["paris"]}})])
    # The index now exists: creating it again must not be silently ignored.
    with pytest.raises(opensearchpy.exceptions.RequestError):
        load_documents(osmem_client, index, MAPPINGS, [])
    osmem_client.indices.delete(index=index)


def _port_is_closed(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) != 0


def test_running_osmem_uses_loopback_and_always_stops() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), running_osmem() as client:
        [host] = client.transport.hosts
        assert host["host"] == "127.0.0.1"
        assert client.info()["version"]["number"].startswith("3.")
        raise Boom  # a failing test body must still stop the server
    assert _port_is_closed(host["host"], host["port"])


def test_running_osmem_unavailable_binary(tmp_path: Path) -> None:
    with (
        pytest.raises(OsmemUnavailable, match="not found"),
        running_osmem(binary=str(tmp_path / "missing")),
    ):
        pass
    with (
        pytest.raises(OsmemUnavailable, match="exited during startup.*exit code 1"),
        running_osmem(binary="/bin/false"),
    ):
        pass


def test_running_osmem_startup_timeout_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = tmp_path / "hang.sh"
    hang.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    hang.chmod(0o755)
    with (
        pytest.raises(OsmemUnavailable, match="did not announce readiness within 0.5 s"),
        running_osmem(binary=str(hang), startup_timeout=0.5),
    ):
        pass
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not a zombie
        os.kill(pid, 0)


def test_fixture_skips_or_fails_when_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSMEM_SERVER_BIN", str(tmp_path / "no-such-osmem"))
    monkeypatch.delenv("EBR_REQUIRE_OSMEM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="osmem-server unavailable: .*not found"):
        next(osmem_client_or_skip())
    monkeypatch.setenv("EBR_REQUIRE_OSMEM", "1")
    with pytest.raises(pytest.fail.Exception, match="not found.*EBR_REQUIRE_OSMEM is set"):
        next(osmem_client_or_skip())


def test_fixture_skip_reason_is_reported_by_pytest(tmp_path: Path) -> None:
    """End to end, through a conftest re-export as the suite will use it."""
    (tmp_path / "conftest.py").write_text("from support.osmem import osmem_client  # noqa\n")
    (tmp_path / "test_probe.py").write_text("def test_probe(osmem_client):\n    pass\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "tests"), os.environ.get("PYTHONPATH")])),
        "OSMEM_SERVER_BIN": str(tmp_path / "no-such-osmem"),
    }
    env.pop("EBR_REQUIRE_OSMEM", None)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # faster; the probe needs no plugins
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "1 skipped" in out, out
    assert "osmem-server unavailable: osmem-server binary not found" in out, out


# ---------------------------------------------------------------------------------------------
# Emulator semantics


def test_term_in_filter(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    assert ids_of(osmem_client, corpus, bool_(filter=[term("location", "paris")])) == {"d1", "d3"}
    assert ids_of(osmem_client, corpus, bool_(filter=[term("text", "dog")])) == {"d1", "d4"}
    # keyword fields are not analysed: exact, case-sensitive match
    assert ids_of(osmem_client, corpus, bool_(filter=[term("location", "Paris")])) == set()
    # two filters AND together
    q = bool_(filter=[term("location", "london"), term("text", "fish")])
    assert ids_of(osmem_client, corpus, q) == {"d3"}


def test_terms_query(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    q = {"terms": {"terms.location": ["paris", "tokyo"]}}
    assert ids_of(osmem_client, corpus, q) == {"d1", "d3", "d6"}
    q = bool_(filter=[{"terms": {"terms.text": ["bird", "fish", "nope"]}}])
    assert ids_of(osmem_client, corpus, q) == {"d3", "d4"}


def test_should_with_filter_needs_minimum_should_match(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    should = [term("location", "paris"), term("location", "berlin")]
    cats = [term("text", "cat")]  # d1, d2, d5
    # minimum_should_match: 1 makes the should list a real OR next to the filter ...
    q = bool_(filter=cats, should=should, minimum_should_match=1)
    assert ids_of(osmem_client, corpus, q) == {"d1", "d2"}
    # ... without it (default 0 when filter/must siblings exist) the OR is merely optional.
    assert ids_of(osmem_client, corpus, bool_(filter=cats, should=should)) == {"d1", "d2", "d5"}
    # A should-only bool requires one clause by default.
    q = bool_(should=[term("location", "tokyo"), term("text", "fish")])
    assert ids_of(osmem_client, corpus, q) == {"d3", "d6"}


def test_must_not(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    q = bool_(filter=[term("text", "dog")], must_not=[term("location", "london")])
    assert ids_of(osmem_client, corpus, q) == {"d1"}


def test_bool_with_only_must_not_matches_everything_else(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    assert ids_of(osmem_client, corpus, bool_(must_not=[term("text", "cat")])) == {"d3", "d4", "d6"}
    # documents without any location value are "everything else" too (d5)
    q = bool_(must_not=[{"terms": {"terms.location": ["paris", "london"]}}])
    assert ids_of(osmem_client, corpus, q) == {"d2", "d5", "d6"}


def test_ids_query(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    assert ids_of(osmem_client, corpus, {"ids": {"values": ["d2", "d4", "nope"]}}) == {"d2", "d4"}
    # ids standing in for an nn subtree, combined with term clauses
    q = bool_(filter=[{"ids": {"values": ["d1", "d2", "d3"]}}, term("text", "cat")])
    assert ids_of(osmem_client, corpus, q) == {"d1", "d2"}
    q = bool_(should=[{"ids": {"values": ["d6"]}}, term("text", "fish")], minimum_should_match=1)
    assert ids_of(osmem_client, corpus, q) == {"d3", "d6"}
    assert ids_of(osmem_client, corpus, {"ids": {"values": []}}) == set()


def test_match_none_and_match_all(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    assert ids_of(osmem_client, corpus, {"match_none": {}}) == set()
    assert ids_of(osmem_client, corpus, {"match_all": {}}) == ALL
    q = bool_(should=[{"match_none": {}}, term("location", "tokyo")], minimum_should_match=1)
    assert ids_of(osmem_client, corpus, q) == {"d6"}
    q = bool_(filter=[{"match_all": {}}], must_not=[{"match_none": {}}])
    assert ids_of(osmem_client, corpus, q) == ALL
    assert ids_of(osmem_client, corpus, bool_(filter=[{"match_none": {}}])) == set()


def test_exists(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    # empty arrays index no value, so they do not "exist"
    loc = {"exists": {"field": "terms.location"}}
    assert ids_of(osmem_client, corpus, loc) == ALL - {"d5"}
    assert ids_of(osmem_client, corpus, {"exists": {"field": "terms.text"}}) == ALL - {"d6"}
    assert ids_of(osmem_client, corpus, bool_(must_not=[loc])) == {"d5"}


def test_named_clauses_report_matched_queries(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    q = bool_(
        should=[
            term("location", "paris", name="loc:paris"),
            {"terms": {"terms.text": ["bird", "fish"], "_name": "text:any"}},
            {"ids": {"values": ["d6"], "_name": "nn"}},
        ],
        minimum_should_match=1,
    )
    assert search_matched(osmem_client, corpus, q, SIZE) == {
        "d1": {"loc:paris"},
        "d3": {"loc:paris", "text:any"},
        "d4": {"text:any"},
        "d6": {"nn"},
    }
    # Names inside filter context and on bools are reported too; a must_not clause never is.
    q = bool_(
        filter=[
            bool_(
                _name="branch:or",
                should=[
                    term("location", "paris", name="loc"),
                    {"ids": {"values": ["d6"], "_name": "nn"}},
                ],
                minimum_should_match=1,
            )
        ],
        must_not=[term("text", "dog", name="not_dog")],
    )
    assert search_matched(osmem_client, corpus, q, SIZE) == {
        "d3": {"branch:or", "loc"},
        "d6": {"branch:or", "nn"},
    }


def test_nested_bools_three_deep(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    level3a = bool_(filter=[term("location", "london"), term("text", "dog")])  # d4
    level3b = bool_(filter=[term("text", "cat")], must_not=[term("location", "berlin")])  # d1, d5
    level2 = bool_(should=[level3a, level3b], minimum_should_match=1)  # d1, d4, d5
    level1 = bool_(filter=[level2], must_not=[term("text", "bird")])  # drops d4
    assert ids_of(osmem_client, corpus, level3a) == {"d4"}
    assert ids_of(osmem_client, corpus, level3b) == {"d1", "d5"}
    assert ids_of(osmem_client, corpus, level2) == {"d1", "d4", "d5"}
    assert ids_of(osmem_client, corpus, level1) == {"d1", "d5"}
    # a negation-only bool nested inside a filter: neither paris nor cat
    neither = bool_(
        filter=[
            bool_(
                must_not=[
                    bool_(
                        should=[term("location", "paris"), term("text", "cat")],
                        minimum_should_match=1,
                    )
                ]
            )
        ]
    )
    assert ids_of(osmem_client, corpus, neither) == {"d4", "d6"}


def test_knn_and_vector_script_params_are_rejected(osmem_client: Any, corpus: str) -> None:  # noqa: F811
    """osmem cannot stand in for nn clauses: they must be replaced by exact ``ids`` first."""
    knn = {"knn": {"emb": {"vector": [1.0, 0.0], "k": 2}}}
    with pytest.raises(opensearchpy.exceptions.RequestError, match="knn"):
        search_ids(osmem_client, corpus, knn, SIZE)
    script_score = {
        "script_score": {
            "query": {"match_all": {}},
            "script": {
                "source": "1.0 + cosineSimilarity(params.q, doc['emb'])",
                "params": {"q": [1.0, 0.0]},
            },
        }
    }
    with pytest.raises(opensearchpy.exceptions.RequestError, match="array script parameters"):
        search_ids(osmem_client, corpus, script_score, SIZE)
