"""The OpenSearch store: an ebr index in an OpenSearch cluster, queried through the compiler.

Layout (:mod:`ebr.mappings.opensearch_mapping`): one document per ebr document, its terms per
namespace, its coarse cluster per key, its vectors, rank, id and source.  The index mapping's
``_meta`` carries the schema and the k-NN engine; a small metadata index ``<index>.ebr-meta``
holds them again (document ``index``) with each key's coarse-quantizer centroids (documents
``quantizer:<key>``), so any client that may search, a read-only user too, can open the index
and plan queries for it.

What the store promises (the local store's contract, where OpenSearch can keep it):

- a batch is checked whole before anything is sent (:mod:`ebr.stores.documents`): bad input
  writes nothing;
- writes go through opensearch-py's bulk helper, chunked by count and bytes, 429s retried
  with backoff (5xx by the client); a batch is **not atomic** in OpenSearch: documents the
  cluster refuses are reported per document (:class:`BulkWriteError`), the others are written;
- once ``add`` / ``delete`` returns, the index is refreshed: the next search sees the batch;
- a search means what it means in the local store: the same plan gives the same documents,
  the same branches per hit and the same distances (within float32), in the same order up to
  ties.  Radius clauses are exact on the server (``script_score`` + ``min_score``); a top-K
  clause is resolved on its own first (:func:`~ebr.stores.opensearch.compiler.compile_top_k`),
  because a ``knn`` clause inside a ``bool`` admits ``k`` per shard (per segment on native
  engines).  Top-K searches the key's ``knn_vector`` field (HNSW), so it is as approximate
  as the engine's graph; the local store is exact below its threshold.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError, StoreError
from ebr.mappings.opensearch_mapping import ENGINES, Engine, index_body
from ebr.mappings.schema import EmbeddingKey, IvfPq, Schema, cluster_namespace
from ebr.planning.query_vectors import Vectors, query_vector
from ebr.planning.rules.expand_nn import probe_list
from ebr.quantization.coarse import CentroidQuantizer, assign
from ebr.quantization.kmeans import TrainingReport, train_centroids
from ebr.query.nodes import NN, Node, Within, branch_order, named_branches, walk
from ebr.stores.arguments import checked_centroids, schema_key
from ebr.stores.documents import PreparedDocument, check_id, prepare_batch
from ebr.stores.opensearch.client import cluster_errors, connect, server_version, where
from ebr.stores.opensearch.compiler import compile_search, compile_top_k
from ebr.stores.opensearch.versions import ServerVersion
from ebr.stores.protocol import (
    ClauseMatch,
    Hit,
    IndexDocument,
    IndexStats,
    SearchResult,
    SearchStats,
    Store,
    StoredDocument,
    WriteResult,
)
from ebr.stores.reference import cosine_distance

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

F32 = npt.NDArray[np.float32]
#: Documents per bulk request, and the most bytes one may carry.
CHUNK_DOCUMENTS = 500
CHUNK_BYTES = 10 << 20
#: Retries of documents the cluster refused for now (429, 503...), with doubling backoff.
BULK_RETRIES = 5
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
#: Documents read per scroll page when re-assigning clusters or training.
SCROLL_SIZE = 1000
#: The most failures a BulkWriteError lists in its message (all are in ``failures``).
SHOWN_FAILURES = 5


#: The metadata index's documents: the schema and engine, and one per key's quantizer.
_INDEX_DOC = "index"
_QUANTIZER_DOC = "quantizer:"


def meta_index(index: str) -> str:
    """The index holding ``index``'s coarse quantizers."""
    return index + ".ebr-meta"


class BulkWriteError(StoreError):
    """Documents the cluster refused; the rest of the batch was written.  ``failures`` holds
    ``(document id, status, reason)`` for each, ``written`` what was written."""

    def __init__(self, index: str, failures: list[tuple[str, int, str]],
                 written: WriteResult) -> None:
        self.failures = failures
        self.written = written
        shown = "; ".join(f"{i!r}: {status} {reason}" for i, status, reason in
                          failures[:SHOWN_FAILURES])
        more = f" (and {len(failures) - SHOWN_FAILURES} more)" if len(failures) > SHOWN_FAILURES else ""
        super().__init__(f"{len(failures)} documents of the batch were refused by index {index!r}"
                         f", the others written ({written.added} added, {written.replaced} "
                         f"replaced, {written.deleted} deleted): {shown}{more}")


