"""A real single-node OpenSearch in a Docker container (testcontainers-python), for the
integration tests in ``tests/test_opensearch_container.py``.

Life cycle (``opensearch_client_or_skip``):

* detect: ping the Docker engine testcontainers would use (``DOCKER_HOST``, docker context,
  ``~/.testcontainers.properties``) with a short timeout, so a machine without Docker skips
  at once with the reason instead of failing inside testcontainers;
* image: make sure the pinned image is present (pull it if not); an image that cannot be
  pulled is an environment problem, so it skips too;
* start: ``OpenSearchContainer`` with security off, the demo-config installer off (2.12+
  rejects the weak default admin password it would install), a fixed 1 GB heap and the
  disk-watermark allocator off (a full CI disk would leave shards unassigned);
  ``start()`` returns once cluster health is green;
* stop: always, also when start fails half-way (the container is removed with its volumes).

Set ``EBR_REQUIRE_DOCKER=1`` (e.g. in CI) to turn the skips into failures.

The remaining helpers (index creation, bulk load, force-merge, k-NN model training, search)
fail loudly: a partial bulk, a shard failure or a truncated result is an error, never a
silently smaller answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

__all__ = [
    "IMAGE",
    "REQUIRE_ENV",
    "bulk_load",
    "create_index",
    "docker_unavailable_reason",
    "force_merge_to_one_segment",
    "image_unavailable_reason",
    "matched_names",
    "opensearch_client_or_skip",
    "running_opensearch",
    "search_hits",
    "train_model_and_wait",
]

#: Same pin as docker/compose.yml: ebr needs 2.19+ (Faiss cosinesimil on IVF fields).
IMAGE = "opensearchproject/opensearch:2.19.2"
#: Set to 1/true/yes to fail (instead of skip) when Docker or the image is unavailable.
REQUIRE_ENV = "EBR_REQUIRE_DOCKER"

_PING_TIMEOUT_S = 10  # a remote DOCKER_HOST that does not answer must not hang collection
_CLIENT_TIMEOUT_S = 120  # force-merge and model training requests can be slow on a cold node
_LOG_TAIL_LINES = 60


# --------------------------------------------------------------------------------------------
# Docker detection and the container


def docker_unavailable_reason() -> str | None:
    """None if a Docker engine answers a ping, else why not (one line)."""
    try:
        from testcontainers.core.docker_client import DockerClient
    except ImportError as exc:
        return f"testcontainers is not installed ({exc})"
    try:
        # testcontainers' own client: it resolves the engine exactly as start() will.
        docker = DockerClient(timeout=_PING_TIMEOUT_S)
        try:
            docker.client.ping()
        finally:
            docker.client.close()
    except Exception as exc:  # any failure here means: no engine we can use
        return f"no Docker engine answers: {type(exc).__name__}: {exc}"
    return None


def image_unavailable_reason(image: str = IMAGE) -> str | None:
    """None if ``image`` is present locally or could be pulled, else why not."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.docker_client import DockerClient

    name = testcontainers_config.hub_image_name_prefix + image  # as DockerContainer names it
    docker = DockerClient()
    try:
        try:
            docker.client.images.get(name)
            return None
        except Exception:  # not present (ImageNotFound) or unreadable: try to pull
            pass
        try:
            docker.client.images.pull(name)
        except Exception as exc:
            return f"cannot pull image {name}: {type(exc).__name__}: {exc}"
        return None
    finally:
        docker.client.close()


def _log_tail(container: Any) -> str:
    with contextlib.suppress(Exception):
        out, err = container.get_logs()
        lines = (out + err).decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:])
    return "(no container logs)"


@contextlib.contextmanager
def running_opensearch(image: str = IMAGE) -> Iterator[OpenSearch]:
    """Start OpenSearch in a container, yield a client, and always remove the container."""
    from testcontainers.community.opensearch import OpenSearchContainer

    container = (
        OpenSearchContainer(image, security_enabled=False)
        .with_env("DISABLE_INSTALL_DEMO_CONFIG", "true")
        .with_env("OPENSEARCH_JAVA_OPTS", "-Xms1g -Xmx1g")
        # A nearly full disk on the Docker host must not leave our shards unassigned.
        .with_env("cluster.routing.allocation.disk.threshold_enabled", "false")
    )
    client: OpenSearch | None = None
    try:
        try:
            container.start()  # returns once cluster health is green
        except Exception as exc:
            exc.add_note(f"OpenSearch container logs (last {_LOG_TAIL_LINES} lines):\n"
                         + _log_tail(container))
            raise
        client = container.get_client(timeout=_CLIENT_TIMEOUT_S)
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        container.stop()  # no-op if the container was never created


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def opensearch_client_or_skip(image: str = IMAGE) -> Iterator[OpenSearch]:
    """The body of a session fixture: a client for a fresh container, or ``pytest.skip`` with
    the reason (``pytest.fail`` if ``EBR_REQUIRE_DOCKER`` is set) when Docker or the image is
    unavailable.  A container that fails to start on a working engine is an error."""
    reason = docker_unavailable_reason()
    if reason is None:
        reason = image_unavailable_reason(image)
    if reason is not None:
        if _truthy(os.environ.get(REQUIRE_ENV)):
            pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(reason)
    with running_opensearch(image) as client:
        yield client


