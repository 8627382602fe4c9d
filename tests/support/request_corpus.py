"""A small local index of product titles for the request API and ``ebr eval`` tests: a
``title`` text namespace, a ``country`` term namespace and the trigram projection of each
title under ``KEY``."""

from __future__ import annotations

from pathlib import Path

from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.request import ProjectionEmbedder
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument, Store

KEY = "title-trigrams"
DIM = 32
NLIST = 4
TITLES = [
    ("p01", "cordless drill 18v", "us"), ("p02", "cordless drill kit", "ca"),
    ("p03", "hammer drill bits", "us"), ("p04", "claw hammer", "us"),
    ("p05", "deck paint gallon", "ca"), ("p06", "exterior deck stain", "us"),
    ("p07", "paint roller cover", "us"), ("p08", "wood screws box", "ca"),
    ("p09", "drywall screws", "us"), ("p10", "garden hose 50 ft", "us"),
    ("p11", "hose nozzle", "ca"), ("p12", "led light bulb", "us"),
    ("p13", "light switch cover", "us"), ("p14", "ceiling fan light kit", "ca"),
    ("p15", "circular saw blade", "us"), ("p16", "miter saw", "us"),
]
SCHEMA = Schema.create("products", (Namespace("title", "standard"), Namespace("country", "keyword")),
                       (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=NLIST)),))


def projection() -> TrigramProjection:
    return TrigramProjection(DIM)


def embedder() -> ProjectionEmbedder:
    return ProjectionEmbedder(KEY, projection())


def documents() -> list[IndexDocument]:
    p = projection()
    return [IndexDocument(i, {"country": [c]}, {"title": t}, {KEY: p.embed_one(t)},
                          rank=float(n % 3), source={"title": t})
            for n, (i, t, c) in enumerate(TITLES)]


def fill(store: Store) -> None:
    """The corpus into ``store``, clustered around the embeddings of four unlike titles (the
    same quantizer in every store)."""
    store.set_quantizer(KEY, projection().embed([TITLES[i][1] for i in (0, 4, 9, 14)]))  # type: ignore[attr-defined]
    store.add(documents())


def build(path: Path) -> LocalStore:
    store = LocalStore.create(path, SCHEMA, synchronous="NORMAL")
    fill(store)
    return store