class OpenSearchStore:
    """An open ebr index in OpenSearch (implements :class:`ebr.stores.protocol.Store`).  Use
    :meth:`create` or :meth:`open`; ``cluster`` is a URL (see
    :func:`~ebr.stores.opensearch.client.connect` for credentials and TLS) or a client."""

    def __init__(self, client: OpenSearch, index: str, schema: Schema, engine: Engine,
                 version: ServerVersion, quantizers: dict[str, CentroidQuantizer],
                 owns_client: bool) -> None:
        self.client = client
        self.index = index
        self.engine = engine
        #: Read once per store: the compiler gates on it where the release lines differ.
        self.version = version
        self._schema = schema
        self._quantizers = quantizers
        self._owns_client = owns_client
        self._closed = False
        self._refresh_each_write = True

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls, cluster: str | OpenSearch, index: str, schema: Schema, *, shards: int = 1,
               replicas: int = 0, engine: Engine = "faiss", **connection: Any) -> OpenSearchStore:
        """A new, empty index named ``index`` (the schema's own index name is not used).
        ``engine``: ``"faiss"`` (needs the k-NN native libraries; IVF-PQ keys need it) or
        ``"lucene"`` (HNSW; what every OpenSearch distribution has)."""
        if engine not in ENGINES:
            raise StoreError(f"unknown k-NN engine {engine!r}; use one of {', '.join(ENGINES)}")
        client, owns = _client(cluster, connection)
        version = server_version(client)
        body = index_body(schema, shards=shards, replicas=replicas, version=version,
                          engine=engine)
        _require_models(client, schema)
        with cluster_errors(client, f"create index {index!r}"):
            if client.indices.exists(index=index) or client.indices.exists(index=meta_index(index)):
                raise StoreError(f"cannot create index {index!r} on {where(client)}: it exists "
                                 "(open it, or drop it first)")
            client.indices.create(index=meta_index(index), body={
                "settings": {"index": {"number_of_shards": 1, "number_of_replicas": replicas}},
                "mappings": {"dynamic": False}})
            try:
                client.index(index=meta_index(index), id=_INDEX_DOC, refresh=True,
                             body={"schema": schema.to_json(), "engine": engine,
                                   "version": str(version)})
                client.indices.create(index=index, body=body)
            except BaseException:  # e.g. an IVF-PQ key whose k-NN model is not trained
                client.indices.delete(index=meta_index(index), ignore_unavailable=True)
                raise
        return cls(client, index, schema, engine, version, {}, owns)

    @classmethod
    def open(cls, cluster: str | OpenSearch, index: str, **connection: Any) -> OpenSearchStore:
        """The ebr index named ``index``: its schema, engine and quantizers read from the
        cluster."""
        client, owns = _client(cluster, connection)
        meta = _read_meta(client, index)
        schema = Schema.from_json(meta[_INDEX_DOC]["schema"])
        engine = meta[_INDEX_DOC].get("engine")
        # A read-only role may not read GET /: then the version the index was created on.
        created_on = meta[_INDEX_DOC].get("version")
        version = server_version(client, ServerVersion.parse(created_on) if created_on else None)
        quantizers: dict[str, CentroidQuantizer] = {}
        for spec in schema.keys:
            doc = meta.get(_QUANTIZER_DOC + spec.name)
            if doc is not None:
                centroids = np.frombuffer(base64.b64decode(doc["centroids"]), np.float32)
                quantizers[spec.name] = CentroidQuantizer(centroids.reshape(-1, spec.dimension))
        return cls(client, index, schema, engine if engine in ENGINES else "faiss", version,
                   quantizers, owns)

    @staticmethod
    def drop(cluster: str | OpenSearch, index: str, **connection: Any) -> None:
        """Delete the ebr index ``index`` and its metadata; refuses an index ebr did not make."""
        client, owns = _client(cluster, connection)
        try:
            _read_meta(client, index)  # an ebr index, or a StoreError saying what it is
            with cluster_errors(client, f"drop index {index!r}"):
                client.indices.delete(index=[index, meta_index(index)], ignore_unavailable=True)
        finally:
            if owns:
                client.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_client:
                self.client.close()

    def __enter__(self) -> OpenSearchStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- what it holds ------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def quantizers(self) -> Mapping[str, CentroidQuantizer]:
        return self._quantizers

    def stats(self) -> IndexStats:
        """Documents and embeddings are exact counts; ``terms`` is the sum of each
        namespace's (approximate, HyperLogLog) distinct count, cluster terms included."""
        from opensearchpy.exceptions import AuthorizationException

        self._check_open()
        fields = {**{f"t{i}": self._schema.term_field(n.name)
                     for i, n in enumerate(self._schema.namespaces)},
                  **{f"c{i}": self._schema.term_field(k.cluster_namespace)
                     for i, k in enumerate(self._schema.keys)}}
        with cluster_errors(self.client, f"read the stats of index {self.index!r}"):
            documents = self.client.count(index=self.index)["count"]
            embeddings = {k.name: self.client.count(index=self.index, body={"query": {
                "exists": {"field": self._schema.vector_field(k.name)}}})["count"]
                for k in self._schema.keys}
            aggs = self.client.search(index=self.index, body={"size": 0, "aggs": {
                name: {"cardinality": {"field": f, "precision_threshold": 40000}}
                for name, f in fields.items()}})["aggregations"] if fields else {}
        try:
            store = self.client.indices.stats(index=self.index, metric="store")
            disk: int | None = store["_all"]["primaries"]["store"]["size_in_bytes"]
        except AuthorizationException:  # a read-only user may count but not see index stats
            disk = None
        return IndexStats(
            documents=documents, embeddings=embeddings,
            terms=sum(int(a["value"]) for a in aggs.values()),
            quantizers={k.name: (q.nlist if (q := self._quantizers.get(k.name)) else None)
                        for k in self._schema.keys},
            disk_bytes=disk)

    def sample_terms(self, namespace: str, limit: int) -> list[str]:
        self._check_open()
        found = self._search({"size": 0, "aggs": {"values": {"terms": {
            "field": self._schema.term_field(namespace), "size": limit}}}})
        return [str(b["key"]) for b in found["aggregations"]["values"]["buckets"]]

    # -- writes -------------------------------------------------------------------------------

    def add(self, documents: Iterable[IndexDocument]) -> WriteResult:
        """Insert or replace a batch; checked whole first, then written in bulk chunks (see
        the module docstring for what is atomic)."""
        self._check_open()
        docs = prepare_batch(self._schema, documents)
        clusters = self._clusters(docs)
        return self._bulk(({"_op_type": "index", "_id": d.id, "_source": self._source(d, c)}
                           for d, c in zip(docs, clusters, strict=True)), "write")

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete a batch of ids; ids not in the index are ignored."""
        self._check_open()
        unique = list(dict.fromkeys(check_id(i, n) for n, i in enumerate(ids)))
        return self._bulk(({"_op_type": "delete", "_id": i} for i in unique), "delete from")

    @contextlib.contextmanager
    def batched_writes(self) -> Iterator[None]:
        """Writes within are refreshed once, at the end, rather than each (an ingest's many
        batches: every refresh makes a segment, and each segment its own HNSW graph)."""
        self._refresh_each_write = False
        try:
            yield
        finally:
            self._refresh_each_write = True
        self._refresh()  # not after a failure: the cluster's own refresh interval will

    def _refresh(self) -> None:
        with cluster_errors(self.client, f"refresh index {self.index!r}"):
            self.client.indices.refresh(index=self.index)

    def _source(self, doc: PreparedDocument, clusters: Mapping[str, int]) -> dict[str, Any]:
        terms: dict[str, list[str]] = {}
        for term in doc.terms:
            ns, _, value = term.partition(":")
            terms.setdefault(ns, []).append(value)
        return {
            "id": doc.id,
            "terms": terms,
            "clusters": {k: str(c) for k, c in clusters.items()},
            "vectors": {k: v.tolist() for k, v in doc.vectors.items()},
            self._schema.rank_field: doc.rank,
            "source": json.loads(doc.source_json),
        }

    def _clusters(self, docs: Sequence[PreparedDocument]) -> list[dict[str, int]]:
        """Each document's cluster per key with a quantizer."""
        out: list[dict[str, int]] = [{} for _ in docs]
        for key, quantizer in self._quantizers.items():
            having = [i for i, d in enumerate(docs) if key in d.vectors]
            if having:
                ids = assign(quantizer, np.stack([docs[i].vectors[key] for i in having]))
                for i, c in zip(having, ids.tolist(), strict=True):
                    out[i][key] = c
        return out

    def _bulk(self, actions: Iterable[dict[str, Any]], doing: str) -> WriteResult:
        """Send ``actions`` in bulk chunks.  Documents refused with a passing status (a
        primary shard moving after a node left: 503; too many requests: 429) are sent again,
        with doubling backoff, up to :data:`BULK_RETRIES` times; the rest are reported."""
        from opensearchpy import helpers

        added = replaced = deleted = 0
        failures: list[tuple[str, int, str]] = []
        pending = list(actions)
        with cluster_errors(self.client, f"{doing} index {self.index!r}"):
            for attempt in range(BULK_RETRIES + 1):
                by_id = {a["_id"]: a for a in pending}
                again: list[dict[str, Any]] = []
                for ok, item in helpers.streaming_bulk(
                        self.client, pending, index=self.index, chunk_size=CHUNK_DOCUMENTS,
                        max_chunk_bytes=CHUNK_BYTES, max_retries=BULK_RETRIES, initial_backoff=1,
                        raise_on_error=False, raise_on_exception=True):
                    (op, result), = item.items()
                    outcome = result.get("result")
                    status = int(result.get("status", 0))
                    if ok:
                        added += outcome == "created"
                        replaced += outcome == "updated"
                        deleted += outcome == "deleted"
                    elif op == "delete" and status == 404:
                        continue  # not in the index: nothing to delete
                    elif status in RETRIED_STATUSES and attempt < BULK_RETRIES:
                        again.append(by_id[result.get("_id")])
                    else:
                        error = result.get("error") or {}
                        reason = (f"{error.get('type', '')}: {error.get('reason', '')}"
                                  if isinstance(error, dict) else str(error))
                        failures.append((str(result.get("_id")), status, reason))
                if not again:
                    break
                time.sleep(min(2.0 ** attempt, 30.0))
                pending = again
            if (added or replaced or deleted) and self._refresh_each_write:
                self.client.indices.refresh(index=self.index)  # the next search sees the batch
        written = WriteResult(added=added, replaced=replaced, deleted=deleted)
        if failures:
            raise BulkWriteError(self.index, failures, written)
        return written

    # -- quantizers ---------------------------------------------------------------------------

    def set_quantizer(self, key: str, centroids: npt.ArrayLike) -> None:
        """Use these centroids (``nlist x dimension``) as ``key``'s coarse quantizer, store
        them with the index, and re-assign every document's cluster term."""
        self._check_open()
        spec = self._key(key)
        quantizer = CentroidQuantizer(checked_centroids(spec, centroids))
        with cluster_errors(self.client, f"store the quantizer of {key!r}"):
            self.client.index(index=meta_index(self.index), id=_QUANTIZER_DOC + key, refresh=True, body={
                "nlist": quantizer.nlist, "dimension": spec.dimension,
                "centroids": base64.b64encode(quantizer.centroids.tobytes()).decode("ascii")})
        self._quantizers[key] = quantizer
        self._bulk(self._reassignments(key, quantizer), "re-assign clusters in")

    def _reassignments(self, key: str, quantizer: CentroidQuantizer) -> Iterator[dict[str, Any]]:
        self._refresh()  # every document written so far, searchable
        for page in self._pages(key):
            vectors = np.stack([np.asarray(src["vectors"][key], np.float32) for _, src in page])
            for (doc_id, _), cluster in zip(page, assign(quantizer, vectors).tolist(), strict=True):
                yield {"_op_type": "update", "_id": doc_id, "doc": {"clusters": {key: str(cluster)}}}

    def train_quantizers(self, keys: Iterable[str] | None = None, *,
                         sample_size: int | None = None, nlist: int | None = None,
                         seed: int = 0, niter: int = 20) -> dict[str, TrainingReport]:
        """Train each key's coarse quantizer with spherical k-means on the index's vectors,
        as the local store does (:meth:`ebr.stores.local.LocalStore.train_quantizers`), and
        re-assign every document.  PQ/OPQ codes are the local store's alone: OpenSearch
        verifies radius clauses exactly on the server."""
        reports: dict[str, TrainingReport] = {}
        for key in list(keys) if keys is not None else [k.name for k in self._schema.keys]:
            spec = self._key(key)
            start = time.perf_counter()
            self._refresh()  # train on every document written so far
            rows = [np.asarray(src["vectors"][key], np.float32)
                    for page in self._pages(key) for _, src in page]
            vectors = np.stack(rows) if rows else np.empty((0, spec.dimension), np.float32)
            clusters = nlist if nlist is not None else spec.quantizer.nlist
            centroids, sample = train_centroids(key, vectors, clusters, sample_size=sample_size,
                                                seed=seed, niter=niter)
            self.set_quantizer(key, centroids)
            reports[key] = TrainingReport(key, len(vectors), len(sample), clusters,
                                          time.perf_counter() - start)
        return reports

    def _pages(self, key: str) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """``(id, source holding only the vector)`` of every document with a ``key``
        embedding, a page at a time, in id order (a fixed order: training is repeatable)."""
        from opensearchpy import helpers

        field = self._schema.vector_field(key)
        page: list[tuple[str, dict[str, Any]]] = []
        with cluster_errors(self.client, f"read the {key!r} vectors of index {self.index!r}"):
            for hit in helpers.scan(self.client, index=self.index, size=SCROLL_SIZE,
                                    query={"query": {"exists": {"field": field}},
                                           "_source": [field],
                                           "sort": [{"id": "asc"}]},
                                    preserve_order=True):
                page.append((hit["_id"], hit["_source"]))
                if len(page) == SCROLL_SIZE:
                    yield page
                    page = []
        if page:
            yield page

    # -- reads --------------------------------------------------------------------------------

    def search(self, plan: Node, vectors: Vectors, size: int = 10, *,
               start: int = 0) -> SearchResult:
        """Execute a plan from :func:`ebr.plan` made with :attr:`quantizers`: hits ``start``
        to ``start + size`` in first-stage order (score, static rank, id), each explained."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PlanError(f"size must be a whole number >= 0, got {size!r}")
        self._check_open()
        began = time.perf_counter()
        server = 0.0
        resolved: dict[NN, list[str]] = {}
        for node in walk(plan):
            if type(node) is NN and node.k is not None and node not in resolved:
                body = compile_top_k(node, self._schema, vectors, version=self.version)
                found = self._search(body)
                server += found["took"] / 1000
                resolved[node] = [h["_id"] for h in found["hits"]["hits"]]
        compiled = compile_search(plan, self._schema, vectors, size=size, start=start,
                                  version=self.version, resolved=resolved, tie_break=True)
        fields = [self._schema.vector_field(k.name) for k in self._schema.keys]
        found = self._search(compiled.body, track_total_hits=True,
                             _source_includes=["clusters", self._schema.rank_field, *fields])
        server += found["took"] / 1000
        branches = named_branches(plan)
        queries = {k.name: query_vector(k.name, vectors, self._schema)
                   for k in self._schema.keys if k.name in vectors}
        hits = tuple(self._hit(h, branches, queries) for h in found["hits"]["hits"])
        total = found["hits"]["total"]["value"]
        elapsed = time.perf_counter() - began
        return SearchResult(hits, SearchStats(total=total, documents_scanned=0,
                                              candidates_verified=0,
                                              seconds={"server": server,
                                                       "client": max(0.0, elapsed - server)}))

    def _search(self, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        with cluster_errors(self.client, f"search index {self.index!r}"):
            found: dict[str, Any] = self.client.search(index=self.index, body=body, **params)
        if found.get("_shards", {}).get("failed"):
            raise StoreError(f"search of index {self.index!r} failed on some shards: "
                             f"{found['_shards'].get('failures')}")
        return found

    def _hit(self, hit: dict[str, Any], branches: Mapping[str, Node],
             queries: Mapping[str, F32]) -> Hit:
        """A hit as the local store explains it: its branches in tree order, and each vector
        clause's distance computed from the stored vector the hit carries."""
        source = hit.get("_source") or {}
        matched = sorted(hit.get("matched_queries") or [], key=branch_order)
        clauses = []
        for name in matched:
            node = branches.get(name)
            if isinstance(node, NN | Within):
                stored = np.asarray(source["vectors"][node.key], np.float32)
                distance = cosine_distance(queries[node.key], stored)
                probes = probe_list(node.key, node.candidates) if isinstance(node, Within) else None
                cluster = source.get("clusters", {}).get(node.key)
                rank = (probes.index(int(cluster)) if probes is not None and cluster is not None
                        and int(cluster) in probes else None)
                clauses.append(ClauseMatch(name, node.key, distance, rank))
        return Hit(hit["_id"], float(hit["_score"] or 0.0),
                   float(source.get(self._schema.rank_field, 0.0)), tuple(matched), tuple(clauses))

    def get_documents(self, ids: Sequence[str]) -> list[StoredDocument | None]:
        self._check_open()
        if not ids:
            return []
        with cluster_errors(self.client, f"read documents of index {self.index!r}"):
            found = self.client.mget(index=self.index, body={"ids": list(ids)})
        out: list[StoredDocument | None] = []
        for doc in found["docs"]:
            if not doc.get("found"):
                out.append(None)
                continue
            s = doc["_source"]
            terms = {ns: tuple(sorted(values)) for ns, values in s.get("terms", {}).items()}
            terms.update({cluster_namespace(k): (c,) for k, c in s.get("clusters", {}).items()})
            out.append(StoredDocument(
                doc["_id"], dict(sorted(terms.items())),
                {k: np.asarray(v, np.float32) for k, v in s.get("vectors", {}).items()},
                float(s.get(self._schema.rank_field, 0.0)), s.get("source", {})))
        return out

    def get_vectors(self, ids: Sequence[str], key: str) -> dict[str, F32]:
        self._check_open()
        self._key(key)
        if not ids:
            return {}
        field = self._schema.vector_field(key)
        with cluster_errors(self.client, f"read vectors of index {self.index!r}"):
            found = self.client.mget(index=self.index, body={"ids": list(ids)},
                                     _source_includes=[field])
        return {d["_id"]: np.asarray(d["_source"]["vectors"][key], np.float32)
                for d in found["docs"] if d.get("found") and key in d["_source"].get("vectors", {})}

    # -- helpers ------------------------------------------------------------------------------

    def _key(self, key: str) -> EmbeddingKey:
        return schema_key(self._schema, key)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store of index {self.index!r} is closed")


