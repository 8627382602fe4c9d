"""The request API (``ebr.search``, ``ebr.Searcher``) on a small local index: templates and
their escaping, the embedding cache, page-dependent nn settings, paging, reranking through the
``Reranker`` protocol, and many threads on one searcher."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ebr
from ebr.errors import PlanError, QuerySyntaxError
from ebr.query.nodes import NN, Match, Term, Within, walk
from ebr.query.parser import parse
from ebr.ranking import RankedHit, RerankRequest
from ebr.request import EmbeddingCache, NNSettings, PageSettings, Searcher, Template
from ebr.request.request_terms import match_terms
from ebr.request.templates import Filling
from ebr.stores.local import LocalStore
from ebr.stores.protocol import Hit, Store, search_text
from support.request_corpus import KEY, NLIST, TITLES, build, embedder, projection

HYBRID = "(or (match title $q) (nn $key :radius 0.6 :nprobe 2))"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    s = build(tmp_path_factory.mktemp("request") / "index")
    yield s
    s.close()


class CountingEmbedder:
    """The projection, counting its calls (to see the cache at work)."""

    def __init__(self, context_fields: tuple[str, ...] = ()) -> None:
        self.inner = embedder()
        self.context_fields = context_fields
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return KEY

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, text: str, context: Mapping[str, str]) -> np.ndarray:  # type: ignore[type-arg]
        with self._lock:
            self.calls += 1
        return self.inner.embed(text, context)


class CosineReranker:
    """Orders hits by cosine to the request's embedding (stored vectors from the store),
    recording what it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[RerankRequest, int]] = []

    def rerank(self, request: RerankRequest, hits: Sequence[Hit], store: Store) -> list[RankedHit]:
        self.seen.append((request, len(hits)))
        q = request.vectors[KEY]
        stored = store.get_vectors([h.id for h in hits], KEY)
        ranked = []
        for h in hits:
            cos = float(stored[h.id] @ q / np.linalg.norm(q))
            ranked.append(RankedHit(h, 2.0 * cos, {"cosine": cos}, {"cosine": 2.0 * cos}))
        return sorted(ranked, key=lambda r: (-r.score, r.hit.id))


# -- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['drill") (term country:ca) ("', "a (or b", '\\"; (nn x :k 1)',
                                  ":radius", "42", 'say "hi"\n\tthere'])
def test_a_request_text_cannot_inject_operators(store: LocalStore, text: str) -> None:
    query = Template("(match title $q)").render(Filling(text))
    ast = ebr.parse(query, store.schema)
    expected = ebr.parse(f"(match title {ebr.query.printer.atom_text(text)})", store.schema)
    assert ast == expected
    assert type(ast) is Match and ast.namespace == "title"  # one match clause, nothing else
    assert ast.text == text


def test_placeholders_fill_key_and_context() -> None:
    t = Template("(and (term country:$ctx.country) (nn $key :k 3))")
    assert t.render(Filling("x", "m-1", {"country": "fr es"})) == '(and (term "country:fr es") (nn m-1 :k 3))'
    assert t.uses_key and not t.uses_text


@pytest.mark.parametrize("template, filling, message", [
    ('(match title "$q")', Filling("x"), "write it unquoted"),
    ("(nn $key :k 3)", Filling("x"), "$key needs"),
    ("(term country:$ctx.country)", Filling("x", context={}), "'country' in the request's context"),
    ("(match title $q", Filling("x"), "unclosed"),
])
def test_template_errors_point_at_the_placeholder(template: str, filling: Filling, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match="1:") as e:
        Template(template).render(filling)
    assert message in str(e.value)


def test_match_terms_are_read_per_namespace(store: LocalStore) -> None:
    query = '(and (match title "Deck PAINT deck") (or (match title stain) (term country:us)))'
    assert match_terms(parse(query, store.schema)) == {"title": ("deck", "paint", "stain")}


# -- one request -----------------------------------------------------------------------------