# --------------------------------------------------------------------------------------------
# Index, model and search helpers


def create_index(client: OpenSearch, index: str, body: Mapping[str, Any]) -> None:
    resp = client.indices.create(index=index, body=dict(body))
    if not resp.get("acknowledged"):
        raise AssertionError(f"creating {index!r} was not acknowledged: {resp}")
    # Replicas are 0, so green means every primary is allocated and searchable.  (`timeout`
    # alone would be taken by opensearch-py as the HTTP timeout; with `request_timeout` set
    # it reaches the server as the health wait.)  A wait that runs out still answers 200.
    health = client.cluster.health(index=index, wait_for_status="green", timeout="60s",
                                   request_timeout=90)
    if health.get("timed_out") or health.get("status") != "green":
        raise AssertionError(f"{index!r} did not turn green: {health}")


def bulk_load(
    client: OpenSearch, index: str, docs: Sequence[tuple[str, Mapping[str, Any]]]
) -> None:
    """Index ``(id, source)`` pairs, refresh, and check every one of them arrived."""
    from opensearchpy import helpers

    ids = [i for i, _ in docs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate document ids for {index!r}")
    actions = [{"_op_type": "create", "_index": index, "_id": i, "_source": dict(source)}
               for i, source in docs]
    ok, _ = helpers.bulk(client, actions, refresh=True)  # raises BulkIndexError on any item
    count = client.count(index=index)["count"]
    if ok != len(docs) or count != len(docs):
        raise AssertionError(f"{index!r}: indexed {ok}, counted {count}, expected {len(docs)}")


def force_merge_to_one_segment(client: OpenSearch, index: str) -> None:
    """Faiss ``k`` is per segment: one shard with one segment makes top-K results exactly K."""
    client.indices.forcemerge(index=index, max_num_segments=1)
    client.indices.refresh(index=index)
    shards = client.indices.segments(index=index)["indices"][index]["shards"]
    searchable = [name for copies in shards.values() for copy in copies
                  for name, seg in copy["segments"].items() if seg.get("search")]
    if len(searchable) != 1:
        raise AssertionError(f"{index!r} still has {len(searchable)} searchable segments")


def train_model_and_wait(
    client: OpenSearch, model_id: str, body: Mapping[str, Any], timeout_s: float = 180.0
) -> dict[str, Any]:
    """``POST /_plugins/_knn/models/{id}/_train`` and poll until the model is ``created``.
    Raises on ``failed`` (with the plugin's ``error``) and when ``timeout_s`` runs out."""
    from opensearchpy.exceptions import NotFoundError

    client.plugins.knn.train_model(model_id=model_id, body=dict(body))
    deadline = time.monotonic() + timeout_s
    model: dict[str, Any] = {}
    while True:
        with contextlib.suppress(NotFoundError):  # the model document may lag the request
            model = client.plugins.knn.get_model(model_id=model_id)
        state = model.get("state")
        if state == "created":
            return model
        if state == "failed":
            raise AssertionError(f"training k-NN model {model_id!r} failed: "
                                 f"{model.get('error')!r}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"k-NN model {model_id!r} not created within {timeout_s:g} s "
                               f"(last state {state!r})")
        time.sleep(0.5)


def search_hits(
    client: OpenSearch, index: str, body: Mapping[str, Any], *, exact_total: bool = True
) -> list[dict[str, Any]]:
    """Run a compiled ``_search`` body (plus ``_source: false``) and return its hits.

    Fails on shard failures or time-outs.  With ``exact_total`` it also fails when more
    documents matched than ``size`` returned (a truncated answer would make a set comparison
    meaningless); leave it off for ``knn`` bodies, whose ``hits.total`` is not the answer
    size (``k`` per segment).
    """
    request = {**body, "_source": False}
    if exact_total:
        request["track_total_hits"] = True
    resp = client.search(index=index, body=request)
    if resp.get("timed_out") or resp.get("_shards", {}).get("failed", 0):
        raise AssertionError(f"partial result on {index!r}: {resp.get('_shards')}")
    hits: list[dict[str, Any]] = resp["hits"]["hits"]
    ids = [h["_id"] for h in hits]
    if len(set(ids)) != len(ids):
        raise AssertionError(f"duplicate hits: {sorted(ids)}")
    if exact_total:
        total = resp["hits"]["total"]
        if total.get("relation") != "eq" or total["value"] != len(hits):
            raise AssertionError(
                f"{index!r}: {total} matched but {len(hits)} returned (size "
                f"{body.get('size')}); body: {json.dumps(body)[:2000]}")
    return hits


def matched_names(hit: Mapping[str, Any]) -> set[str]:
    """The ``_name`` of every clause a hit matched (a list, or a name->score object with
    ``include_named_queries_score``)."""
    names = hit.get("matched_queries", [])
    return set(names.keys() if isinstance(names, dict) else names)
