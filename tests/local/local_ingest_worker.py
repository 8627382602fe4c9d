"""A writer for the durability test: ingests batches into a local index one after another
and prints each batch number once its commit returned.  Run as a script:
``python local_ingest_worker.py <index dir> <first batch>``; it stops after MAX_BATCHES (the
test kills it long before)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument

SCHEMA = Schema.create("durable", (Namespace("batch", "keyword"),),
                       (EmbeddingKey("e", 16, CoarseQuantizerSpec(nlist=4)),))
PER_BATCH = 300
MAX_BATCHES = 10_000


def batch(b: int) -> list[IndexDocument]:
    """Batch ``b``: its own documents, and the ``head`` document rewritten to say ``b``."""
    vectors = np.random.default_rng(b).normal(size=(PER_BATCH, 16)).astype(np.float32)
    docs = [IndexDocument(f"b{b}-{i}", {"batch": [str(b)]}, embeddings={"e": vectors[i]},
                          source={"batch": b, "i": i}) for i in range(PER_BATCH)]
    return [*docs, IndexDocument("head", {"batch": ["head"]}, rank=float(b), source={"batch": b})]


def main(path: Path, first: int) -> None:
    store = LocalStore.open(path) if path.exists() else LocalStore.create(path, SCHEMA)
    for b in range(first, first + MAX_BATCHES):
        store.add(batch(b))
        if b == first + 1:
            store.train_quantizers(sample_size=400)  # later batches get cluster terms
        print(b, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