def test_search_is_the_store_search_of_the_filled_template(store: LocalStore) -> None:
    vector = projection().embed_one("cordless dril")
    response = ebr.search(store, HYBRID, text="cordless dril", size=5, embedders=[embedder()])
    direct = search_text(store, "(or (match title \"cordless dril\") "
                         f"(nn {KEY} :radius 0.6 :nprobe 2))", {KEY: vector}, 5)
    assert response.ids == direct.ids and response.ids
    assert [r.hit for r in response.hits] == list(direct.hits)
    assert response.query == f'(or (match title "cordless dril") (nn {KEY} :radius 0.6 :nprobe 2))'
    assert set(response.timings) == {"embed", "plan", "retrieve", "rerank"}
    assert all(v >= 0 for v in response.timings.values())
    assert response.cached == {KEY: False}
    lines = response.explain()
    assert lines[0].startswith(f"1. {response.ids[0]}") and "distance" in "\n".join(lines)


def test_given_vectors_are_used_as_they_are(store: LocalStore) -> None:
    v = projection().embed_one("miter saw")
    response = ebr.search(store, "(nn title-trigrams :k 3)", vectors={KEY: v})
    assert response.ids == search_text(store, f"(nn {KEY} :k 3)", {KEY: v}, 10).ids
    assert response.cached == {}


def test_a_missing_embedding_is_a_plan_error(store: LocalStore) -> None:
    with pytest.raises(PlanError, match="needs an embedding for title-trigrams"):
        ebr.search(store, HYBRID, text="drill")


def test_an_embedder_of_another_dimension_is_refused(store: LocalStore) -> None:
    with pytest.raises(PlanError, match="gives 8-d embeddings but the index declares 32-d"):
        Searcher(store, [ebr.request.ProjectionEmbedder(KEY, ebr.encoders.TrigramProjection(8))])


def test_pages_are_consecutive_slices(store: LocalStore) -> None:
    s = Searcher(store, [embedder()])
    whole = s.search(f"(nn {KEY} :k 12)", text="drill", size=12).ids
    pages = [s.search(f"(nn {KEY} :k 12)", text="drill", size=5, page=p).ids for p in (1, 2, 3)]
    assert pages == [whole[:5], whole[5:10], whole[10:12]]


def test_page_settings_give_each_page_its_nn_settings(store: LocalStore) -> None:
    pages = PageSettings({1: NNSettings(nprobe=1, radius=0.3), 3: NNSettings(nprobe=NLIST)})
    s = Searcher(store, [embedder()], pages=pages)
    query = f"(and (term country:us) (nn {KEY} :radius 0.9 :nprobe 2))"

    def probes(page: int) -> tuple[int, float]:
        plan = s.search(query, text="drill", size=2, page=page).plan
        within = next(n for n in walk(plan) if type(n) is Within)
        probe_terms = [n for n in walk(plan) if type(n) is Term and n.namespace.endswith(".cluster")]
        return len(probe_terms), within.radius

    assert probes(1) == probes(2) == (1, 0.3)
    assert probes(3) == (NLIST, 0.9)  # page 3 on: every cluster, the query's own radius
    exact = s.search(f"(nn {KEY} :radius 0.9 :exact true)", text="drill", page=3).plan
    assert not any(type(n) is Term for n in walk(exact))  # :exact clauses probe nothing
    explicit = s.search(query, text="drill", nn=NNSettings(nprobe=3)).plan
    assert sum(type(n) is Term and n.namespace.endswith(".cluster") for n in walk(explicit)) == 3


def test_nn_settings_are_checked() -> None:
    with pytest.raises(PlanError, match="radius must be between 0 and 2"):
        NNSettings(radius=2.5)
    with pytest.raises(PlanError, match="nprobe must be between 1"):
        NNSettings(nprobe=0)
    with pytest.raises(PlanError, match="start at page 1"):
        PageSettings({0: NNSettings()})
    assert NNSettings(nprobe=4).apply(NN("k", k=3)) == NN("k", k=3, nprobe=4)


