"""A small local index for the console's tests: three cities, two namespaces, one 2-d key."""

from __future__ import annotations

from pathlib import Path

from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

SCHEMA = Schema.create("tiny", (Namespace("country", "keyword"), Namespace("name")),
                       (EmbeddingKey("m-trigrams", 2, CoarseQuantizerSpec(nlist=2)),))


def build(path: Path) -> Path:
    with LocalStore.create(path, SCHEMA) as store:
        store.add([
            IndexDocument("paris", {"country": ["fr"]}, {"name": "Paris"}, {"m-trigrams": [1, 0]},
                          rank=6, source={"name": "Paris"}),
            IndexDocument("lyon", {"country": ["fr"]}, {"name": "Lyon"}, {"m-trigrams": [0.8, 0.6]},
                          rank=5, source={"name": "Lyon"}),
            IndexDocument("rome", {"country": ["it"]}, {"name": "Rome"}, {"m-trigrams": [0, 1]},
                          source={"name": "Rome"}),
        ])
        store.train_quantizers(seed=0)
    return path
