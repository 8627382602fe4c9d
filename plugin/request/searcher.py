"""The request API for app backends: one call from a request to its page of ranked hits.

:meth:`Searcher.search` fills a query template with the request (:mod:`ebr.request.templates`),
applies the page's ``nn`` settings (:mod:`ebr.request.nn_settings`), embeds the request once
per embedding key it needs (through the embedding cache), plans with the store's quantizers,
retrieves the candidates, reranks them with the searcher's reranker when it has one, and
returns the asked page with each hit's explanation and the time of each phase.

A searcher holds no per-request state: one searcher serves many threads at once on one store
(the store, the cache and the reranker are thread-safe).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError
from ebr.planning.planner import plan as make_plan
from ebr.query.nodes import NN, Node, walk
from ebr.query.parser import parse
from ebr.ranking.features import fetch_for
from ebr.ranking.protocol import RankedHit, Reranker, RerankRequest
from ebr.request.embedders import TextEmbedder, check_embedder
from ebr.request.embedding_cache import EmbeddingCache
from ebr.request.nn_settings import NNSettings, PageSettings
from ebr.request.request_terms import match_terms
from ebr.request.templates import Filling, Template
from ebr.stores.protocol import Hit, SearchStats, Store

FloatArray = npt.NDArray[np.float32]

#: First-stage hits a reranker reorders (the page is cut from them).
DEFAULT_CANDIDATES = 100
#: The phases of :attr:`SearchResponse.timings`, in order.
PHASES = ("embed", "plan", "retrieve", "rerank")


@dataclass(frozen=True)
class SearchResponse:
    """One page of a request's hits, best first, and how it was found.

    ``hits``: each hit (its branches, vector distances and BM25 scores), its final score and,
    when reranked, the reranker's features and their contributions; ``query``: the query text
    the template became; ``plan``: what the store executed; ``stats``: the store's figures
    (``stats.total`` documents matched); ``timings``: seconds per phase (:data:`PHASES`);
    ``cached``: per embedding key used, whether the embedding came from the cache (keys given
    as vectors are absent)."""

    hits: tuple[RankedHit, ...]
    query: str
    plan: Node
    stats: SearchStats
    timings: Mapping[str, float]
    cached: Mapping[str, bool]
    page: int
    size: int

    @property
    def ids(self) -> list[str]:
        return [h.hit.id for h in self.hits]

    @property
    def total(self) -> int:
        return self.stats.total

    def explain(self) -> list[str]:
        """Lines for people: each hit with why it matched and how it scored, then the phases."""
        lines = []
        for n, ranked in enumerate(self.hits, (self.page - 1) * self.size + 1):
            hit = ranked.hit
            lines.append(f"{n}. {hit.id}  score {ranked.score:.4f}  (first stage {hit.score:.4f}, "
                         f"rank {hit.rank:.3f})  branches {' '.join(hit.branches)}")
            lines += [f"   {c.branch} {c.key}: distance {c.distance:.4f}" for c in hit.clauses]
            lines += [f"   {t.branch} {t.namespace}: bm25 {t.score:.4f}" for t in hit.texts]
            lines += [f"   {name} = {value:.4f} -> {ranked.contributions.get(name, 0.0):+.4f}"
                      for name, value in ranked.features.items()]
        lines.append(f"{len(self.hits)} hits of {self.total} matched; "
                     + ", ".join(f"{p} {self.timings[p] * 1000:.3f} ms" for p in PHASES))
        return lines


@dataclass(frozen=True)
class Retrieval:
    """A request's first stage (:meth:`Searcher.retrieve`): the filled ``query``, the ``plan``
    executed, the ``request`` a reranker is given, the store's ``hits`` in first-stage order
    and ``stats``, the seconds of the embed, plan and retrieve phases, and which embeddings
    came from the cache."""

    query: str
    plan: Node
    request: RerankRequest
    hits: tuple[Hit, ...]
    stats: SearchStats
    timings: Mapping[str, float]
    cached: Mapping[str, bool]


@functools.lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    return Template(text)


class Searcher:
    """Serves requests on ``store``.

    ``embedders`` embed request texts, one per key (:mod:`ebr.request.embedders`);
    ``reranker`` reorders the first ``candidates`` hits; ``pages`` gives each page its ``nn``
    settings; ``cache`` keeps embeddings (a fresh one by default); ``key`` is what ``$key``
    stands for (default: the only embedder's key, else the index's only key); ``fetch``:
    whether a search for the reranker asks the store to return what the features read with
    the hits (:func:`~ebr.ranking.features.fetch_for`; on OpenSearch one round trip instead
    of three; ``False`` reads them after, as a store without the request would)."""

    def __init__(self, store: Store, embedders: Iterable[TextEmbedder] = (), *,
                 reranker: Reranker | None = None, candidates: int = DEFAULT_CANDIDATES,
                 pages: PageSettings | Mapping[int, NNSettings] | None = None,
                 cache: EmbeddingCache | None = None, key: str | None = None,
                 fetch: bool = True) -> None:
        if candidates < 1:
            raise PlanError(f"candidates must be at least 1; got {candidates}")
        self.store = store
        self.embedders = {e.key: e for e in embedders}
        for e in self.embedders.values():
            check_embedder(store.schema, e)
        self.reranker = reranker
        self.candidates = candidates
        self.fetch = fetch
        self.pages = pages if isinstance(pages, PageSettings) else PageSettings(pages)
        self.cache = cache if cache is not None else EmbeddingCache()
        if key is not None and store.schema.key(key) is None:
            raise PlanError(f"the index has no embedding key {key!r} (it has: "
                            f"{', '.join(k.name for k in store.schema.keys) or 'none'})")
        keys = list(self.embedders) or [k.name for k in store.schema.keys]
        self.key = key if key is not None else (keys[0] if len(keys) == 1 else None)

    def render(self, expression: str, text: str = "", context: Mapping[str, str] | None = None) -> str:
        """``expression`` (a query or a template) filled with a request's text and context."""
        return _template(expression).render(Filling(text, self.key, context or {}))

    def search(self, expression: str, *, text: str = "", context: Mapping[str, str] | None = None,
               size: int = 10, page: int = 1, vectors: Mapping[str, npt.ArrayLike] | None = None,
               nn: NNSettings | None = None, rerank: bool = True) -> SearchResponse:
        """Page ``page`` (from 1) of ``size`` hits for ``expression`` (a query or a template)
        filled with ``text`` and ``context``.  ``vectors`` gives embeddings by key (not
        embedded, not cached); ``nn`` replaces the page's ``nn`` settings; ``rerank=False``
        skips the reranker (the first-stage order)."""
        if size < 0 or page < 1:
            raise PlanError(f"size must be >= 0 and page >= 1; got size {size}, page {page}")
        reranker = self.reranker if rerank else None
        wanted = page * size
        found = self.retrieve(expression, text=text, context=context,
                              size=max(wanted, self.candidates) if reranker else wanted,
                              vectors=vectors, nn=nn or self.pages.for_page(page),
                              for_reranker=reranker is not None)
        started = time.perf_counter()
        if reranker is not None:
            ranked = reranker.rerank(found.request, found.hits, self.store)
        else:
            ranked = [RankedHit(h, h.score, {}, {}) for h in found.hits]
        timings = {**found.timings, "rerank": time.perf_counter() - started}
        return SearchResponse(tuple(ranked[wanted - size: wanted]), found.query, found.plan,
                              found.stats, timings, found.cached, page, size)

    def retrieve(self, expression: str, *, text: str = "", context: Mapping[str, str] | None = None,
                 size: int = DEFAULT_CANDIDATES, vectors: Mapping[str, npt.ArrayLike] | None = None,
                 nn: NNSettings | None = None, for_reranker: bool = True) -> Retrieval:
        """The first stage of :meth:`search`: the first ``size`` hits in the store's order and
        the request as a reranker sees it (what serving reranks, and so what a reranker is
        trained on).  ``for_reranker`` embeds every key the searcher can, for the cosine
        features, not only the keys the query's ``nn`` clauses use."""
        context = dict(context or {})
        timings = dict.fromkeys(PHASES[:3], 0.0)
        started = time.perf_counter()
        query = self.render(expression, text, context)
        ast = (nn or NNSettings()).apply(parse(query, self.store.schema))
        timings["plan"] = time.perf_counter() - started

        needed = {n.key for n in walk(ast) if type(n) is NN}
        if for_reranker:  # the cosine features: every key there is a request text for
            needed |= (set(self.embedders) if text else set()) | set(vectors or {})
        started = time.perf_counter()
        embedded, cached = self._embed(sorted(needed), text, context, vectors or {})
        timings["embed"] = time.perf_counter() - started

        started = time.perf_counter()
        executable = make_plan(ast, embedded, self.store.quantizers, self.store.schema)
        timings["plan"] += time.perf_counter() - started

        request = RerankRequest(embedded, match_terms(executable), context, executable)
        started = time.perf_counter()
        result = self.store.search(executable, embedded, size,
                                   fetch=fetch_for(request) if for_reranker and self.fetch else None)
        timings["retrieve"] = time.perf_counter() - started
        if result.fetched is not None:
            request = dataclasses.replace(request, fetched=result.fetched)
        return Retrieval(query, executable, request, tuple(result.hits), result.stats, timings,
                         cached)

    def _embed(self, keys: list[str], text: str, context: Mapping[str, str],
               given: Mapping[str, npt.ArrayLike]) -> tuple[dict[str, FloatArray], dict[str, bool]]:
        vectors: dict[str, FloatArray] = {}
        cached: dict[str, bool] = {}
        for key in keys:
            if key in given:
                vectors[key] = np.asarray(given[key], dtype=np.float32)
                continue
            embedder = self.embedders.get(key)
            if embedder is None:
                raise PlanError(f"the query needs an embedding for {key}: pass vectors={{{key!r}: ...}} "
                                "or give the searcher an embedder for it")
            fields = tuple((f, context[f]) for f in embedder.context_fields if f in context)
            vectors[key], cached[key] = self.cache.get(
                (key, text, fields), functools.partial(embedder.embed, text, context))
        return vectors, cached


def search(store: Store, expression: str, *, text: str = "", context: Mapping[str, str] | None = None,
           size: int = 10, page: int = 1, vectors: Mapping[str, npt.ArrayLike] | None = None,
           embedders: Iterable[TextEmbedder] = (), reranker: Reranker | None = None,
           candidates: int = DEFAULT_CANDIDATES) -> SearchResponse:
    """One request through a one-off :class:`Searcher` (no cache kept between calls: a service
    keeps one searcher for its lifetime)."""
    return Searcher(store, embedders, reranker=reranker, candidates=candidates).search(
        expression, text=text, context=context, size=size, page=page, vectors=vectors)
