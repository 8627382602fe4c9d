"""``ebr console`` on a real OpenSearch (``support.cluster``): the session answers as on the
local store holding the same documents, the index's term sample is the same, and the
command opens a cluster's index (``URL --index``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_opensearch_store import fresh_index

from ebr.console.session import Session
from ebr.request import Searcher
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from support.request_corpus import KEY, SCHEMA, build, embedder, fill
from support.terminal import Terminal

pytestmark = pytest.mark.opensearch

QUERY = "(and (term country:$ctx.country) (or (match title $q) (nn $key :k 4)))"


@pytest.fixture(scope="module")
def stores(opensearch_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[LocalStore, OpenSearchStore]]:
    local = build(tmp_path_factory.mktemp("console-os") / "index")
    index = fresh_index("ebr-console")
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene")
    try:
        fill(remote)
        yield local, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def test_term_samples_agree(stores: tuple[LocalStore, OpenSearchStore]) -> None:
    local, remote = stores
    for namespace in ("country", "title", f"{KEY}.cluster", "nowhere"):
        for limit in (1, 3, 100):
            assert local.sample_terms(namespace, limit) == remote.sample_terms(namespace, limit)
    assert local.sample_terms("country", 100)


def test_a_session_answers_as_on_the_local_store(stores: tuple[LocalStore, OpenSearchStore]) -> None:
    replies = []
    for store in stores:
        session = Session(Searcher(store, [embedder()]))
        session.handle(':text "cordless dril"')
        session.handle(":context country=us")
        session.handle(":size 3")
        hits = session.handle(QUERY).text.splitlines()[:-1]  # (the last line has the time)
        assert hits and not hits[0].startswith("Error"), hits
        replies.append((hits, session.handle(":plan").text))
    assert replies[0] == replies[1]


def test_the_console_opens_a_cluster_index(stores: tuple[LocalStore, OpenSearchStore],
                                           opensearch_url: str, tmp_path: Path) -> None:
    _, remote = stores
    terminal = Terminal("console", opensearch_url, "--index", remote.index,
                        "--history", str(tmp_path / "history"))
    try:
        terminal.wait_for(r"^ebr>$")
        terminal.send("(term country:us)\r")
        terminal.wait_for(r"hits of \d+ matched")
        terminal.send(":request\r")
        terminal.wait_for(rf"POST /{remote.index}/_search")
        terminal.send("\x04")
        assert terminal.ended() == 0
    finally:
        terminal.close()
