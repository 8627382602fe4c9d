"""What a reranker is given and what it returns.

A reranker sees the request (its embedding per key, the query's analyzed terms per text
namespace, the searcher's context) and the first-stage hits of one search on a store (which
it may ask for the hits' stored vectors and terms); it returns the hits in their final order,
each with the features it computed and how each contributed to the score, so every hit can
explain where it ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ebr.query.nodes import Node
from ebr.stores.protocol import Fetched, Hit, Store


@dataclass(frozen=True)
class RerankRequest:
    """One request as the reranker sees it.

    ``vectors``: the request's embedding per key (unit norm not required); ``terms``: the
    query's analyzed terms per namespace (what its ``match`` clauses asked for); ``context``:
    the searcher's context as namespace -> value (``{"country": "fr"}``), matched against the
    document's terms in the namespace of the same name; ``plan``: the executable plan the hits
    came from (:func:`ebr.plan`'s result), which tells which hits matched through term
    branches as well as through ``nn`` (without it, only a hit no vector clause matched
    counts as matched through terms); ``fetched``: what the store returned with the hits
    for the features (:func:`ebr.ranking.features.fetch_for`), read instead of asking the
    store again."""

    vectors: Mapping[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    context: Mapping[str, str] = field(default_factory=dict)
    plan: Node | None = None
    fetched: Fetched | None = None


@dataclass(frozen=True)
class RankedHit:
    """A hit in its final place: ``score`` the reranker's, ``features`` by name, and
    ``contributions`` each feature's share of the score (for a linear scorer, weight x
    value; for a trained one, its attribution)."""

    hit: Hit
    score: float
    features: Mapping[str, float]
    contributions: Mapping[str, float]


class Reranker(Protocol):
    """Orders one search's hits.  Must be safe to call from many threads at once."""

    def rerank(self, request: RerankRequest, hits: Sequence[Hit], store: Store) -> list[RankedHit]:
        """``hits`` in their final order (best first), each explained."""
        ...
