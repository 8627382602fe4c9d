"""IVF-PQ keys of the OpenSearch store on a real node, up to the k-NN plugin's training.

The shared node has no k-NN native libraries, and ``_train`` kills it (measured on 2.19.1),
so everything here stops before ``_train``: the training index's contents, refusing bad
training inputs before anything is sent, a key waiting for its model (no vector field,
documents with its embedding refused), and the ingest pipeline handing its sample to the
store.  Training itself, a failed training and ``drop`` deleting the model run in
``tests/test_opensearch_container.py`` where a cluster has the native libraries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ebr.errors import SchemaError, StoreError, UnsupportedError
from ebr.ingest.pipeline import ingest
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, IvfPq, Namespace, Schema
from ebr.stores.opensearch.client import connect
from ebr.stores.opensearch.models import (
    model_state,
    train_model,
    training_index,
    training_sample,
    write_training_index,
)
from ebr.stores.opensearch.store import OpenSearchStore, meta_index
from ebr.stores.protocol import IndexDocument

pytestmark = pytest.mark.opensearch

KEY, DIM = "v", 8
_names = itertools.count()


def fresh(prefix: str = "ebr-ivf") -> str:
    return f"{prefix}-{next(_names)}-{np.random.default_rng().integers(1 << 30)}"


def schema(model_id: str) -> Schema:
    """One IVF-PQ key (nlist 4, code_size 8: at least 256 training vectors) and terms."""
    return Schema.create("ivf", (Namespace("a", "keyword"),),
                         (EmbeddingKey(KEY, DIM, CoarseQuantizerSpec(nlist=4),
                                       IvfPq(model_id, nlist=4, pq_m=2, code_size=8)),))


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)) * 3.0


@pytest.fixture()
def waiting(opensearch_url: str) -> Iterator[OpenSearchStore]:
    """A new index whose IVF-PQ key's model is not trained (and, here, never will be)."""
    index = fresh()
    store = OpenSearchStore.create(opensearch_url, index, schema(fresh("ebr-model")),
                                   engine="faiss")
    try:
        yield store
    finally:
        store.close()
        OpenSearchStore.drop(opensearch_url, index)


def test_the_training_index_holds_the_sample_as_unit_rows(opensearch_url: str) -> None:
    from opensearchpy import helpers

    key = schema("m").keys[0]
    sample = rows(300)
    name = training_index(fresh(), KEY)
    client = connect(opensearch_url)
    try:
        write_training_index(client, name, key, training_sample(key, sample))
        index = client.indices.get(index=name)[name]
        assert index["mappings"]["properties"] == {
            "vector": {"type": "knn_vector", "dimension": DIM}} or index["mappings"][
            "properties"]["vector"] == {"type": "knn_vector", "dimension": DIM,
                                        "doc_values": True}  # 3.x shows doc_values
        assert index["settings"]["index"].get("knn") in (None, "false")  # a plain index
        stored = {int(h["_id"]): h["_source"]["vector"]
                  for h in helpers.scan(client, index=name, query={"query": {"match_all": {}}})}
        assert sorted(stored) == list(range(300))
        got = np.array([stored[i] for i in range(300)])
        np.testing.assert_allclose(got, sample / np.linalg.norm(sample, axis=1, keepdims=True),
                                   atol=1e-6)
    finally:
        client.indices.delete(index=name, ignore_unavailable=True)
        client.close()


