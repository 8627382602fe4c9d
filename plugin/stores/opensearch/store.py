"""The OpenSearch store: an ebr index in an OpenSearch cluster, queried through the compiler.

Layout (:mod:`ebr.mappings.opensearch_mapping`): one document per ebr document, its terms per
namespace, its coarse cluster per key, its vectors, rank, id and source.  The index mapping's
``_meta`` carries the schema and the k-NN engine; a small metadata index ``<index>.ebr-meta``
holds them again (document ``index``) with, per embedding key, its coarse-quantizer centroids
and PQ/OPQ tables if the schema keeps them (``quantizer:<key>``), its IVF-PQ k-NN model
(``knn-model:<key>``) and the fingerprint of the encoder model that embeds for it
(``encoder:<key>``), so any client that may search, a read-only user too, can open the index
and plan queries for it.

An IVF-PQ key needs a trained k-NN model (:mod:`.models`) before a document carries its
vector: ``create(..., training={key: sample})`` trains it first; without a sample the index is
made without the key's vector field, documents with that embedding are refused until
:meth:`OpenSearchStore.train_model` has trained it (the ingest pipeline does so on its first
documents), then the field is added.  ``drop`` deletes the models ebr trained.

What the store promises (the local store's contract, where OpenSearch can keep it):

- a batch is checked whole before anything is sent (:mod:`ebr.stores.documents`): bad input
  writes nothing;
- writes go through opensearch-py's bulk helper (``parallel_bulk``, :mod:`.bulk`), chunked
  by count and bytes, documents refused for now (429, 502-504) sent again with backoff; a
  batch is **not atomic** in OpenSearch: documents the cluster refuses are reported per document
  (:class:`BulkWriteError`), the others are written; within :meth:`batched_writes` the
  batches form one stream of requests (:meth:`OpenSearchStore.add_pending`: the next batch
  is sent while one is answered);
- once ``add`` / ``delete`` returns, the index is refreshed: the next search sees the batch;
- a search means what it means in the local store: the same plan gives the same documents,
  the same branches per hit and the same distances (within float32: each follows from the
  score the server gave its clause), in the same order up to ties.  Radius clauses are
  exact on the server (``script_score`` + ``min_score``); a top-K clause is resolved on its
  own first (:func:`~ebr.stores.opensearch.compiler.compile_top_k`), because a ``knn``
  clause inside a ``bool`` admits ``k`` per shard (per segment on native engines).  Top-K
  searches the key's ``knn_vector`` field (HNSW), so it is as approximate as the engine's
  graph; the local store is exact below its threshold.
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import orjson

from ebr.errors import PlanError, StoreError, UnsupportedError
from ebr.mappings.opensearch_mapping import ENGINES, Engine, index_body, knn_vector_field
from ebr.mappings.schema import EmbeddingKey, IvfPq, Schema, cluster_namespace
from ebr.planning.query_vectors import Vectors
from ebr.quantization.coarse import CentroidQuantizer, assign
from ebr.quantization.kmeans import TrainingReport, train_centroids
from ebr.quantization.product import KSUB, ProductCodes, train_key_product
from ebr.query.nodes import NN, Match, Node
from ebr.stores.arguments import checked_centroids, schema_key
from ebr.stores.documents import PreparedDocument, check_id, prepare_batch
from ebr.stores.opensearch.bulk import BulkAction, BulkStream, PendingWrite
from ebr.stores.opensearch.bulk import BulkWriteError as BulkWriteError  # where callers find it
from ebr.stores.opensearch.client import cluster_errors, connect, send, server_version, where
from ebr.stores.opensearch.compiler import (
    compile_cosine_fields,
    compile_search,
    compile_top_k,
    prerequisites,
)
from ebr.stores.opensearch.hits import HitExplainer, fetched, source_terms, term_paths
from ebr.stores.opensearch.models import TRAINING_TIMEOUT, delete_model, model_state, train_model
from ebr.stores.opensearch.versions import ServerVersion
from ebr.stores.protocol import (
    Fetch,
    IndexDocument,
    IndexStats,
    SearchResult,
    SearchStats,
    Store,
    StoredDocument,
    WriteResult,
)

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

F32 = npt.NDArray[np.float32]
#: Documents per bulk request, and the most bytes one may carry.
CHUNK_DOCUMENTS = 500
CHUNK_BYTES = 10 << 20
#: Bulk requests in flight at once (``parallel_bulk``'s threads): the default of
#: :attr:`OpenSearchStore.bulk_in_flight`.  One: the next chunk is made while one is indexed,
#: so the node never waits for the client, and on a small node the client's work does not
#: take the cores a second request would.
BULK_IN_FLIGHT = 1
#: Retries of documents the cluster refused for now (429, 503...), with doubling backoff.
BULK_RETRIES = 5
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
#: Documents read per scroll page when re-assigning clusters or training.
SCROLL_SIZE = 1000
#: What a search leaves out of the response (``filter_path``): each hit's index name and sort
#: values would make up a quarter of a large response's JSON, parsed while the caller waits
#: (excluded rather than the rest listed: a shorter URL, quoted a character at a time).  The
#: cluster also leaves out ``hits.hits`` when there are no hits.
_HIT_FILTER = "-hits.hits._index,-hits.hits.sort"
#: A search's URL parameters; BM25 needs the whole index's term statistics, not each shard's.
_SEARCH_PARAMS = {"include_named_queries_score": "true", "filter_path": _HIT_FILTER}
_DFS_SEARCH_PARAMS = {**_SEARCH_PARAMS, "search_type": "dfs_query_then_fetch"}


#: The metadata index's documents: the schema and engine, and per key its quantizer, its
#: k-NN model and its encoder's fingerprint.
_INDEX_DOC = "index"
_QUANTIZER_DOC = "quantizer:"
_MODEL_DOC = "knn-model:"
_ENCODER_DOC = "encoder:"


def meta_index(index: str) -> str:
    """The index holding ``index``'s coarse quantizers."""
    return index + ".ebr-meta"