def index_exists(cluster: str | OpenSearch, index: str, **connection: Any) -> bool:
    """Whether ``index`` is on the cluster (ebr's or not)."""
    from opensearchpy.exceptions import NotFoundError

    client, owns = _client(cluster, connection)
    try:
        with cluster_errors(client, f"look for index {index!r}"):
            try:
                client.count(index=index)
            except NotFoundError:
                return False
        return True
    finally:
        if owns:
            client.close()


def _client(cluster: str | OpenSearch, connection: Mapping[str, Any]) -> tuple[OpenSearch, bool]:
    """A client for ``cluster``, and whether the store made it (and so closes it)."""
    if isinstance(cluster, str):
        return connect(cluster, **connection), True
    return cluster, False


def _require_models(client: OpenSearch, schema: Schema) -> None:
    """Every IVF-PQ key's k-NN model trained: the cluster accepts a field naming a model that
    does not exist, and fails only on the first document written to it."""
    from opensearchpy.exceptions import NotFoundError

    for key in schema.keys:
        if not isinstance(key.ann, IvfPq):
            continue
        with cluster_errors(client, f"read k-NN model {key.ann.model_id!r}"):
            try:
                model = client.transport.perform_request(
                    "GET", f"/_plugins/_knn/models/{key.ann.model_id}")
            except NotFoundError:
                model = {}
        state = model.get("state") if isinstance(model, dict) else None
        if state != "created":
            raise StoreError(f"key {key.name!r} uses k-NN model {key.ann.model_id!r}, which is "
                             f"{'not trained' if state is None else state} on {where(client)}: "
                             "train it first (ebr.mappings.opensearch_mapping.train_model_body)")


def _read_meta(client: OpenSearch, index: str) -> dict[str, dict[str, Any]]:
    """The documents of ``index``'s metadata index by id, or a StoreError saying why there
    are none.  It only searches and counts, so a user who may only read can open the index."""
    from opensearchpy.exceptions import NotFoundError

    with cluster_errors(client, f"open index {index!r}"):
        try:
            found = client.search(index=meta_index(index),
                                  body={"size": 10_000, "query": {"match_all": {}}})
        except NotFoundError:
            found = None
        try:
            client.count(index=index)
        except NotFoundError:
            raise StoreError(f"no index {index!r} on {where(client)}; create one first") from None
    docs = {} if found is None else {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}
    if _INDEX_DOC not in docs:
        raise StoreError(f"index {index!r} on {where(client)} is not an ebr index (it has no "
                         f"{meta_index(index)!r} metadata); ebr leaves it alone")
    return docs


def _implements(store: OpenSearchStore) -> Store:
    """Never called: where mypy checks that OpenSearchStore has the Store protocol's shape."""
    return store
