"""The index schema: validation, JSON round trip, derived field names, OpenSearch mappings."""

from __future__ import annotations

import json

import pytest

from ebr import SchemaError, UnsupportedError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Hnsw, IvfPq, Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body, train_model_body
from ebr.mappings.text_analysis import lowercase, standard

SCHEMA = Schema.create(
    "people",
    (Namespace("text"), Namespace("location", "lowercase")),
    (EmbeddingKey("model-141795009", 64, CoarseQuantizerSpec(nlist=256, opq=True, pq_m=16)),
     EmbeddingKey("title", 32, ann=IvfPq("title-model", nlist=64, pq_m=8, nprobes=4))),
    rank_field="popularity",
)


def test_json_round_trip() -> None:
    assert Schema.from_json(SCHEMA.to_json()) == SCHEMA
    assert json.loads(SCHEMA.to_json())["format"] == 1


def test_field_names() -> None:
    assert SCHEMA.term_field("location") == "terms.location"
    assert SCHEMA.term_field("model-141795009.cluster") == "clusters.model-141795009"
    assert SCHEMA.vector_field("title") == "vectors.title"
    assert SCHEMA.is_term_namespace("title.cluster") and not SCHEMA.is_term_namespace("x.cluster")


@pytest.mark.parametrize(("data", "message"), [
    ({"keys": []}, "schema.index: missing"),
    ({"index": "Bad Name"}, "schema.index: index name 'Bad Name'"),
    ({"index": "i", "format": 9}, "unsupported schema format 9"),
    ({"index": "i", "namespaces": [{"name": "Text"}]}, "schema.namespaces[0]: namespace 'Text'"),
    ({"index": "i", "namespaces": [{"name": "a.b"}]}, "namespace 'a.b'"),
    ({"index": "i", "namespaces": [{"name": "t"}, {"name": "t"}]}, "declared twice"),
    ({"index": "i", "namespaces": [{"name": "t", "analyzer": "snowball"}]},
     "schema.namespaces[0].analyzer: unknown analyzer 'snowball'"),
    ({"index": "i", "keys": [{"name": "m"}]}, "schema.keys[0].dimension: missing"),
    ({"index": "i", "keys": [{"name": "m", "dimension": "8"}]}, "expected an integer, got '8'"),
    ({"index": "i", "keys": [{"name": "m", "dimension": True}]}, "expected an integer, got True"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 0}]}, "between 1 and 16000"),
    ({"index": "i", "keys": [{"name": "m:x", "dimension": 8}]}, "embedding key 'm:x'"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "space": "l2"}]}, "only cosine"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "ann": {"kind": "lsh"}}]},
     "unknown ANN method 'lsh'"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 10,
                              "ann": {"kind": "ivfpq", "model_id": "x", "pq_m": 4}}]},
     "pq_m (4) must divide the dimension (10)"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "quantizer": {"nlist": 0}}]},
     "quantizer.nlist: must be between 1 and 1048576, got 0"),
    ({"index": "i", "namspaces": []}, "schema: unknown key 'namspaces'"),
    ({"index": "i", "namespaces": [{"name": "t", "analyser": "keyword"}]},
     "schema.namespaces[0]: unknown key 'analyser'"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8,
                              "ann": {"kind": "ivfpq", "model_id": "x", "pq_m": 0}}]},
     "ann.pq_m: must be between 1 and 8, got 0"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "ann": {"m": -3}}]},
     "ann.m: must be between 2 and 512, got -3"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8,
                              "ann": {"kind": "ivfpq", "model_id": "x", "pq_m": 4,
                                      "nprobes": -1}}]}, "ann.nprobes: must be between 1"),
    ({"index": "i", "rank_field": "terms"}, "rank field 'terms' is reserved"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 10, "quantizer": {"pq_m": 4}}]},
     "quantizer.pq_m: pq_m (4) must divide the dimension (10)"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "quantizer": {"pq_m": -1}}]},
     "quantizer.pq_m: must be between 0 and 8, got -1"),
    ({"index": "i", "keys": [{"name": "m", "dimension": 8, "quantizer": {"opq": True}}]},
     "quantizer.opq: an OPQ rotation only serves PQ codes"),
    ({"index": "i", "keys": "m"}, "schema.keys: expected a list"),
])
def test_invalid_schemas_name_the_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError) as info:
        Schema.from_dict(data)
    assert message in str(info.value)