class OpenSearchStore:
    """An open ebr index in OpenSearch (implements :class:`ebr.stores.protocol.Store`).  Use
    :meth:`create` or :meth:`open`; ``cluster`` is a URL (see
    :func:`~ebr.stores.opensearch.client.connect` for credentials and TLS) or a client."""

    def __init__(self, client: OpenSearch, index: str, schema: Schema, engine: Engine,
                 version: ServerVersion, quantizers: dict[str, CentroidQuantizer],
                 owns_client: bool, meta: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.client = client
        self.index = index
        self.engine = engine
        #: Read once per store: the compiler gates on it where the release lines differ.
        self.version = version
        self._schema = schema
        self._quantizers = quantizers
        self._owns_client = owns_client
        self._closed = False
        #: Inside :meth:`batched_writes`: the one stream of bulk requests its writes share.
        self._stream: BulkStream | None = None
        self._bulk_in_flight = BULK_IN_FLIGHT
        #: Bumped whenever a coarse quantizer changes: bulk lines made before are stale.
        self._quantizer_epoch = 0
        #: The bulk lines :meth:`render_ahead` made, by document (the last two batches' worth:
        #: a tuple replaced whole, so a batch being queued reads it while another renders).
        self._ahead: tuple[dict[int, _Rendered], ...] = ()
        meta = meta or {}
        self._products = {k.name: _unpack_product(doc, k) for k in schema.keys
                          if (doc := meta.get(_QUANTIZER_DOC + k.name)) and doc.get("pq_m")}
        #: Each IVF-PQ key's model document (``model_id``, ``trained_by_ebr``) once trained.
        self._knn_models = {k.name: dict(doc) for k in schema.keys
                            if (doc := meta.get(_MODEL_DOC + k.name)) is not None}
        self._fingerprints = {k.name: str(doc["fingerprint"]) for k in schema.keys
                              if (doc := meta.get(_ENCODER_DOC + k.name)) is not None}
        # Keys made without a vector field for want of a model (indices made before ebr
        # trained models have none: their models had to exist)
        self._made_untrained = frozenset(meta.get(_INDEX_DOC, {}).get("untrained", ()))
        self._search_path = f"/{quote(index, safe='')}/_search"
        #: What a hit's explanation reads of its document.
        self._hit_source = ["clusters", schema.rank_field]

    @property
    def bulk_in_flight(self) -> int:
        """Bulk requests a write keeps in flight at once (more suit a cluster of many nodes;
        :data:`BULK_IN_FLIGHT` by default)."""
        return self._bulk_in_flight

    @bulk_in_flight.setter
    def bulk_in_flight(self, count: int) -> None:
        # Refused here, in a line, rather than by the bulk helper's thread pool at the next write
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StoreError(f"bulk_in_flight must be a whole number >= 1, got {count!r}")
        self._bulk_in_flight = count

    # -- life cycle ---------------------------------------------------------------------------

    @classmethod
    def create(cls, cluster: str | OpenSearch, index: str, schema: Schema, *, shards: int = 1,
               replicas: int = 0, engine: Engine = "faiss",
               training: Mapping[str, npt.ArrayLike] | None = None,
               training_timeout: float = TRAINING_TIMEOUT, **connection: Any) -> OpenSearchStore:
        """A new, empty index named ``index`` (the schema's own index name is not used).
        ``engine``: ``"faiss"`` (needs the k-NN native libraries; IVF-PQ keys need it) or
        ``"lucene"`` (HNSW; what every OpenSearch distribution has).

        An IVF-PQ key uses its k-NN model if the cluster has it trained (``created``); else
        ``training[key]`` (rows, e.g. the sample its coarse quantizer trains on) trains it
        first (see :mod:`.models`); else the key waits for :meth:`train_model`."""
        if engine not in ENGINES:
            raise StoreError(f"unknown k-NN engine {engine!r}; use one of {', '.join(ENGINES)}")
        for key in schema.keys:
            knn_vector_field(key, engine)  # an IVF-PQ key on lucene: refused before anything
        given = dict(training or {})
        ivf = {k.name: k for k in schema.keys if isinstance(k.ann, IvfPq)}
        if set(given) - set(ivf):
            raise UnsupportedError(f"training vectors for {', '.join(sorted(set(given) - set(ivf)))}"
                                   ", which is not an IVF-PQ key of the schema (only IVF-PQ "
                                   "keys train a k-NN model)")
        client, owns = _client(cluster, connection)
        models: dict[str, dict[str, Any]] = {}
        try:
            version = server_version(client)
            models = _existing_models(client, schema)
            with cluster_errors(client, f"create index {index!r}"):
                if client.indices.exists(index=index) or client.indices.exists(
                        index=meta_index(index)):
                    raise StoreError(f"cannot create index {index!r} on {where(client)}: it "
                                     "exists (open it, or drop it first)")
            for name, vectors in given.items():
                if name not in models:
                    train_model(client, index, ivf[name], vectors, timeout=training_timeout)
                    models[name] = {"model_id": _model_id(ivf[name]), "trained_by_ebr": True}
            untrained = sorted(set(ivf) - set(models))
            body = index_body(schema, shards=shards, replicas=replicas, version=version,
                              engine=engine, untrained=untrained)
            meta = {_INDEX_DOC: {"schema": schema.to_json(), "engine": engine,
                                 "version": str(version), "untrained": untrained},
                    **{_MODEL_DOC + k: doc for k, doc in models.items()}}
            with cluster_errors(client, f"create index {index!r}"):
                _create_index(client, meta_index(index), {
                    "settings": {"index": {"number_of_shards": 1, "number_of_replicas": replicas}},
                    "mappings": {"dynamic": False}})
                try:
                    for doc_id, doc in meta.items():
                        client.index(index=meta_index(index), id=doc_id, body=doc)
                    client.indices.refresh(index=meta_index(index))
                    _create_index(client, index, body)
                except BaseException:
                    client.indices.delete(index=meta_index(index), ignore_unavailable=True)
                    raise
        except BaseException:  # nothing made stays, models trained here neither
            for doc in models.values():
                if doc["trained_by_ebr"]:
                    delete_model(client, doc["model_id"])
            if owns:
                client.close()
            raise
        return cls(client, index, schema, engine, version, {}, owns, meta)

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
        quantizers = {spec.name: CentroidQuantizer(_unpack(doc["centroids"], spec.dimension))
                      for spec in schema.keys
                      if (doc := meta.get(_QUANTIZER_DOC + spec.name)) is not None}
        return cls(client, index, schema, engine if engine in ENGINES else "faiss", version,
                   quantizers, owns, meta)

    @staticmethod
    def drop(cluster: str | OpenSearch, index: str, **connection: Any) -> None:
        """Delete the ebr index ``index``, its metadata and the k-NN models ebr trained for
        it; refuses an index ebr did not make."""
        client, owns = _client(cluster, connection)
        try:
            meta = _read_meta(client, index)  # an ebr index, or a StoreError saying what it is
            with cluster_errors(client, f"drop index {index!r}"):
                client.indices.delete(index=[index, meta_index(index)], ignore_unavailable=True)
            for doc_id, doc in meta.items():
                if doc_id.startswith(_MODEL_DOC) and doc.get("trained_by_ebr"):
                    delete_model(client, doc["model_id"])
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

    @property
    def products(self) -> Mapping[str, ProductCodes]:
        """The PQ (and OPQ) tables of the keys whose schema keeps them, once trained: kept
        with the index for any client (the cluster verifies radius clauses exactly)."""
        return self._products

    @property
    def fingerprints(self) -> Mapping[str, str]:
        """The fingerprint of the encoder model that embeds for each key, where recorded
        (:meth:`set_fingerprint`)."""
        return self._fingerprints

    @property
    def knn_models(self) -> Mapping[str, str]:
        """Each IVF-PQ key's trained k-NN model id."""
        return {k: str(doc["model_id"]) for k, doc in self._knn_models.items()}

    @property
    def untrained_models(self) -> frozenset[str]:
        """The IVF-PQ keys whose k-NN model is not trained yet (:meth:`train_model`):
        documents with their embedding are refused until it is."""
        return self._made_untrained - self._knn_models.keys()

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

    def add(self, documents: Iterable[IndexDocument | PreparedDocument]) -> WriteResult:
        """Insert or replace a batch; checked whole first (documents the ingest pipeline has
        already prepared are not checked again), then written in bulk chunks (see the module
        docstring for what is atomic)."""
        return self.add_pending(documents).result()

    def add_pending(self, documents: Iterable[IndexDocument | PreparedDocument]) -> PendingWrite:
        """:meth:`add`, returning once the batch is queued rather than written: within
        :meth:`batched_writes` its requests follow the previous batch's on one stream, so the
        cluster never waits between batches; ``.result()`` waits for the batch's answer (what
        :meth:`add` returns or raises).  The caller keeps batches sharing a document id from
        being in flight together (a document sent again after a 429 could overwrite the later
        batch's).  Outside :meth:`batched_writes` the batch is written before this returns."""
        self._check_open()
        docs = prepare_batch(self._schema, documents)
        self._refuse_untrained(docs)
        return self._send(self._index_actions(docs), "write")

    def render_ahead(self, docs: Sequence[PreparedDocument]) -> None:
        """Make the bulk lines of ``docs`` now, before they are added: the ingest pipeline's
        reading thread does so while the previous batch is written, so :meth:`add` sends its
        first chunk at once instead of the cluster leaving the node idle while it is made.
        Only once every key has its quantizer (lines made without a key's clusters would be
        made again); lines made before a quantizer changes are not used."""
        if self._closed or any(k.name not in self._quantizers for k in self._schema.keys):
            return
        epoch = self._quantizer_epoch  # read before the quantizers: a change meanwhile shows
        rendered = {id(d): _Rendered(d, epoch, line)
                    for d, line in zip(docs, self._lines(docs), strict=True)}
        self._ahead = (*self._ahead[-1:], rendered)

    def _index_actions(self, docs: Sequence[PreparedDocument]) -> Iterator[BulkAction]:
        """The bulk actions writing ``docs``, made a chunk at a time as the bulk stream has room
        (each chunk's clusters at once), or as :meth:`render_ahead` made them."""
        ahead, epoch = self._ahead, self._quantizer_epoch
        for start in range(0, len(docs), CHUNK_DOCUMENTS):
            chunk = docs[start:start + CHUNK_DOCUMENTS]
            made = [_made(ahead, d, epoch) for d in chunk] if ahead else []
            lines = (made if made and all(line is not None for line in made)
                     else self._lines(chunk))
            for d, line in zip(chunk, lines, strict=True):
                assert line is not None  # made whole, or made here
                yield d.id, "index", line

    def _lines(self, docs: Sequence[PreparedDocument]) -> list[str]:
        """Each document's ``_source`` line, with its clusters (assigned at once)."""
        return [self._source(d, c) for d, c in zip(docs, self._clusters(docs), strict=True)]

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete a batch of ids; ids not in the index are ignored."""
        self._check_open()
        unique = list(dict.fromkeys(check_id(i, n) for n, i in enumerate(ids)))
        return self._bulk(((i, "delete", None) for i in unique), "delete from")

    @contextlib.contextmanager
    def batched_writes(self) -> Iterator[None]:
        """Writes within share one stream of bulk requests (see :meth:`add_pending`) and are
        refreshed once, at the end, rather than each (an ingest's many batches: every refresh
        makes a segment, and each segment its own HNSW graph).  Leaving the block sends what
        is queued; leaving it by an exception drops what is not sent yet."""
        if self._stream is not None:  # nested: the outer block's stream
            yield
            return
        with self._new_stream() as self._stream:
            try:
                yield
            finally:
                self._stream = None
        self._refresh()  # not after a failure: the cluster's own refresh interval will

    def _new_stream(self) -> BulkStream:
        return BulkStream(self.client, self.index, in_flight=self.bulk_in_flight,
                          chunk_documents=CHUNK_DOCUMENTS, chunk_bytes=CHUNK_BYTES,
                          retries=BULK_RETRIES, retried_statuses=RETRIED_STATUSES)

    def _refresh(self) -> None:
        with cluster_errors(self.client, f"refresh index {self.index!r}"):
            self.client.indices.refresh(index=self.index)

    def _source(self, doc: PreparedDocument, clusters: Mapping[str, int]) -> str:
        """The document's ``_source`` as JSON text, serialised here rather than by the bulk
        helper: orjson writes the float32 vectors in their shortest form (half the bytes of
        ``tolist()``'s float64 digits, parsed back to the same float32) and embeds the
        already-serialised source as it is."""
        terms: dict[str, list[str]] = {}
        for term in doc.terms:
            ns, _, value = term.partition(":")
            terms.setdefault(ns, []).append(value)
        return orjson.dumps({
            "id": doc.id,
            "terms": terms,
            "clusters": {k: str(c) for k, c in clusters.items()},
            "vectors": doc.vectors,
            self._schema.rank_field: doc.rank,
            "source": orjson.Fragment(doc.source_json),
        }, option=orjson.OPT_SERIALIZE_NUMPY).decode()

    def _clusters(self, docs: Sequence[PreparedDocument]) -> list[dict[str, int]]:
        """Each document's cluster per key with a quantizer."""
        out: list[dict[str, int]] = [{} for _ in docs]
        # A copy: the reading thread renders ahead while the ingest may set a quantizer
        for key, quantizer in list(self._quantizers.items()):
            having = [i for i, d in enumerate(docs) if key in d.vectors]
            if having:
                ids = assign(quantizer, np.stack([docs[i].vectors[key] for i in having]))
                for i, c in zip(having, ids.tolist(), strict=True):
                    out[i][key] = c
        return out

    def _bulk(self, actions: Iterable[BulkAction], doing: str) -> WriteResult:
        """Send ``actions`` and wait for their answer (see :meth:`_send`)."""
        return self._send(actions, doing).result()

    def _send(self, actions: Iterable[BulkAction], doing: str) -> PendingWrite:
        """Queue ``actions`` as bulk requests (:mod:`.bulk`: chunks, :attr:`bulk_in_flight`
        requests in flight, documents refused for now sent again, the rest reported as
        :class:`BulkWriteError`) on the stream of :meth:`batched_writes`; outside it, send
        them on a stream of their own and refresh, so the next search sees the batch."""
        if self._stream is not None:
            return self._stream.submit(actions, doing)
        with self._new_stream() as stream:
            pending = stream.submit(actions, doing)
        if pending.wrote:
            self._refresh()
        return pending

    # -- quantizers ---------------------------------------------------------------------------

    def set_quantizer(self, key: str, centroids: npt.ArrayLike) -> None:
        """Use these centroids (``nlist x dimension``) as ``key``'s coarse quantizer, store
        them with the index, and re-assign every document's cluster term.  The key's PQ/OPQ
        tables, residuals of the old centroids, are dropped: :meth:`train_quantizers` makes
        new ones."""
        self._check_open()
        self._install(key, checked_centroids(self._key(key), centroids))

    def _install(self, key: str, centroids: npt.NDArray[np.float32],
                 product: ProductCodes | None = None) -> None:
        spec = self._key(key)
        quantizer = CentroidQuantizer(centroids)
        body: dict[str, Any] = {"nlist": quantizer.nlist, "dimension": spec.dimension,
                                "centroids": _pack(quantizer.centroids), "pq_m": 0}
        if product is not None:
            body.update(pq_m=product.m, codebooks=_pack(product.codebooks),
                        rotation=None if product.rotation is None else _pack(product.rotation))
        with cluster_errors(self.client, f"store the quantizer of {key!r}"):
            self.client.index(index=meta_index(self.index), id=_QUANTIZER_DOC + key,
                              refresh=True, body=body)
        self._quantizers[key] = quantizer
        self._quantizer_epoch += 1  # after: lines made with the old one carry an older epoch
        if product is None:
            self._products.pop(key, None)
        else:
            self._products[key] = product
        self._bulk(self._reassignments(key, quantizer), "re-assign clusters in")

    def _reassignments(self, key: str, quantizer: CentroidQuantizer) -> Iterator[BulkAction]:
        self._refresh()  # every document written so far, searchable
        for page in self._pages(key):
            vectors = np.stack([np.asarray(src["vectors"][key], np.float32) for _, src in page])
            for (doc_id, _), cluster in zip(page, assign(quantizer, vectors).tolist(), strict=True):
                yield doc_id, "update", orjson.dumps(
                    {"doc": {"clusters": {key: str(cluster)}}}).decode()

    def train_quantizers(self, keys: Iterable[str] | None = None, *,
                         sample_size: int | None = None, nlist: int | None = None,
                         seed: int = 0, niter: int = 20) -> dict[str, TrainingReport]:
        """Train each key's coarse quantizer with spherical k-means on the index's vectors,
        as the local store does (:meth:`ebr.stores.local.LocalStore.train_quantizers`), and
        re-assign every document.  A key whose schema sets ``quantizer.pq_m`` also gets its
        PQ (and OPQ) tables from the same sample, kept with the index (:attr:`products`);
        documents carry no codes: OpenSearch verifies radius clauses exactly."""
        reports: dict[str, TrainingReport] = {}
        for key in list(keys) if keys is not None else [k.name for k in self._schema.keys]:
            spec = self._key(key)
            start = time.perf_counter()
            self._refresh()  # train on every document written so far
            _, vectors = self.all_vectors(key)
            clusters = nlist if nlist is not None else spec.quantizer.nlist
            centroids, sample = train_centroids(key, vectors, clusters, sample_size=sample_size,
                                                seed=seed, niter=niter)
            self._install(key, centroids, train_key_product(spec, vectors[sample], centroids,
                                                            seed=seed))
            reports[key] = TrainingReport(key, len(vectors), len(sample), clusters,
                                          time.perf_counter() - start)
        return reports

    def train_model(self, key: str, vectors: npt.ArrayLike, *,
                    timeout: float = TRAINING_TIMEOUT) -> None:
        """Train the k-NN model of the IVF-PQ key ``key`` on ``vectors`` (a sample of its
        embeddings: see :mod:`.models`), then add the key's vector field to the index, so
        documents may carry that embedding.  Needs the Faiss engine's native libraries."""
        self._check_open()
        spec = self._key(key)
        if key not in self.untrained_models:
            raise StoreError(f"key {key!r} of index {self.index!r} has no k-NN model to train "
                             + (f"(model {self.knn_models[key]!r} is trained)"
                                if key in self._knn_models else f"(it is {spec.ann.kind})"))
        train_model(self.client, self.index, spec, vectors, timeout=timeout)
        model_id = _model_id(spec)
        doc: dict[str, Any] = {"model_id": model_id, "trained_by_ebr": True}
        try:
            with cluster_errors(self.client, f"add the {key!r} vector field to {self.index!r}"):
                self.client.indices.put_mapping(index=self.index, body={"properties": {
                    "vectors": {"properties": {key: knn_vector_field(spec, self.engine)}}}})
                self.client.index(index=meta_index(self.index), id=_MODEL_DOC + key,
                                  refresh=True, body=doc)
        except BaseException:
            delete_model(self.client, model_id)
            raise
        self._knn_models[key] = doc

    def set_fingerprint(self, key: str, fingerprint: str) -> None:
        """Record the fingerprint of the encoder model that embeds for ``key`` (a model
        directory's ``model.json``); refuses a different one once recorded: the index's
        vectors would come from two models."""
        self._check_open()
        self._key(key)
        known = self._fingerprints.get(key)
        if known == fingerprint:
            return
        if known is not None:
            raise StoreError(f"index {self.index!r} holds {key!r} embeddings of the model with "
                             f"fingerprint {known[:12]}..., not {fingerprint[:12]}...")
        with cluster_errors(self.client, f"record the encoder of {key!r}"):
            self.client.index(index=meta_index(self.index), id=_ENCODER_DOC + key,
                              refresh=True, body={"fingerprint": fingerprint})
        self._fingerprints[key] = fingerprint

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
               start: int = 0, fetch: Fetch | None = None) -> SearchResult:
        """Execute a plan from :func:`ebr.plan` made with :attr:`quantizers`: hits ``start``
        to ``start + size`` in first-stage order (score, static rank, id), each explained.
        ``fetch``: the hits' cosines (``script_fields``) and terms (``_source`` filtering)
        come back in the same ``_search`` (``SearchResult.fetched``), so that reranking them
        costs no further round trip."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PlanError(f"size must be a whole number >= 0, got {size!r}")
        self._check_open()
        began = time.perf_counter()
        server = 0.0
        # BM25 over the whole index's term statistics, not each shard's
        top_k, text = prerequisites(plan)
        params = _DFS_SEARCH_PARAMS if text else _SEARCH_PARAMS
        resolved: dict[NN | Match, list[str]] = {}
        for node in top_k:
            found = self._search_request(compile_top_k(node, self._schema, vectors,
                                                       version=self.version), params)
            server += found["took"] / 1000
            resolved[node] = [h["_id"] for h in found["hits"].get("hits", ())]
        compiled = compile_search(plan, self._schema, vectors, size=size, start=start,
                                  version=self.version, resolved=resolved, tie_break=True)
        # Each matched branch comes back with its score, from which a vector clause's distance
        # follows exactly (docs/architecture.md, .hits): the hits need not carry their vectors.
        # Options go in the body where the cluster reads them there: urllib3 quotes the URL a
        # character at a time in Python (the named scores are only read from the URL).
        body = compiled.body  # made for this call: completed in place
        body["track_total_hits"] = True
        paths = term_paths(self._schema, fetch.namespaces) if fetch is not None else {}
        body["_source"] = self._hit_source + [".".join(p) for p in paths.values()]
        if fetch is not None:
            # The index's keys only: the features have no cosine of another key (a request
            # may carry an embedding the index does not know; the local store ignores it too).
            fetch = Fetch({k: v for k, v in fetch.vectors.items() if self._schema.key(k) is not None},
                          fetch.namespaces)
            body["script_fields"] = compile_cosine_fields(self._schema, fetch.vectors)
        found = self._search_request(body, params)
        server += found["took"] / 1000
        listed = found["hits"].get("hits")  # absent when there are none (filter_path)
        hits = (tuple(map(HitExplainer(plan, self._schema.rank_field).hit, listed)) if listed
                else ())
        total = found["hits"]["total"]["value"]
        returned = None if fetch is None else fetched(listed or (), fetch, paths)
        elapsed = time.perf_counter() - began
        return SearchResult(hits, SearchStats(total=total, documents_scanned=0,
                                              candidates_verified=0,
                                              seconds={"server": server,
                                                       "client": max(0.0, elapsed - server)}),
                            returned)

    def _search_request(self, body: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        """A search's ``_search`` request, sent through the transport (:func:`.client.send`):
        a search is a request or two, so the API method's per-call work would be a good part
        of the client's time."""
        from ebr.stores.opensearch.serialization import dumps

        with cluster_errors(self.client, f"search index {self.index!r}"):
            found: dict[str, Any] = send(self.client, "POST", self._search_path, params,
                                         dumps(body))
        return _whole(found, self.index)

    def _search(self, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        with cluster_errors(self.client, f"search index {self.index!r}"):
            found: dict[str, Any] = self.client.search(index=self.index, body=body, **params)
        return _whole(found, self.index)

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

    def get_terms(self, ids: Sequence[str], namespaces: Iterable[str]
                  ) -> list[dict[str, tuple[str, ...]]]:
        """Read through ``_source`` filtering: only the namespaces' fields come back."""
        self._check_open()
        paths = term_paths(self._schema, namespaces)
        if not ids or not paths:
            return [{} for _ in ids]
        with cluster_errors(self.client, f"read terms of index {self.index!r}"):
            found = self.client.mget(index=self.index, body={"ids": list(ids)},
                                     _source_includes=[".".join(p) for p in paths.values()])
        return [source_terms(doc.get("_source", {}) if doc.get("found") else {}, paths)
                for doc in found["docs"]]

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

    def all_vectors(self, key: str) -> tuple[list[str], F32]:
        """Every ``key`` embedding in the index, in id order (scrolled a page at a time)."""
        self._check_open()
        spec = self._key(key)
        ids: list[str] = []
        rows: list[F32] = []
        for page in self._pages(key):
            ids.extend(doc_id for doc_id, _ in page)
            rows.extend(np.asarray(src["vectors"][key], np.float32) for _, src in page)
        return ids, np.stack(rows) if rows else np.empty((0, spec.dimension), np.float32)

    # -- helpers ------------------------------------------------------------------------------

    def _key(self, key: str) -> EmbeddingKey:
        return schema_key(self._schema, key)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store of index {self.index!r} is closed")

    def _refuse_untrained(self, docs: Sequence[PreparedDocument]) -> None:
        """No embedding of an IVF-PQ key before its model is trained (the field does not
        exist yet: the cluster would refuse each document)."""
        untrained = self.untrained_models
        for doc in docs if untrained else ():
            for key in untrained & doc.vectors.keys():
                raise StoreError(f"document {doc.id!r} has a {key!r} embedding, but the k-NN "
                                 f"model of {key!r} is not trained on index {self.index!r}: "
                                 "train it first (train_model, or create(..., training=...)); "
                                 "nothing of the batch was written")


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A document's bulk line made ahead, with the quantizer epoch it was made in (the
    document is kept so its ``id()`` cannot name another one)."""

    doc: PreparedDocument
    epoch: int
    line: str


def _made(ahead: tuple[dict[int, _Rendered], ...], doc: PreparedDocument,
          epoch: int) -> str | None:
    """The line :meth:`OpenSearchStore.render_ahead` made for ``doc`` in ``epoch``, if any."""
    for rendered in reversed(ahead):
        entry = rendered.get(id(doc))
        if entry is not None and entry.doc is doc:
            return entry.line if entry.epoch == epoch else None
    return None


def _whole(found: dict[str, Any], index: str) -> dict[str, Any]:
    """A search's answer, or a StoreError when a shard failed (its hits would be missing)."""
    if found.get("_shards", {}).get("failed"):
        raise StoreError(f"search of index {index!r} failed on some shards: "
                         f"{found['_shards'].get('failures')}")
    return found


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


def _create_index(client: OpenSearch, index: str, body: dict[str, Any]) -> None:
    """Create ``index``, which :meth:`OpenSearchStore.create` has just seen absent.  The
    client retries a request that timed out (``retry_on_timeout``): when the first attempt
    made the index and only its answer was lost, the retry is refused with
    ``resource_already_exists_exception``.  A token in the mapping's ``_meta`` tells that
    index from one another client made meanwhile (refused: it is not this call's)."""
    from opensearchpy.exceptions import RequestError

    token = uuid.uuid4().hex
    mappings = body.get("mappings", {})
    body = {**body, "mappings": {**mappings, "_meta": {**mappings.get("_meta", {}),
                                                        _CREATION: token}}}
    try:
        client.indices.create(index=index, body=body)
    except RequestError as err:
        if err.error != "resource_already_exists_exception":
            raise
        made = client.indices.get_mapping(index=index).get(index, {}).get("mappings", {})
        if made.get("_meta", {}).get(_CREATION) != token:
            raise StoreError(f"index {index!r} was created by another client while this "
                             "create ran; drop it or choose another name") from None


#: The ``_meta`` entry of a mapping naming the create call that made the index.
_CREATION = "ebr_creation"


def _model_id(key: EmbeddingKey) -> str:
    assert isinstance(key.ann, IvfPq)
    return key.ann.model_id


def _existing_models(client: OpenSearch, schema: Schema) -> dict[str, dict[str, Any]]:
    """The IVF-PQ keys whose k-NN model the cluster has trained already (ebr did not train
    them, so ``drop`` leaves them); a model in another state is refused: it cannot serve, and
    its id cannot be trained again until it is deleted."""
    found: dict[str, dict[str, Any]] = {}
    for key in schema.keys:
        if not isinstance(key.ann, IvfPq):
            continue
        model = model_state(client, key.ann.model_id)
        state = None if model is None else model.get("state")
        if state == "created":
            found[key.name] = {"model_id": key.ann.model_id, "trained_by_ebr": False}
        elif state is not None:
            raise StoreError(f"key {key.name!r} uses k-NN model {key.ann.model_id!r}, which is "
                             f"{state} on {where(client)}: wait for it, or delete it and train "
                             "it again")
    return found


def _pack(array: npt.NDArray[np.float32]) -> str:
    """A float32 array as base64 text, for the metadata index."""
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode("ascii")


def _unpack(text: str, *shape: int) -> npt.NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), np.float32).reshape(-1, *shape).copy()


def _unpack_product(doc: Mapping[str, Any], key: EmbeddingKey) -> ProductCodes:
    m, d = int(doc["pq_m"]), key.dimension
    rotation = doc.get("rotation")
    return ProductCodes(_unpack(doc["centroids"], d), _unpack(doc["codebooks"], KSUB, d // m),
                        None if rotation is None else _unpack(rotation, d))


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
