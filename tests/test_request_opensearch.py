"""The request API and ``ebr eval`` on a real OpenSearch (``support.cluster``) answer as on the
local store holding the same documents with the same quantizer: same pages, same reranked
order and features, same figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_eval import JUDGED
from test_opensearch_store import fresh_index
from test_request import HYBRID, CosineReranker

from ebr.cli.main import cli
from ebr.ranking import LinearReranker
from ebr.request import NNSettings, Searcher
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore
from support.request_corpus import SCHEMA, build, embedder, fill

pytestmark = pytest.mark.opensearch

REQUESTS = [
    (HYBRID, "cordless dril", {}, 1),
    ("(or (match title $q) (nn $key :k 8 :nprobe 2))", "deck paint", {}, 2),
    ("(and (term country:$ctx.country) (or (match title $q) (nn $key :k 6)))", "light", {"country": "us"}, 1),
    ("(or (match title $q) (nn $key :radius 0.9 :nprobe 1))", "saw blade", {}, 1),
]


@pytest.fixture(scope="module")
def stores(opensearch_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Path, LocalStore, str, OpenSearchStore]]:
    path = tmp_path_factory.mktemp("request-os") / "index"
    local = build(path)
    index = fresh_index("ebr-request")
    remote = OpenSearchStore.create(opensearch_url, index, SCHEMA, engine="lucene")
    try:
        fill(remote)
        yield path, local, index, remote
    finally:
        local.close()
        remote.close()
        OpenSearchStore.drop(opensearch_url, index)


def test_requests_answer_alike_on_both_stores(stores: tuple[Path, LocalStore, str, OpenSearchStore]) -> None:
    _, local, _, remote = stores
    pages = {1: NNSettings(nprobe=1), 2: NNSettings(nprobe=4)}
    searchers = [Searcher(s, [embedder()], reranker=CosineReranker(), candidates=8, pages=pages)
                 for s in (local, remote)]
    for template, text, context, page in REQUESTS:
        for rerank in (False, True):
            a, b = (s.search(template, text=text, context=context, size=3, page=page, rerank=rerank)
                    for s in searchers)
            assert a.ids == b.ids and a.ids, (template, text, rerank)
            assert a.query == b.query and a.plan == b.plan and a.total == b.total
            assert [h.hit.branches for h in a.hits] == [h.hit.branches for h in b.hits]
            for x, y in zip(a.hits, b.hits, strict=True):
                assert x.score == pytest.approx(y.score, abs=1e-4)
                assert x.features == pytest.approx(dict(y.features), abs=1e-4)


def test_a_reranked_request_is_its_searches_alone(
        stores: tuple[Path, LocalStore, str, OpenSearchStore],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``fetch`` (the default) a reranked request on OpenSearch sends its searches and
    nothing after them (no ``_mget`` of vectors or terms), and its features and page are
    those of the local store and of a searcher that reads them after the search."""
    _, local, _, remote = stores
    sent: list[str] = []
    for connection in remote.client.transport.connection_pool.connections:
        perform = connection.perform_request

        def recording(method: str, url: str, *args: Any, perform: Any = perform,
                      **kwargs: Any) -> Any:
            sent.append(url.split("?")[0])
            return perform(method, url, *args, **kwargs)
        monkeypatch.setattr(connection, "perform_request", recording)
    pages = {1: NNSettings(nprobe=1), 2: NNSettings(nprobe=4)}
    searchers = [Searcher(store, [embedder()], reranker=LinearReranker(), candidates=8,
                          pages=pages, fetch=fetch)
                 for store, fetch in ((local, True), (remote, True), (remote, False))]
    for template, text, context, page in REQUESTS:
        answers, requests = [], []
        for searcher in searchers:
            sent.clear()
            answers.append(searcher.search(template, text=text, context=context, size=3, page=page))
            requests.append(list(sent))
        _, fetching, reading = requests
        assert fetching and all(path.endswith("/_search") for path in fetching), fetching
        assert reading[:len(fetching)] == fetching and "_mget" in reading[-1], reading
        first = answers[0]
        assert first.ids and all(a.ids == first.ids for a in answers), template
        for other in answers[1:]:
            for x, y in zip(first.hits, other.hits, strict=True):
                assert x.score == pytest.approx(y.score, abs=1e-4)
                assert x.features == pytest.approx(dict(y.features), abs=1e-4)


def test_an_embedding_of_a_key_the_index_lacks_is_ignored_alike(
        stores: tuple[Path, LocalStore, str, OpenSearchStore]) -> None:
    """A request may carry an embedding for a key the index does not have (a service sending
    every model's): the local store ignores it, and so does OpenSearch when the search fetches
    the reranker's inputs (no cosine is asked for a key the features do not have)."""
    _, local, _, remote = stores
    extra = {"another-model": np.ones(5, np.float32)}
    answers = [Searcher(store, [embedder()], reranker=LinearReranker(), candidates=8)
               .search(HYBRID, text="cordless dril", size=3, vectors=extra)
               for store in (local, remote)]
    assert answers[0].ids and answers[0].ids == answers[1].ids
    for x, y in zip(answers[0].hits, answers[1].hits, strict=True):
        assert x.features == pytest.approx(dict(y.features), abs=1e-4)


def test_eval_gives_the_same_figures_on_both_stores(stores: tuple[Path, LocalStore, str, OpenSearchStore],
                                                    opensearch_url: str, tmp_path: Path) -> None:
    path, _, index, _ = stores
    judged = tmp_path / "judged.tsv"
    judged.write_text(JUDGED, encoding="utf-8")
    args = [str(judged), "--quiet", "--json", "-", "--radius", "0.6", "--nprobe", "2",
            "--path", "terms=(match title $q)", "--path", "nn=(nn $key :k 1000)",
            "--path", "hybrid=(or (match title $q) (nn $key :radius 0.6 :nprobe 2))",
            "--radius-sweep", "0.3,0.9"]
    results = [CliRunner().invoke(cli, ["eval", where, *args, *extra])
               for where, extra in ((str(path), []), (opensearch_url, ["--index", index]))]
    assert all(r.exit_code == 0 for r in results), [r.output for r in results]
    local, remote = (json.loads(r.output) for r in results)
    assert local.keys() == remote.keys() and local["paths"].keys() == remote["paths"].keys()
    for name, figures in local["paths"].items():
        assert figures == pytest.approx(remote["paths"][name]), name
    assert [p["mean_matched"] for p in local["radius_sweep"]] == \
        [p["mean_matched"] for p in remote["radius_sweep"]]
    assert np.isclose(local["paths"]["nn"]["recall@10"], remote["paths"]["nn"]["recall@10"])