def test_unreadable_schema_files(tmp_path: object) -> None:
    with pytest.raises(SchemaError, match="not valid JSON"):
        Schema.from_json("{")
    with pytest.raises(SchemaError, match="cannot read schema"):
        Schema.load("/nonexistent/schema.json")
    latin1 = tmp_path / "schema.json"  # type: ignore[operator]
    latin1.write_bytes('{"index": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(SchemaError, match="not UTF-8"):
        Schema.load(latin1)


def test_index_body() -> None:
    body = index_body(SCHEMA)
    props = body["mappings"]["properties"]
    terms_analyzer = {"type": "custom", "tokenizer": "keyword"}
    assert body["settings"]["index"] == {
        "knn": True, "number_of_shards": 1, "number_of_replicas": 0,
        "analysis": {"analyzer": {"ebr_terms": terms_analyzer}}}
    scored = {"type": "text", "analyzer": "ebr_terms", "index_options": "freqs"}
    assert props["terms"]["properties"] == {
        "text": {"type": "keyword", "fields": {"scored": scored}},
        "location": {"type": "keyword", "fields": {"scored": scored}}}
    assert props["clusters"]["properties"]["title"] == {"type": "keyword"}
    assert props["vectors"]["properties"]["model-141795009"]["method"] == {
        "name": "hnsw", "engine": "faiss", "space_type": "cosinesimil",
        "parameters": {"m": Hnsw().m, "ef_construction": Hnsw().ef_construction}}
    assert props["vectors"]["properties"]["title"] == {"type": "knn_vector",
                                                       "model_id": "title-model"}
    assert props["popularity"] == {"type": "float"}
    assert props["id"] == {"type": "keyword"}
    assert props["source"] == {"type": "object", "enabled": False}
    assert Schema.from_dict(body["mappings"]["_meta"]["ebr_schema"]) == SCHEMA
    assert body["mappings"]["_meta"]["ebr_engine"] == "faiss"


def test_index_body_on_the_lucene_engine() -> None:
    hnsw_only = Schema.create("i", keys=(EmbeddingKey("m", 8),))
    body = index_body(hnsw_only, engine="lucene")
    assert body["mappings"]["properties"]["vectors"]["properties"]["m"]["method"]["engine"] == "lucene"
    assert body["mappings"]["_meta"]["ebr_engine"] == "lucene"
    with pytest.raises(UnsupportedError, match="IVF-PQ, which needs the faiss engine"):
        index_body(SCHEMA, engine="lucene")
    with pytest.raises(UnsupportedError, match="unknown k-NN engine"):
        index_body(hnsw_only, engine="nmslib")  # type: ignore[arg-type]


def test_train_model_body() -> None:
    title = SCHEMA.key("title")
    assert title is not None
    body = train_model_body(title, "title-train")
    assert body["method"]["parameters"] == {
        "nlist": 64, "nprobes": 4, "encoder": {"name": "pq", "parameters": {"m": 8,
                                                                             "code_size": 8}}}
    assert body["method"]["space_type"] == "cosinesimil" and body["dimension"] == 32
    hnsw = SCHEMA.key("model-141795009")
    assert hnsw is not None
    with pytest.raises(SchemaError, match="needs no trained model"):
        train_model_body(hnsw, "x")


def test_analyzers() -> None:
    assert standard("Crème BRÛLÉE, crème") == ["crème", "brûlée"]
    assert standard("ﬁne") == ["fine"]  # NFKC
    assert lowercase("  Menlo Park ") == ["menlo park"]
    assert lowercase("   ") == []


def test_the_constructor_validates_too() -> None:
    with pytest.raises(SchemaError, match=r"namespace 'a' declared twice"):
        Schema("i", (Namespace("a"), Namespace("a")))
    with pytest.raises(SchemaError, match=r"schema\.keys\[0\]\.dimension: dimension must be between 1"):
        Schema("i", keys=(EmbeddingKey("m", 0),))


def test_a_schema_written_with_quantizer_centroids_still_loads() -> None:
    """Earlier versions wrote ``quantizer.centroids`` (never read); such schemas still load."""
    data = Schema.create("i", keys=(EmbeddingKey("m", 4),)).to_dict()
    assert "centroids" not in data["keys"][0]["quantizer"]
    data["keys"][0]["quantizer"]["centroids"] = ""
    assert Schema.from_dict(data) == Schema.create("i", keys=(EmbeddingKey("m", 4),))


def test_cluster_terms_are_spelled_in_one_place() -> None:
    from ebr.mappings.schema import cluster_key, cluster_namespace, cluster_term

    assert cluster_namespace("model-1") == EmbeddingKey("model-1", 4).cluster_namespace
    assert cluster_term("model-1", 17) == "model-1.cluster:17"
    assert cluster_key(cluster_namespace("model-1")) == "model-1"
    assert cluster_key("model-1") is None
