"""Helpers for the local store's tests: the schema of the hypothesis worlds, loading a world
into a store, and a plain per-document statement of the first-stage score and order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Literal

import numpy as np
from hypothesis import strategies as st
from local_formats import as_format_2

from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.query.nodes import NN, Difference, Match, Node, Within
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument
from ebr.stores.reference import (
    ReferenceDocument,
    cosine_distance,
    reference_bm25,
    reference_matches,
)
from support.strategies import DIM, KEY, NAMESPACES, VALUES, World

WORLD_SCHEMA = Schema.create("world", tuple(Namespace(n, "keyword") for n in NAMESPACES),
                             (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=4)),))


def index_document(doc: ReferenceDocument, rank: float = 0.0) -> IndexDocument:
    """A reference document as the store takes it (cluster terms left to the store)."""
    terms: dict[str, list[str]] = {}
    for t in sorted(doc.terms):
        ns, _, value = t.partition(":")
        if not ns.endswith(".cluster"):
            terms.setdefault(ns, []).append(value)
    return IndexDocument(doc.id, terms, embeddings=dict(doc.embeddings), rank=rank,
                         source={"id": doc.id})


@dataclass(frozen=True)
class History:
    """How a world reaches the store: documents in ``order`` (indices into world.docs) over
    two batches split at ``split``, after decoy versions of the ``churn`` documents (later
    replaced) and ``extras`` documents that are deleted again; after the first batch the
    vectors are laid out by cluster (``layout``: by training the same centroids again, or
    by reopening the store, or by reopening it rewritten in format 2, which the open
    upgrades) or not (then every row lies in the append tail)."""

    order: tuple[int, ...] = ()
    split: int = 0
    churn: frozenset[int] = frozenset()
    extras: int = 0
    layout: Literal["none", "retrain", "reopen", "upgrade"] = "none"


@st.composite
def histories(draw: st.DrawFn, n: int) -> History:
    order = tuple(draw(st.permutations(range(n))))
    return History(order, draw(st.integers(0, n)),
                   frozenset(draw(st.sets(st.integers(0, max(0, n - 1)), max_size=n))) if n
                   else frozenset(), draw(st.integers(0, 3)),
                   draw(st.sampled_from(["none", "retrain", "reopen", "upgrade"])))


def _decoy(doc_id: str, i: int) -> IndexDocument:
    """A different version of a document: other terms, maybe another embedding or none."""
    embeddings = {} if i % 3 == 0 else {KEY: [float(i % 2), 1.0, -1.0]}
    return IndexDocument(doc_id, {NAMESPACES[0]: [VALUES[i % len(VALUES)]]},
                         embeddings=embeddings, rank=9.0)


@contextmanager
def world_store(world: World, ranks: dict[str, float] | None = None,
                history: History | None = None, **options: object) -> Iterator[LocalStore]:
    """A fresh store in a temporary directory holding the world's documents, with the
    world's centroids as the quantizer (so cluster terms match the world's)."""
    h = history or History(tuple(range(len(world.docs))), len(world.docs))
    docs = [index_document(world.docs[i], (ranks or {}).get(world.docs[i].id, 0.0))
            for i in h.order]
    with TemporaryDirectory() as tmp:
        store = LocalStore.create(Path(tmp) / "index", WORLD_SCHEMA, synchronous="NORMAL",
                                  **options)  # type: ignore[arg-type]
        try:
            store.set_quantizer(KEY, world.quantizer.centroids)
            extras = [f"x{i}" for i in range(h.extras)]
            store.add([_decoy(world.docs[i].id, i) for i in sorted(h.churn)]
                      + [_decoy(x, i) for i, x in enumerate(extras)])
            store.add(docs[: h.split])
            if h.layout == "retrain":
                store.set_quantizer(KEY, world.quantizer.centroids)
            elif h.layout in ("reopen", "upgrade"):
                store.close()
                if h.layout == "upgrade":
                    as_format_2(Path(tmp) / "index")
                store = LocalStore.open(Path(tmp) / "index", synchronous="NORMAL",
                                        **options)  # type: ignore[arg-type]
            store.delete(extras)
            store.add(docs[h.split:])
            yield store
        finally:
            store.close()


def expected_score(plan: Node, doc: ReferenceDocument, docs: list[ReferenceDocument],
                   vectors: dict[str, np.ndarray]) -> float:
    """The first-stage score as ebr.stores.local.hits defines it, one document at a time: the sum
    over scoring clauses in scoring position that the document satisfies along with every
    ancestor, 2 - d for within, 1 - d/2 for top-K nn and BM25 for match."""

    def matches(node: Node) -> bool:
        return doc.id in reference_matches(node, docs, vectors, path_context=False)

    def score(node: Node) -> float:
        if not matches(node):
            return 0.0
        if isinstance(node, Within | NN):
            d = cosine_distance(vectors[node.key], doc.embeddings[node.key])
            return 2.0 - d if isinstance(node, Within) else 1.0 - d / 2.0
        if isinstance(node, Match):
            return reference_bm25(docs, node.namespace, node.values)[doc.id]
        children = node.children[:1] if isinstance(node, Difference) else node.children
        return sum(score(c) for c in children)

    return score(plan)


SYNTHETIC_SCHEMA = Schema.create(
    "synthetic", (Namespace("loc", "keyword"), Namespace("text", "standard")),
    (EmbeddingKey("e", 8, CoarseQuantizerSpec(nlist=8, default_nprobe=2)),))
WORDS = ("red", "green", "blue", "lamp", "chair", "table", "drill", "saw")


def synthetic(n: int, seed: int = 0, start: int = 0) -> list[IndexDocument]:
    """Clustered 8-d vectors (16 centres), a skewed location namespace, a few words of text
    and small integer ranks (so ties happen); documents ``doc{start}..``.  Most documents
    have an embedding."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(16, 8))
    docs = []
    for i in range(start, start + n):
        loc = f"l{min(int(rng.zipf(1.5)), 9)}"
        words = " ".join(rng.choice(WORDS, size=2, replace=False))
        embeddings = {}
        if rng.random() < 0.9:
            embeddings["e"] = (centres[rng.integers(16)] + 0.3 * rng.normal(size=8)).astype(
                np.float32)
        docs.append(IndexDocument(f"doc{i:04d}", {"loc": [loc]}, {"text": words}, embeddings,
                                  float(rng.integers(3)), {"n": i, "words": words}))
    return docs


def query_vector(seed: int) -> dict[str, np.ndarray]:
    return {"e": np.random.default_rng(1000 + seed).normal(size=8).astype(np.float32)}


QUERIES = (
    "(nn e :radius 0.4 :nprobe 2)",
    "(nn e :radius 0.6 :exact true)",
    "(nn e :k 7)",
    "(and (term loc:l1) (nn e :k 5 :nprobe 1))",
    "(and (or (term loc:l1) (term loc:l2)) (or (match text \"red lamp\") (nn e :radius 0.5)))",
    "(difference (or (term text:red) (nn e :radius 0.8 :nprobe 3)) (term loc:l1))",
    "(or (term text:saw) (term loc:l3))",
)
