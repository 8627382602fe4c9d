"""``ebr doctor``: prove ebr on a cluster, one verdict per check.

1. the server: OpenSearch, its version and release line, supported by ebr;
2. the k-NN plugin is installed;
3. painless ``cosineSimilarity`` scores exactly in ``script_score`` (a temporary index);
4. a small differential suite: fixed documents in a temporary index and in a local store,
   fixed hybrid queries (terms, radius and top-K nn, difference) through both stores, which
   must agree (:func:`ebr.stores.agreement.disagreements`); the index is deleted after.

The Faiss engine is tried only when asked (``engine="faiss"``): on a cluster without the
k-NN native libraries the first document written to a Faiss field kills the node.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ebr.errors import EbrError
from ebr.mappings.opensearch_mapping import Engine
from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.stores.agreement import disagreements
from ebr.stores.opensearch.client import cluster_errors, connect, server_version
from ebr.stores.protocol import IndexDocument, search_text

KEY = "m"
DIMENSION = 8
SCHEMA = Schema("ebr-doctor", (Namespace("a", "keyword"), Namespace("b", "keyword")),
                (EmbeddingKey(KEY, DIMENSION, CoarseQuantizerSpec(nlist=4, default_nprobe=2)),))
QUERIES = (
    "(and (or (term a:1) (term a:2)) (or (and (term b:1) (term b:2)) (nn m :radius 0.6)))",
    "(nn m :k 5)",
    "(and (term a:1) (nn m :k 4))",
    "(or (term b:3) (nn m :k 3 :nprobe 2))",
    "(difference (nn m :radius 0.9 :exact true) (nn m :k 3))",
    "(or (nn m :k 2) (and (term a:3) (nn m :radius 0.5)))",
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def documents(n: int = 200, seed: int = 20200823) -> list[IndexDocument]:
    """Fixed seeded documents: terms from two small vocabularies, most with an embedding."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        terms = {ns: sorted({str(v) for v in rng.integers(1, 4, rng.integers(0, 3))})
                 for ns in ("a", "b")}
        embeddings = {KEY: rng.standard_normal(DIMENSION)} if rng.random() < 0.9 else {}
        out.append(IndexDocument(f"doc-{i:03d}", {k: v for k, v in terms.items() if v},
                                 embeddings=embeddings, rank=float(rng.integers(0, 3))))
    return out


def run_checks(url: str, *, engine: Engine = "lucene", shards: int = 1,
               **connection: Any) -> Iterator[Check]:
    """Each check's verdict, in order; stops after the first check that fails the cluster
    (the later ones need it)."""
    client = connect(url, **connection)
    try:
        try:
            version = server_version(client)
        except EbrError as e:
            yield Check("server", False, str(e))
            return
        yield Check("server", True, f"OpenSearch {version} ({version.major}.x line)")
        with cluster_errors(client, "list the plugins"):
            plugins = {p["component"] for p in client.cat.plugins(format="json")}
        if "opensearch-knn" not in plugins:
            yield Check("k-NN plugin", False, "the opensearch-knn plugin is not installed: ebr "
                        "needs it for knn_vector fields and cosineSimilarity")
            return
        yield Check("k-NN plugin", True, "opensearch-knn installed")
        yield _guarded("painless cosineSimilarity", lambda: _cosine(client, engine))
        yield _guarded("differential suite", lambda: _differential(client, engine, shards))
    finally:
        client.close()


def _guarded(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except (EbrError, AssertionError) as e:
        return Check(name, False, str(e))


def _scratch() -> str:
    return f"ebr-doctor-{uuid.uuid4().hex[:12]}"


def _cosine(client: Any, engine: Engine) -> str:
    index = _scratch()
    body = {"settings": {"index": {"knn": True, "number_of_replicas": 0}}, "mappings": {
        "properties": {"v": {"type": "knn_vector", "dimension": 3, "method": {
            "name": "hnsw", "engine": engine, "space_type": "cosinesimil"}}}}}
    with cluster_errors(client, "check painless cosineSimilarity"):
        client.indices.create(index=index, body=body)
        try:
            client.index(index=index, id="x", body={"v": [1.0, 2.0, 2.0]}, refresh=True)
            found = client.search(index=index, body={"query": {"script_score": {
                "query": {"match_all": {}}, "script": {
                    "source": "1.0 + cosineSimilarity(params.q, doc['v'])",
                    "params": {"q": [2.0, 1.0, 2.0]}}}}})
        finally:
            client.indices.delete(index=index, ignore_unavailable=True)
    score = found["hits"]["hits"][0]["_score"]
    expected = 1.0 + 8.0 / 9.0
    if abs(score - expected) > 1e-5:
        raise AssertionError(f"1 + cos scored {score}, expected {expected:.6f}")
    return f"1 + cos = {score:.6f} as expected"


def _differential(client: Any, engine: Engine, shards: int) -> str:
    from ebr.stores.local.store import LocalStore
    from ebr.stores.opensearch.store import OpenSearchStore

    docs = documents()
    centroids = np.random.default_rng(7).standard_normal((4, DIMENSION)).astype(np.float32)
    vector = {KEY: np.random.default_rng(3).standard_normal(DIMENSION).astype(np.float32)}
    index = _scratch()
    with tempfile.TemporaryDirectory() as tmp, \
            LocalStore.create(Path(tmp) / "index", SCHEMA, synchronous="NORMAL") as local:
        remote = OpenSearchStore.create(client, index, SCHEMA, shards=shards, engine=engine)
        try:
            for store in (local, remote):
                store.set_quantizer(KEY, centroids)
                store.add(docs)
            failed = []
            for text in QUERIES:
                problems = disagreements(search_text(local, text, vector, len(docs)),
                                         search_text(remote, text, vector, len(docs)))
                if problems:
                    failed.append(f"{text}: {'; '.join(problems[:3])}")
        finally:
            OpenSearchStore.drop(client, index)
    if failed:
        raise AssertionError(f"{len(failed)} of {len(QUERIES)} queries differ from the local "
                             "store: " + " | ".join(failed))
    return (f"{len(QUERIES)} hybrid queries over {len(docs)} documents ({shards} shard(s), "
            f"{engine}) agree with the local store; the temporary index is deleted")
