"""The quickstart's example requests, run on the cities index, and how each hit is explained.

Each :class:`Example` is a request as an app would send it: a query template in the request
API's notation (``$q`` the text typed, ``$key`` the index's embedding key, ``$ctx.country``
the searcher's country), the text, and the searcher's country.  :func:`run_request` runs it
as an app backend would: through the request API (:class:`ebr.request.Searcher`), which
embeds the text with the searcher's context, retrieves the first-stage candidates and
reranks them with the linear reranker (:class:`ebr.ranking.LinearReranker`).

A hit says how it matched (:func:`via`: through the terms, the ``nn`` branch, or both) and why
it ranks where it does: its first-stage score (the sum of its ``nn`` score, ``2 - distance``
for a radius clause or ``1 - distance / 2`` for a top-K one, and its ``match`` clauses'
BM25), then the reranker's score and the features that made most of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.query.nodes import Node
from ebr.query.printer import atom_text
from ebr.quickstart.cities import city_label
from ebr.ranking import LinearReranker, RankedHit
from ebr.ranking.branches import BranchKinds
from ebr.request.searcher import Searcher, SearchResponse
from ebr.stores.protocol import Hit, Store, search_text

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class QueryEmbedding:
    """How requests are embedded for the index's ``key``: ``embed(text, context)``; ``radius``
    is the cosine distance the examples call near for this embedding (a trained model and
    the trigram projection spread names differently); ``contextual`` says whether the
    searcher's country changes the embedding."""

    key: str
    embed: Callable[[str, Mapping[str, str]], FloatArray]
    radius: float
    contextual: bool
    description: str


@dataclass(frozen=True)
class Example:
    """A request and what it should find.  It runs once per searcher country of
    ``countries``; run ``i`` should find the city ``expect[i]`` (as :func:`city_label` prints
    it) matched ``via`` "nn", "terms" or "both" — first when ``first``."""

    title: str
    template: str  # the request API's template; {radius} is the embedding's radius
    text: str
    countries: tuple[str, ...]
    expect: tuple[str, ...]
    via: str
    first: bool = False
    note: str = ""


#: An alternate name the model never trains on (:func:`ebr.quickstart.queries.training_pairs`
#: leaves it out): the terms must find it.
HELD_OUT_ALIASES = ("Bombay",)

EXAMPLES: tuple[Example, ...] = (
    Example("a misspelling: the words find nothing, the nn branch finds the city",
            "(and (term country:$ctx.country) "
            "(or (match name $q) (nn $key :radius {radius} :nprobe 8)))",
            "san franciso", ("us",), ("San Francisco, US.CA",), "nn"),
    Example("an old name: the alias terms find it, the embedding does not know it",
            "(and (term country:$ctx.country) "
            "(or (match alias $q) (nn $key :radius {radius} :nprobe 8)))",
            "bombay", ("in",), ("Mumbai, IN.16",), "terms",
            note="'bombay' is held out of the model's training queries"),
    Example("the same words from two countries: the searcher's country is in the query "
            "embedding (EBR's unified embedding)",
            "(nn $key :k 3)",
            "san jose", ("us", "cr"), ("San Jose, US.CA", "San José, CR.08"), "nn", first=True),
    Example("constrained by location, as in the paper's (and (or location...) (or terms nn))",
            "(and (or (term region:us.il) (term region:us.mo)) "
            "(or (match name $q) (nn $key :radius {radius} :nprobe 16)))",
            "springfeild", ("us",), ("Springfield, US.MO",), "nn"),
)


def example_city_names() -> list[str]:
    """The names of the examples' cities (a reduced index keeps every city so named)."""
    return sorted({label.rpartition(",")[0] for e in EXAMPLES for label in e.expect})


# -- running a request ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Embedder:
    """A :class:`QueryEmbedding` as the request API's embedder of its key."""

    embedding: QueryEmbedding
    dimension: int

    @property
    def key(self) -> str:
        return self.embedding.key

    @property
    def context_fields(self) -> tuple[str, ...]:
        return ("country",) if self.embedding.contextual else ()

    def embed(self, text: str, context: Mapping[str, str]) -> FloatArray:
        return self.embedding.embed(text, context)


def searcher(store: Store, embedding: QueryEmbedding) -> Searcher:
    """The request API over the cities index: ``embedding`` for its key, reranked by the
    linear reranker (no training)."""
    spec = store.schema.key(embedding.key)
    dimension = spec.dimension if spec is not None else 0
    return Searcher(store, [_Embedder(embedding, dimension)], reranker=LinearReranker())


def run_request(requests: Searcher, template: str, text: str, context: Mapping[str, str],
                size: int) -> SearchResponse:
    """One request, as an app backend sends it: the template filled with the text and the
    searcher's context, embedded, retrieved, reranked, its first ``size`` hits."""
    return requests.search(template, text=text, context=context, size=size)


# -- explaining the hits --------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleHit:
    ranked: RankedHit
    label: str  # "San Francisco, US.CA"
    population: int
    via: str  # "nn", "terms" or "both"
    distance: float | None
    probe_rank: int | None

    @property
    def hit(self) -> Hit:
        return self.ranked.hit

    @property
    def bm25(self) -> float:
        return sum(t.score for t in self.hit.texts)

    @property
    def nn_score(self) -> float:
        """The share of the first-stage score the vector clauses gave."""
        return self.hit.score - self.bm25