def test_the_reranker_orders_the_candidates_and_explains_them(store: LocalStore) -> None:
    reranker = CosineReranker()
    s = Searcher(store, [embedder()], reranker=reranker, candidates=7)
    query = "(or (match title deck) (match title paint) (nn $key :k 12))"
    response = s.search(query, text="deck paint", context={"country": "us"}, size=3, page=2)
    request, given = reranker.seen[-1]
    assert given == 7  # max(candidates, page * size) first-stage hits
    assert request.terms == {"title": ("deck", "paint")} and request.context == {"country": "us"}
    q = projection().embed_one("deck paint")
    first = s.search(query, text="deck paint", size=7, rerank=False).ids
    cos = {i: float(v @ q) for i, v in store.get_vectors(first, KEY).items()}
    expected = sorted(first, key=lambda i: (-cos[i], i))[3:6]
    assert response.ids == expected
    assert all(r.features["cosine"] == pytest.approx(cos[r.hit.id], abs=1e-5) for r in response.hits)
    assert "cosine = " in "\n".join(response.explain())


def test_a_terms_only_query_is_still_embedded_for_the_reranker(store: LocalStore) -> None:
    reranker = CosineReranker()
    response = Searcher(store, [embedder()], reranker=reranker).search("(match title drill)", text="drill")
    assert KEY in reranker.seen[-1][0].vectors and response.cached == {KEY: False}
    assert sorted(response.ids) == ["p01", "p02", "p03"]


def test_a_request_without_text_is_not_embedded_for_the_reranker(store: LocalStore) -> None:
    """Nothing to embed: a terms-only query with no text is reranked without cosines (the
    trigram projection would refuse an empty text)."""
    from ebr.ranking import LinearReranker

    response = Searcher(store, [embedder()], reranker=LinearReranker()).search(
        "(match title drill)")
    assert sorted(response.ids) == ["p01", "p02", "p03"] and response.cached == {}
    assert all(r.features["cosine:" + KEY] == 0.0 for r in response.hits)


# -- the embedding cache ---------------------------------------------------------------------


def test_repeated_requests_embed_once(store: LocalStore) -> None:
    counting = CountingEmbedder()
    s = Searcher(store, [counting])
    first = s.search(HYBRID, text="garden hose")
    again = s.search(HYBRID, text="garden hose", page=2)
    assert counting.calls == 1 and first.cached == {KEY: False} and again.cached == {KEY: True}
    s.search(HYBRID, text="garden hoses")
    assert counting.calls == 2
    assert s.cache.stats().hits == 1 and s.cache.stats().misses == 2


def test_the_cache_keys_on_the_context_fields_the_embedder_reads(store: LocalStore) -> None:
    reads_country, ignores = CountingEmbedder(("country",)), CountingEmbedder()
    for counting in (reads_country, ignores):
        s = Searcher(store, [counting])
        for country in ("us", "ca", "us"):
            s.search(HYBRID, text="hose", context={"country": country, "session": country + "1"})
    assert reads_country.calls == 2 and ignores.calls == 1


def test_cache_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = EmbeddingCache(maxsize=10, ttl=60.0, timer=lambda: now[0])
    calls: list[int] = []

    def compute() -> np.ndarray:  # type: ignore[type-arg]
        calls.append(1)
        return np.ones(3, dtype=np.float32) * len(calls)

    assert cache.get("a", compute)[1] is False
    now[0] = 59.0
    value, hit = cache.get("a", compute)
    assert hit and value[0] == 1 and not value.flags.writeable
    now[0] = 60.5
    value, hit = cache.get("a", compute)
    assert not hit and value[0] == 2 and len(calls) == 2


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = EmbeddingCache(maxsize=2, ttl=100.0)

    def vec() -> np.ndarray:  # type: ignore[type-arg]
        return np.zeros(2, dtype=np.float32)

    cache.get("a", vec)
    cache.get("b", vec)
    assert cache.get("a", vec)[1]  # "a" used last: "b" is the least recently used
    cache.get("c", vec)
    assert cache.stats().size == 2
    assert cache.get("a", vec)[1] and not cache.get("b", vec)[1]
    with pytest.raises(ValueError):
        EmbeddingCache(maxsize=0)