def test_bad_training_inputs_are_refused_before_anything_is_sent(
        waiting: OpenSearchStore) -> None:
    key = waiting.schema.keys[0]
    assert isinstance(key.ann, IvfPq)
    zero = rows(300)
    zero[7] = 0.0
    for vectors, message in [(rows(255), "on 255 vectors: IVF-PQ with nlist 4 and code_size 8 "
                                         "needs at least 256"),
                             (rows(300)[:, :4], r"must be n x 8, got shape \(300, 4\)"),
                             (zero, "row 7 is not")]:
        with pytest.raises(StoreError, match=message):
            waiting.train_model(KEY, vectors)
    # pq_m must divide the dimension: the schema refuses it; a key built by hand is refused
    # here, before the training index is written
    bad = EmbeddingKey(KEY, DIM, ann=IvfPq(key.ann.model_id, nlist=4, pq_m=3))
    with pytest.raises(SchemaError, match=r"pq_m \(3\) must divide the dimension \(8\)"):
        Schema.create("x", keys=(bad,))
    with pytest.raises(SchemaError, match=r"pq_m \(3\) must divide the dimension \(8\)"):
        train_model(waiting.client, waiting.index, bad, rows(300))
    assert not waiting.client.indices.exists(index=training_index(waiting.index, KEY))
    assert model_state(waiting.client, key.ann.model_id) is None
    assert waiting.untrained_models == {KEY}


def test_a_key_waits_for_its_model(waiting: OpenSearchStore, opensearch_url: str) -> None:
    mapping = waiting.client.indices.get_mapping(index=waiting.index)[waiting.index]["mappings"]
    assert KEY not in mapping["properties"]["vectors"].get("properties", {})  # no field yet
    assert waiting.add([IndexDocument(f"t{i}", {"a": ["x"]}) for i in range(3)]).added == 3
    with pytest.raises(StoreError, match=r"document 'e1' has a 'v' embedding, but the k-NN model "
                                         r"of 'v' is not trained"):
        waiting.add([IndexDocument("e0", {"a": ["x"]}),
                     IndexDocument("e1", embeddings={KEY: rows(1)[0]})])
    assert waiting.stats().documents == 3  # nothing of that batch
    with OpenSearchStore.open(opensearch_url, waiting.index) as again:
        assert again.untrained_models == {KEY} and again.knn_models == {}
    with pytest.raises(StoreError, match="unknown embedding key .nope."):
        waiting.train_model("nope", rows(300))


def test_training_vectors_only_for_ivf_keys_and_ivf_only_on_faiss(opensearch_url: str) -> None:
    index = fresh()
    s = schema(fresh("ebr-model"))
    with pytest.raises(UnsupportedError, match="training vectors for w, which is not an IVF-PQ key"):
        OpenSearchStore.create(opensearch_url, index, s, training={"w": rows(300)})
    with pytest.raises(UnsupportedError, match="IVF-PQ, which needs the faiss engine"):
        OpenSearchStore.create(opensearch_url, index, s, engine="lucene")
    with pytest.raises(StoreError, match="no index"):
        OpenSearchStore.open(opensearch_url, index)


def test_a_failed_create_leaves_nothing_behind(opensearch_url: str) -> None:
    """Training refused (too few vectors): no index, no metadata, no training index, no
    model, so a retry is not told the index exists."""
    index, model_id = fresh(), fresh("ebr-model")
    client = connect(opensearch_url)
    try:
        for _ in range(2):
            with pytest.raises(StoreError, match="needs at least 256"):
                OpenSearchStore.create(client, index, schema(model_id),
                                       training={KEY: rows(100)})
        for name in (index, meta_index(index), training_index(index, KEY)):
            assert not client.indices.exists(index=name)
        assert model_state(client, model_id) is None
    finally:
        client.close()


def test_ingest_hands_its_sample_to_the_model(waiting: OpenSearchStore, tmp_path: Path) -> None:
    """The pipeline holds an IVF-PQ key's documents and trains its model on them before any
    is written; here 100 are too few, which the store says before sending anything."""
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(
        f'{{"id": "r{i}", "a": "x", "v": {list(map(float, row))}}}\n'
        for i, row in enumerate(rows(100, seed=1))))
    with pytest.raises(StoreError, match="on 100 vectors: .* needs at least 256"):
        ingest(waiting, source, batch_size=40)
    assert waiting.stats().documents == 0
