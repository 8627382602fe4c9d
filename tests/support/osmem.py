"""Test harness for ``osmem-server``, the in-memory OpenSearch emulator (PyPI ``osmem-server``).

osmem is an offline stand-in, audited against OpenSearch 3.8 for bool/term/terms/ids/mappings.
We use it to check that the boolean skeleton of a compiled query selects the same documents as
the reference evaluator. It never replaces the container tests against a real cluster: it
rejects ``knn`` (queries and ``lang: knn`` scripts) and script params that are arrays/objects.

Process life cycle (see ``running_osmem``):

* start: the bundled binary (or ``$OSMEM_SERVER_BIN``) with ``--addr 127.0.0.1:0`` — the server
  binds the free port itself, so there is no pick-a-port-then-bind race — plus ``--no-ja`` and
  ``--parent-pid <our pid>``;
* readiness: the server prints one JSON line ``{"url": ..., "pid": ..., "version": ...}`` on
  stdout once it listens; we then also require ``GET /`` to answer, all within a bounded time;
* stop: closing its stdin makes it exit; after a grace period it is terminated, then killed,
  and always reaped. If this Python process dies abruptly the server still exits (stdin EOF and
  the ``--parent-pid`` watch), so no orphan is left behind.

Use from tests through the session fixture ``osmem_client``, re-exported by ``tests/conftest.py``::

    from support.osmem import osmem_client  # noqa: F401  (pytest fixture)

The fixture skips (with the reason) when the server cannot be started; set
``EBR_REQUIRE_OSMEM=1`` (e.g. in CI) to turn that skip into a failure.

We deliberately do not use the package's own pytest plugin (auto-loaded through the ``pytest11``
entry point; fixtures ``osmem_server``/``osmem_clone``/``osmem_url``): its session server is
frozen by default (writes only through per-test clones), it errors instead of skipping when the
binary is missing, and its launcher neither drains stdout after startup nor reaps a process
killed on a startup timeout.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

__all__ = [
    "OsmemUnavailable",
    "SearchTruncatedError",
    "load_documents",
    "osmem_client",
    "osmem_client_or_skip",
    "running_osmem",
    "search_hits",
    "search_ids",
    "search_matched",
]

#: Set to 1/true/yes to fail (instead of skip) when osmem-server cannot be started.
REQUIRE_ENV = "EBR_REQUIRE_OSMEM"
#: OpenSearch's default ``index.max_result_window`` (osmem enforces it too).
MAX_RESULT_WINDOW = 10_000

_LOOPBACK = "127.0.0.1"
_STOP_GRACE_S = 5.0


class OsmemUnavailable(RuntimeError):
    """osmem-server could not be started (package/binary missing, crashed, or not ready in time)."""


class SearchTruncatedError(AssertionError):
    """A search matched more documents than the ``size`` it asked for."""


# --------------------------------------------------------------------------------------------
# Process management


class _Server:
    """One osmem-server child process with its stdout/stderr drained by daemon threads."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.ready: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise OsmemUnavailable(f"cannot execute {argv[0]!r}: {exc}") from exc
        self._threads = [
            threading.Thread(target=self._read_stdout, name="osmem-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="osmem-stderr", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        announced = False
        # Keep draining after the ready line so a chatty server can never block on a full pipe.
        for line in self.proc.stdout:
            if announced:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and "url" in msg:
                announced = True
                self.ready.put(msg)
        if not announced:
            self.ready.put(None)  # EOF before the ready line: the process is exiting.

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip())

    def describe_exit(self, exiting: bool = True) -> str:
        if exiting:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1.0)  # stdout EOF can precede the exit status by a moment
        rc = self.proc.poll()
        status = "still running" if rc is None else f"exit code {rc}"
        if rc is not None:
            self._threads[1].join(timeout=1.0)  # let the stderr reader catch the last words
        tail = " | ".join(self.stderr_tail)
        return f"{status}; stderr: {tail}" if tail else status

    def stop(self, graceful: bool = True) -> None:
        """Close stdin (osmem exits on EOF), then terminate, then kill; always reap.

        ``graceful=False`` (a server that never became ready) skips the stdin grace period.
        """
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert proc.stdin is not None
                proc.stdin.close()
            steps = (None, proc.terminate, proc.kill) if graceful else (proc.terminate, proc.kill)
            for escalate in steps:
                if escalate is not None:
                    with contextlib.suppress(OSError):
                        escalate()
                try:
                    proc.wait(timeout=_STOP_GRACE_S)
                    break
                except subprocess.TimeoutExpired:
                    continue
        proc.wait()  # reap (returns at once if already reaped)
        for t in self._threads:
            t.join(timeout=1.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


def _resolve_binary(binary: str | None) -> str:
    if binary is None:
        try:
            from osmem_server import OsmemError, resolve_binary
        except ImportError as exc:
            raise OsmemUnavailable(f"the osmem-server package is not installed ({exc})") from exc
        try:
            binary = resolve_binary()  # $OSMEM_SERVER_BIN, else the binary bundled in the wheel
        except OsmemError as exc:
            raise OsmemUnavailable(str(exc)) from exc
    if not os.path.isfile(binary):
        raise OsmemUnavailable(f"osmem-server binary not found at {binary!r}")
    if not os.access(binary, os.X_OK):
        raise OsmemUnavailable(f"osmem-server binary {binary!r} is not executable")
    return binary


@contextlib.contextmanager
def running_osmem(
    *, startup_timeout: float = 20.0, binary: str | None = None
) -> Iterator[OpenSearch]:
    """Run a fresh, empty osmem-server on a free 127.0.0.1 port and yield a client for it.

    Raises ``OsmemUnavailable`` if the server cannot be started and answering within
    ``startup_timeout`` seconds (nothing is left running in that case). Exceptions raised by the
    ``with`` body propagate unchanged; the server is stopped and reaped in every case.
    ``binary`` overrides the executable (default: ``$OSMEM_SERVER_BIN`` or the bundled one).
    """
    try:
        from opensearchpy import OpenSearch
        from opensearchpy.exceptions import OpenSearchException
    except ImportError as exc:
        raise OsmemUnavailable(f"opensearch-py is not installed ({exc})") from exc

    argv = [
        _resolve_binary(binary),
        "--addr",
        f"{_LOOPBACK}:0",
        "--no-ja",  # no Japanese analysis: we only use keyword fields
        "--parent-pid",
        str(os.getpid()),
    ]
    deadline = time.monotonic() + startup_timeout
    server = _Server(argv)
    client: OpenSearch | None = None
    ready = False
    try:
        try:
            info = server.ready.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise OsmemUnavailable(
                f"osmem-server did not announce readiness within {startup_timeout:g} s "
                f"({server.describe_exit(exiting=False)})"
            ) from None
        if info is None:
            raise OsmemUnavailable(f"osmem-server exited during startup ({server.describe_exit()})")
        url = str(info["url"])
        if urlsplit(url).hostname != _LOOPBACK:
            raise OsmemUnavailable(f"osmem-server listens on {url}, expected {_LOOPBACK} only")

        client = OpenSearch(hosts=[url], timeout=30, max_retries=0, retry_on_timeout=False)
        last_error: Exception | None = None
        while True:
            try:
                client.info()
                break
            except OpenSearchException as exc:  # includes ConnectionError / TransportError
                last_error = exc
            if server.proc.poll() is not None:
                raise OsmemUnavailable(
                    f"osmem-server exited after startup ({server.describe_exit()})"
                )
            if time.monotonic() >= deadline:
                raise OsmemUnavailable(
                    f"osmem-server at {url} did not answer GET / within {startup_timeout:g} s: "
                    f"{last_error!r}"
                )
            time.sleep(0.05)
        ready = True
        yield client
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        server.stop(graceful=ready)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def osmem_client_or_skip() -> Iterator[OpenSearch]:
    """The body of ``osmem_client`` as a plain generator (testable without pytest's machinery).

    ``running_osmem()``, except that ``OsmemUnavailable`` becomes ``pytest.skip(reason)`` or, if
    ``EBR_REQUIRE_OSMEM`` is set, ``pytest.fail(reason)``.
    """
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(running_osmem())
        except OsmemUnavailable as exc:
            reason = f"osmem-server unavailable: {exc}"
            if _truthy(os.environ.get(REQUIRE_ENV)):
                pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
            pytest.skip(reason)
        yield client


@pytest.fixture(scope="session")
def osmem_client() -> Iterator[OpenSearch]:
    """A client for one osmem-server shared by the whole session (empty at start).

    Tests share the server: create uniquely named indices (and delete them when done). Skips
    with the reason when osmem-server cannot be started, or fails if ``EBR_REQUIRE_OSMEM`` is set.
    """
    yield from osmem_client_or_skip()


# --------------------------------------------------------------------------------------------
# Data and search helpers (work against osmem or a real cluster)


def load_documents(
    client: OpenSearch,
    index: str,
    mappings: dict[str, Any],
    docs: Sequence[tuple[str, dict[str, Any]]],
) -> None:
    """Create ``index`` (0 replicas) with ``mappings``, bulk-index ``(id, source)`` pairs, refresh.

    Fails loudly: on duplicate ids, an existing index, any bulk item error, or a count mismatch.
    """
    from opensearchpy import helpers

    dupes = sorted(i for i, n in collections.Counter(i for i, _ in docs).items() if n > 1)
    if dupes:
        raise ValueError(f"duplicate document ids for {index!r}: {dupes}")

    client.indices.create(
        index=index,
        body={"settings": {"number_of_replicas": 0}, "mappings": mappings},
    )
    actions = [
        {"_op_type": "create", "_index": index, "_id": doc_id, "_source": source}
        for doc_id, source in docs
    ]
    ok, _errors = helpers.bulk(client, actions)  # raises BulkIndexError on any failed item
    client.indices.refresh(index=index)
    count = client.count(index=index)["count"]
    if ok != len(docs) or count != len(docs):
        raise AssertionError(
            f"{index!r}: indexed {ok} and counted {count} documents, expected {len(docs)}"
        )


def search_hits(
    client: OpenSearch, index: str, query: dict[str, Any], size: int
) -> list[dict[str, Any]]:
    """Run ``{"query": query}`` with ``size`` and return every hit (without ``_source``).

    Raises ``SearchTruncatedError`` if more than ``size`` documents match (exact total via
    ``track_total_hits``), and ``AssertionError`` on shard failures, time-outs or inconsistent hits.
    """
    if not 0 <= size <= MAX_RESULT_WINDOW:
        raise ValueError(f"size must be in [0, {MAX_RESULT_WINDOW}], got {size}")
    body = {"query": query, "size": size, "track_total_hits": True, "_source": False}
    resp = client.search(index=index, body=body)

    shards = resp.get("_shards", {})
    if resp.get("timed_out") or shards.get("failed", 0):
        raise AssertionError(f"partial search result on {index!r}: {resp.get('_shards')}")
    total = resp["hits"]["total"]
    if isinstance(total, dict):
        if total.get("relation") != "eq":
            raise AssertionError(f"hits.total is not exact: {total}")
        total = total["value"]
    hits: list[dict[str, Any]] = resp["hits"]["hits"]
    if total > size:
        raise SearchTruncatedError(
            f"query on {index!r} matched {total} documents but size={size}; "
            f"results would be truncated: {json.dumps(query, sort_keys=True)}"
        )
    if len(hits) != total:
        raise AssertionError(f"hits.total={total} but {len(hits)} hits returned")
    ids = [h["_id"] for h in hits]
    if len(set(ids)) != len(ids):
        raise AssertionError(f"duplicate hits returned: {sorted(ids)}")
    return hits


def search_ids(client: OpenSearch, index: str, query: dict[str, Any], size: int) -> set[str]:
    """The ids of all documents ``query`` matches; fails if they are more than ``size``."""
    return {h["_id"] for h in search_hits(client, index, query, size)}


def search_matched(
    client: OpenSearch, index: str, query: dict[str, Any], size: int
) -> dict[str, frozenset[str]]:
    """Hit id -> names (``_name``) of the clauses it matched (``matched_queries``), unordered."""
    out: dict[str, frozenset[str]] = {}
    for h in search_hits(client, index, query, size):
        names = h.get("matched_queries", [])
        # With include_named_queries_score OpenSearch returns {name: score}; keys are the names.
        out[h["_id"]] = frozenset(names.keys() if isinstance(names, dict) else names)
    return out