# -- concurrency -----------------------------------------------------------------------------


def test_one_searcher_serves_many_threads(store: LocalStore) -> None:
    counting = CountingEmbedder()
    s = Searcher(store, [counting], reranker=CosineReranker(), candidates=10)
    requests = [(t.split()[i % 2] if len(t.split()) > 1 else t, p)
                for i, (_, t, _) in enumerate(TITLES) for p in (1, 2)]
    expected = [Searcher(store, [embedder()], reranker=CosineReranker(), candidates=10)
                .search(HYBRID, text=t, size=3, page=p).ids for t, p in requests]
    barrier = threading.Barrier(8)

    def run(i: int) -> list[list[str]]:
        barrier.wait()
        return [s.search(HYBRID, text=t, size=3, page=p).ids
                for n, (t, p) in enumerate(requests) if (n + i) % 2 == 0]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(run, range(8)))
    for i, got in enumerate(answers):
        assert got == [e for n, e in enumerate(expected) if (n + i) % 2 == 0]
    distinct = len({t for t, _ in requests})
    assert distinct <= counting.calls <= 8 * distinct  # each text embedded at most once per thread
    assert s.cache.stats().size == distinct


# -- a model's query tower -------------------------------------------------------------------


def test_a_model_embedder_reads_the_text_and_its_categorical_context(tmp_path: Path) -> None:
    import torch

    from ebr.encoders.encoder_config import CategoricalChannel, CharTrigramChannel, EncoderConfig, TowerConfig
    from ebr.encoders.model.towers import TwoTowerModel
    from ebr.encoders.serving.model_directory import save_model_directory
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.mappings import EmbeddingKey, Namespace, Schema
    from ebr.request import ModelEmbedder
    from ebr.request.embedders import embedders_for

    config = EncoderConfig(
        query=TowerConfig((CharTrigramChannel("trigrams", "text", 997, 8),
                           CategoricalChannel("country", "country", 31, 4)), hidden_dim=8),
        doc=TowerConfig((CharTrigramChannel("trigrams", "title", 997, 8),), hidden_dim=8), output_dim=8)
    torch.manual_seed(0)
    info = save_model_directory(tmp_path / "model", TwoTowerModel(config).eval(), None, {})
    encoder = QueryEncoder(tmp_path / "model")
    model = ModelEmbedder(encoder)
    assert model.key == info.key and model.dimension == 8 and model.context_fields == ("country",)
    us = model.embed("drill", {"country": "us", "other": "x"})
    assert np.array_equal(us, encoder.encode({"text": "drill", "country": "us"}))
    assert not np.allclose(us, model.embed("drill", {"country": "fr"}))
    assert np.array_equal(model.embed("drill", {}), encoder.encode({"text": "drill"}))
    schema = Schema.create("s", (Namespace("title"),),
                           (EmbeddingKey(info.key, 8), EmbeddingKey("title-trigrams", 16)))
    kinds = {e.key: type(e).__name__ for e in embedders_for(schema, {info.key: encoder})}
    assert kinds == {info.key: "ModelEmbedder", "title-trigrams": "ProjectionEmbedder"}
    # A key of a model not given is refused, not embedded by the projection (noise).
    with pytest.raises(PlanError, match=f"no model for the index's embedding key {info.key}: "):
        embedders_for(schema, {})
    two = Schema.create("s", (Namespace("title"),), (EmbeddingKey(info.key, 8), EmbeddingKey("mini", 4)))
    with pytest.raises(PlanError, match=f"embedding keys {info.key}, mini: pass its model"):
        embedders_for(two, {})
    with pytest.raises(PlanError, match="embedding key mini: pass its model"):
        embedders_for(two, {info.key: encoder})
    wrong = Schema.create("s", (Namespace("title"),), (EmbeddingKey(info.key, 12),))
    with pytest.raises(PlanError, match="gives 8-d embeddings but the index declares 12-d"):
        embedders_for(wrong, {info.key: encoder})
