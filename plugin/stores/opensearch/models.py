"""k-NN models: training an IVF-PQ key's model through the k-NN plugin's training API.

A model-backed field (:func:`~ebr.mappings.opensearch_mapping.knn_vector_field`) needs its
model in state ``created`` before a document is written to it.  Training, in order:

1. the sample is checked here (shape, finite, no zero rows, at least
   :func:`~ebr.mappings.opensearch_mapping.training_minimum` rows) before anything is sent;
2. a plain training index (``<index>.ebr-train-<key>``) receives the sample's unit rows
   (training does not normalise for ``cosinesimil``);
3. ``POST /_plugins/_knn/models/<id>/_train`` returns at once; ``GET`` the model until its
   ``state`` is ``created``, or ``failed`` (its ``error`` is reported and the failed model
   deleted, so the id can be trained again), or the time runs out;
4. the training index is deleted whatever happened.

Only clusters with the k-NN native libraries can train: on one without them, ``_train``
kills the node (measured on 2.19.1), so nothing here may run there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ebr.errors import StoreError
from ebr.mappings.opensearch_mapping import train_model_body, training_index_body, training_minimum
from ebr.mappings.schema import EmbeddingKey, IvfPq
from ebr.stores.opensearch.client import cluster_errors, where

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

F32 = npt.NDArray[np.float32]
#: Seconds a model may train before ``train_model`` gives up waiting.
TRAINING_TIMEOUT = 1800.0
#: Seconds between two reads of a training model's state.
POLL_SECONDS = 1.0
#: Training vectors per bulk request.
_CHUNK = 1000
_MODELS = "/_plugins/_knn/models/"


def training_index(index: str, key: str) -> str:
    """The index that holds ``key``'s training sample while its model trains."""
    return f"{index}.ebr-train-{key.lower()}"


def training_sample(key: EmbeddingKey, vectors: npt.ArrayLike) -> F32:
    """``vectors`` as unit float32 rows, or a StoreError saying why they cannot train
    ``key``'s model."""
    ann = key.ann
    if not isinstance(ann, IvfPq):
        raise StoreError(f"key {key.name!r} uses {ann.kind}, which needs no trained model")
    try:
        rows = np.asarray(vectors, np.float32)
    except (TypeError, ValueError) as e:
        raise StoreError(f"the training vectors of {key.name!r} are not numbers: {e}") from None
    if rows.ndim != 2 or rows.shape[1] != key.dimension:
        raise StoreError(f"the training vectors of {key.name!r} must be n x {key.dimension}, "
                         f"got shape {rows.shape}")
    need = training_minimum(ann)
    if len(rows) < need:
        raise StoreError(f"cannot train k-NN model {ann.model_id!r} of {key.name!r} on "
                         f"{len(rows)} vectors: IVF-PQ with nlist {ann.nlist} and code_size "
                         f"{ann.code_size} needs at least {need}")
    norms = np.linalg.norm(rows, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(bad):
        raise StoreError(f"the training vectors of {key.name!r} must be finite and non-zero "
                         f"(cosine); row {int(bad[0])} is not")
    return np.asarray(rows / norms[:, None], np.float32)


def write_training_index(client: OpenSearch, name: str, key: EmbeddingKey, units: F32) -> None:
    """A fresh training index ``name`` holding ``units`` (a leftover of an interrupted
    training, named as ebr names them, is replaced)."""
    from opensearchpy import helpers

    with cluster_errors(client, f"write the training index {name!r}"):
        client.indices.delete(index=name, ignore_unavailable=True)
        client.indices.create(index=name, body=training_index_body(key))
        helpers.bulk(client, ({"_index": name, "_id": str(i), "_source": {"vector": row}}
                              for i, row in enumerate(units.tolist())),
                     chunk_size=_CHUNK, refresh=True)


def model_state(client: OpenSearch, model_id: str) -> dict[str, Any] | None:
    """The model's document (``state``, ``error``...), or None if there is no such model."""
    from opensearchpy.exceptions import NotFoundError

    with cluster_errors(client, f"read k-NN model {model_id!r}"):
        try:
            found = client.transport.perform_request("GET", _MODELS + model_id)
        except NotFoundError:
            return None
    return found if isinstance(found, dict) and found.get("state") else None


def delete_model(client: OpenSearch, model_id: str) -> None:
    """Delete the model (nothing if there is none)."""
    from opensearchpy.exceptions import NotFoundError

    with cluster_errors(client, f"delete k-NN model {model_id!r}"):
        try:
            client.transport.perform_request("DELETE", _MODELS + model_id)
        except NotFoundError:
            pass


def wait_for_model(client: OpenSearch, model_id: str, *, timeout: float = TRAINING_TIMEOUT,
                   poll: float = POLL_SECONDS) -> dict[str, Any]:
    """The model once ``created``; a StoreError naming the cluster's error if it ``failed``
    (the failed model is deleted), or if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        model = model_state(client, model_id)  # None at first: the model document may lag
        state = None if model is None else model.get("state")
        if state == "created":
            assert model is not None
            return model
        if state == "failed":
            assert model is not None
            delete_model(client, model_id)
            raise StoreError(f"training k-NN model {model_id!r} on {where(client)} failed: "
                             f"{model.get('error') or 'no reason given'} (the failed model "
                             "was deleted)")
        if time.monotonic() >= deadline:
            raise StoreError(f"k-NN model {model_id!r} on {where(client)} is not trained after "
                             f"{timeout:g} s (state {state or 'unknown'}); wait and open the "
                             "index again, or delete the model and train it once more")
        time.sleep(poll)


def train_model(client: OpenSearch, index: str, key: EmbeddingKey, vectors: npt.ArrayLike, *,
                timeout: float = TRAINING_TIMEOUT) -> dict[str, Any]:
    """Train ``key``'s IVF-PQ model on ``vectors`` (see the module docstring); the created
    model's document."""
    units = training_sample(key, vectors)
    ann = key.ann
    assert isinstance(ann, IvfPq)  # training_sample refuses other methods
    name = training_index(index, key.name)
    body = train_model_body(key, name)
    write_training_index(client, name, key, units)
    try:
        with cluster_errors(client, f"train k-NN model {ann.model_id!r}"):
            knn = getattr(getattr(client, "plugins", None), "knn", None)
            if knn is not None and hasattr(knn, "train_model"):
                knn.train_model(model_id=ann.model_id, body=body)
            else:  # opensearch-py before the k-NN namespace
                client.transport.perform_request("POST", f"{_MODELS}{ann.model_id}/_train",
                                                 body=body)
        return wait_for_model(client, ann.model_id, timeout=timeout)
    finally:
        with cluster_errors(client, f"delete the training index {name!r}"):
            client.indices.delete(index=name, ignore_unavailable=True)