@dataclass(frozen=True)
class ExampleRun:
    """One searcher country's run of an example."""

    country: str
    expect: str
    response: SearchResponse
    hits: tuple[ExampleHit, ...]
    #: Cosine distance from the request's embedding to the expected city's.
    expected_distance: float | None

    def found(self, via: str, first: bool) -> ExampleHit | None:
        """The expected city among the hits (first, if asked), matched through ``via``."""
        for h in self.hits[:1] if first else self.hits:
            if h.label == self.expect and h.via == via:
                return h
        return None


@dataclass(frozen=True)
class ExampleResult:
    example: Example
    runs: tuple[ExampleRun, ...]
    embedding: QueryEmbedding

    @property
    def found(self) -> bool:
        """Every run found its city through the expected branch."""
        return all(r.found(self.example.via, self.example.first) for r in self.runs)


def via(plan_root: Node, branches: Sequence[str]) -> str:
    """Whether a hit matched the plan through vector branches, term branches or both
    (:class:`~ebr.ranking.branches.BranchKinds`)."""
    kinds = BranchKinds(plan_root).of(branches)
    return "both" if len(kinds) == 2 else next(iter(kinds))


def run_example(store: Store, embedding: QueryEmbedding, example: Example,
                size: int = 5) -> ExampleResult:
    template = example.template.replace("{radius}", f"{embedding.radius:g}")
    requests = searcher(store, embedding)
    runs = []
    for country, expect in zip(example.countries, example.expect, strict=True):
        context = {"country": country}
        response = run_request(requests, template, example.text, context, size)
        documents = store.get_documents(response.ids)
        hits = []
        for ranked, doc in zip(response.hits, documents, strict=True):
            hit = ranked.hit
            source: dict[str, Any] = dict(doc.source) if doc else {}
            clause = hit.clauses[0] if hit.clauses else None
            hits.append(ExampleHit(ranked, city_label(source), int(source.get("population", 0)),
                                   via(response.plan, hit.branches),
                                   clause.distance if clause else None,
                                   clause.probe_rank if clause else None))
        vector = embedding.embed(example.text, context)
        runs.append(ExampleRun(country, expect, response, tuple(hits),
                               _distance_to(store, embedding.key, vector, expect)))
    return ExampleResult(example, tuple(runs), embedding)


def _distance_to(store: Store, key: str, vector: FloatArray, label: str) -> float | None:
    name, _, region = label.rpartition(", ")
    result = search_text(store, f"(and (term region:{atom_text(region.lower())}) "
                                f"(match name {atom_text(name)}))", {}, size=50)
    for doc in store.get_documents(result.ids):
        if doc is not None and city_label(doc.source) == label:
            return float(1.0 - float(np.dot(doc.embeddings[key], vector)))
    return None


def run_examples(store: Store, embedding: QueryEmbedding,
                 examples: Sequence[Example] = EXAMPLES, size: int = 5) -> list[ExampleResult]:
    return [run_example(store, embedding, e, size) for e in examples]


def render(results: Sequence[ExampleResult]) -> Iterator[str]:
    """The examples as text lines: the request, each hit with how it matched and what its
    score is made of, the store's figures, and whether the expected city was found."""
    for n, r in enumerate(results, 1):
        e = r.example
        yield f"{n}. {e.title}"
        if e.note:
            yield f"   ({e.note})"
        for run in r.runs:
            yield (f"   searcher in {run.country.upper()}, text {e.text!r} -> "
                   f"{run.response.query}")
            if run.expected_distance is not None:
                yield f"   distance from the request to {run.expect}: {run.expected_distance:.3f}"
            for i, h in enumerate(run.hits, 1):
                parts = []
                if h.distance is not None:
                    probe = f", probe rank {h.probe_rank}" if h.probe_rank is not None else ""
                    parts.append(f"nn {h.nn_score:.3f} (distance {h.distance:.3f}{probe})")
                if h.hit.texts:
                    parts.append(f"bm25 {h.bm25:.3f}")
                why = " + ".join(parts) or "terms only"
                yield (f"   {i}. {h.label:<26} pop {h.population:>10,}  via {h.via:<5}  "
                       f"first stage {h.hit.score:.3f} = {why}")
                yield f"      reranked {h.ranked.score:.3f} = {_contributions(h.ranked)}"
            if not run.hits:
                yield "   (no hits)"
            s = run.response.stats
            yield (f"   {s.total} matched, {s.documents_scanned} postings scanned, "
                   f"{s.candidates_verified} vectors verified; request "
                   f"{sum(run.response.timings.values()) * 1000:.2f} ms")
        yield "   -> " + _verdict(r)
        yield ""


def _contributions(ranked: RankedHit, most: int = 3) -> str:
    """The features that gave most of the reranker's score."""
    shares = sorted(((v, k) for k, v in ranked.contributions.items() if v), reverse=True)
    return " + ".join(f"{k} {v:.3f}" for v, k in shares[:most]) or "0"


def _verdict(r: ExampleResult) -> str:
    e = r.example
    if e.first:
        firsts = [run.hits[0].label if run.hits else "nothing" for run in r.runs]
        if not r.embedding.contextual:
            return (f"{' and '.join(firsts)} first: {r.embedding.description} does not read the "
                    "searcher's country, so every searcher gets the same cities")
        ranked = " / ".join(f"{run.country.upper()}: {first}" for run, first in
                            zip(r.runs, firsts, strict=True))
        return f"first ranked by searcher country: {ranked}" + ("" if r.found else "  (NOT as expected)")
    return "; ".join(f"{run.expect} {'found' if run.found(e.via, e.first) else 'NOT found'} via {e.via}"
                     for run in r.runs)
