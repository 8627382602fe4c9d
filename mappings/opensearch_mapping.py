"""Index settings, mappings and k-NN model training bodies generated from a schema.

Field layout (names come from :class:`~ebr.mappings.schema.Schema`):

- ``terms.<namespace>``: keyword, one per term namespace, with a ``scored`` text sub-field
  holding the same terms as single tokens (BM25 for ``match``);
- ``clusters.<key>``: keyword, the coarse-cluster id of the key's embedding (Unicorn's
  cluster term, probed by radius-mode ``nn``);
- ``vectors.<key>``: ``knn_vector`` (HNSW on the Faiss or Lucene engine, or Faiss IVF-PQ
  backed by a trained model);
- ``<rank_field>``: float static rank;
- ``id``: the document id again, as a keyword (``_id`` cannot be sorted on everywhere; hits
  tie-break on it as the local store does);
- ``source``: the document's own JSON object, kept but not indexed.

The schema itself travels in the index ``_meta`` so any client can compile queries.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from ebr.errors import SchemaError, UnsupportedError
from ebr.mappings.schema import SCORED_SUBFIELD, EmbeddingKey, Hnsw, IvfPq, Schema
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion, require_supported

#: The k-NN plugin's derived source for vectors (and its index setting) arrive in 3.0.
DERIVED_SOURCE = ServerVersion(3, 0, 0)

Json = dict[str, Any]
#: The analyzer of the scored term fields: the keyword tokenizer, nothing else.
TERMS_ANALYZER = "ebr_terms"
#: The k-NN engines an index may use: Faiss (native libraries; IVF-PQ needs it) or Lucene.
Engine = Literal["faiss", "lucene"]
ENGINES: tuple[Engine, ...] = ("faiss", "lucene")


def index_body(
    schema: Schema, *, shards: int = 1, replicas: int = 0, version: ServerVersion = MINIMUM,
    engine: Engine = "faiss", untrained: Collection[str] = (),
) -> Json:
    """The ``PUT /<index>`` body.  Model-backed (IVF-PQ) keys need the Faiss engine; the keys
    in ``untrained`` (their k-NN model is not trained yet, :func:`train_model_body`) get no
    vector field: it is added once the model exists (a field naming a missing model is
    accepted, and fails on the first document written to it)."""
    require_supported(version)
    properties: Json = {
        "terms": {"properties": {ns: _term_field() for ns in
                                 (n.name for n in schema.namespaces)}},
        "clusters": {"properties": {k.name: {"type": "keyword"} for k in schema.keys}},
        "vectors": {"properties": {k.name: knn_vector_field(k, engine) for k in schema.keys
                                   if k.name not in untrained}},
        schema.rank_field: {"type": "float"},
        "id": {"type": "keyword"},
        "source": {"type": "object", "enabled": False},
    }
    settings: Json = {
        "knn": bool(schema.keys),
        "number_of_shards": shards,
        "number_of_replicas": replicas,
        # ebr analyzes text itself: each term of a namespace is one token as it stands
        "analysis": {"analyzer": {TERMS_ANALYZER: {"type": "custom", "tokenizer": "keyword"}}},
    }
    if schema.keys and version >= DERIVED_SOURCE:
        # 3.x rebuilds vectors in _source from the vector files ("derived source"); on 3.5.0
        # reading them back (get, scroll) fails with already_closed_exception once documents
        # have been replaced (measured here).  The vectors are kept in _source as written.
        settings["knn.derived_source.enabled"] = False
    return {
        "settings": {"index": settings},
        "mappings": {
            # strict: a document with an undeclared field is an error, not a silent new field
            "dynamic": "strict",
            "_meta": {"ebr_schema": schema.to_dict(), "ebr_engine": engine},
            "properties": properties,
        },
    }


def _term_field() -> Json:
    """A namespace's terms: a keyword field (term matching, filters) with the same terms as a
    text sub-field of one token each, which BM25 scores (``match``): its length is the number
    of terms, as the local store counts it (:mod:`ebr.stores.bm25`)."""
    return {"type": "keyword", "fields": {SCORED_SUBFIELD: {
        "type": "text", "analyzer": TERMS_ANALYZER, "index_options": "freqs"}}}


def knn_vector_field(key: EmbeddingKey, engine: Engine = "faiss") -> Json:
    if engine not in ENGINES:
        raise UnsupportedError(f"unknown k-NN engine {engine!r}; use one of {', '.join(ENGINES)}")
    ann = key.ann
    if isinstance(ann, IvfPq):
        if engine != "faiss":
            raise UnsupportedError(f"key {key.name!r} is IVF-PQ, which needs the faiss engine "
                                   f"(a trained k-NN model); use HNSW with the {engine} engine")
        # A model-backed field is the model id and nothing else (the model fixes dimension,
        # method and space); indices created on 2.19+ reject a dimension here.
        return {"type": "knn_vector", "model_id": ann.model_id}
    assert isinstance(ann, Hnsw)
    return {
        "type": "knn_vector",
        "dimension": key.dimension,
        "method": {
            "name": "hnsw",
            "engine": engine,
            "space_type": key.space.opensearch_space_type,
            "parameters": {"m": ann.m, "ef_construction": ann.ef_construction},
        },
    }


def training_index_body(key: EmbeddingKey) -> Json:
    """A plain index to hold L2-normalised training vectors for a key's k-NN model
    (training does not normalise; no ``index.knn`` needed)."""
    return {
        "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}},
        "mappings": {"properties": {"vector": {"type": "knn_vector", "dimension": key.dimension}}},
    }


def training_minimum(ann: IvfPq) -> int:
    """The fewest vectors an IVF-PQ model trains on: one per inverted list, and one per
    codeword of each sub-quantizer."""
    return max(ann.nlist, 1 << ann.code_size)


def train_model_body(key: EmbeddingKey, training_index: str, training_field: str = "vector") -> Json:
    """The ``POST /_plugins/_knn/models/<model_id>/_train`` body for an IVF-PQ key.
    Training needs at least :func:`training_minimum` vectors, and ``pq_m`` must divide the
    dimension (the schema checks it; so does this, for a key built by hand)."""
    ann = key.ann
    if not isinstance(ann, IvfPq):
        raise SchemaError(f"key {key.name!r} uses {ann.kind}, which needs no trained model")
    if ann.pq_m < 1 or key.dimension % ann.pq_m:
        raise SchemaError(f"key {key.name!r}: pq_m ({ann.pq_m}) must divide the dimension "
                          f"({key.dimension})")
    return {
        "training_index": training_index,
        "training_field": training_field,
        "dimension": key.dimension,
        "description": f"ebr IVF-PQ model for embedding key {key.name}",
        "method": {
            "name": "ivf",
            "engine": "faiss",
            "space_type": key.space.opensearch_space_type,
            "parameters": {
                "nlist": ann.nlist,
                "nprobes": ann.nprobes,
                "encoder": {"name": "pq", "parameters": {"m": ann.pq_m, "code_size": ann.code_size}},
            },
        },
    }
