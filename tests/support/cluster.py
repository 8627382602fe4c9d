"""A real OpenSearch for the tests, started once per test run (the session fixture
``opensearch_url``, re-exported by ``tests/conftest.py``).

Where the cluster comes from, first that applies:

1. ``EBR_OPENSEARCH_URL``: a user's own cluster (credentials as the store reads them:
   ``EBR_OPENSEARCH_USER`` / ``EBR_OPENSEARCH_PASSWORD`` / ``EBR_OPENSEARCH_CA``);
2. the ``start`` script of ``$EBR_OPENSEARCH_HOME``, else of ``../shared/opensearch`` beside
   the repository: a fresh node of ``$EBR_OPENSEARCH_VERSION`` (default: the newest this
   machine's Java runs), stopped and cleaned at the end of the run;
3. the official container image through testcontainers, where a Docker engine answers;
4. else every OpenSearch test skips with the reason.  ``EBR_REQUIRE_OPENSEARCH=1`` (CI) turns
   the skip into a failure.

``has_faiss`` says whether the cluster has the k-NN native libraries: the shared node does
not, and the first document indexed into a Faiss field kills it, so Faiss-engine tests run
only on a cluster that has them (the container image) and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

URL_ENV = "EBR_OPENSEARCH_URL"
HOME_ENV = "EBR_OPENSEARCH_HOME"
VERSION_ENV = "EBR_OPENSEARCH_VERSION"
REQUIRE_ENV = "EBR_REQUIRE_OPENSEARCH"
SHARED_HOME = Path(__file__).resolve().parents[3] / "shared" / "opensearch"


@dataclass(frozen=True)
class Cluster:
    url: str
    has_faiss: bool
    how: str


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> NoReturn:
    if _required():
        pytest.fail(f"{REQUIRE_ENV} is set but no OpenSearch is available: {reason}",
                    pytrace=False)
    pytest.skip(f"no OpenSearch: {reason}")


def _home() -> Path | None:
    home = os.environ.get(HOME_ENV)
    path = Path(home) if home else SHARED_HOME
    return path if (path / "start").is_file() else None


#: Times a start whose nodes were not the ones answering is tried again (on other ports).
START_ATTEMPTS = 3
#: The start script's variable fixing node 0's HTTP port.
PORT_ENV = "EBR_OS_PORT"
#: Node 0's HTTP port of each cluster ``started_nodes`` started and has not stopped yet.
_own_ports: set[int] = set()


class StartFailed(Exception):
    """The start script failed, or what answered at its URL was not the cluster it started."""


@dataclass(frozen=True)
class Started:
    """Nodes of the start script: node 0's URL and their work directory."""

    url: str
    work: Path


@contextlib.contextmanager
def started_nodes(home: Path, *args: str, prefix: str = "ebr-opensearch-",
                  env: dict[str, str] | None = None) -> Iterator[Started]:
    """Nodes of ``home/start ARGS`` in a fresh work directory, stopped and cleaned at the end,
    proven to be the ones answering at the URL it printed.

    ``start`` takes the first run of free ports from 9400 and says the cluster is up once
    something at node 0's port answers yellow with as many nodes; every cluster it starts has
    the same name.  Two test runs starting at once on this machine (other engineers' suites,
    or a test's own cluster beside the session's) probe the same ports as free before either's
    nodes bind them: the second's nodes then fail to bind, and its check is answered by the
    first's cluster, whose URL it prints.  Both runs then share one cluster: the same index
    names made twice ("created by another client"), nodes stopped under the other's ingest.
    So every node answering must keep its data in this work directory; else these nodes are
    stopped and the start tried again on other ports (an explicit ``EBR_OS_PORT`` is not tried
    again: it would find the same cluster).  An ``EBR_OS_PORT`` inherited from the environment
    (a run given its port) is the first cluster's: a second one started while the first runs
    (the session's node beside a test's own) takes free ports instead, where it would only
    find the first.  The disk watermarks are then turned off (:func:`_ignore_the_disk`)."""
    given = env or {}
    env = {**os.environ, **given}
    if PORT_ENV not in given and env.get(PORT_ENV, "").isdigit() and int(env[PORT_ENV]) in _own_ports:
        del env[PORT_ENV]
    reason = ""
    for _ in range(1 if env.get(PORT_ENV) else START_ATTEMPTS):
        work = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(work, 0o777)  # the nodes run as an unprivileged user when we are root
        try:
            done = subprocess.run([str(home / "start"), *args], capture_output=True, text=True,
                                  env={**env, "EBR_OS_WORK": str(work)}, timeout=300)
            if done.returncode != 0:
                raise StartFailed(f"{home / 'start'} failed: "
                                  f"{(done.stdout + done.stderr)[-2000:]}")
            url = done.stdout.strip().splitlines()[-1]
            strangers = _strangers(url, work)
            if not strangers:
                _ignore_the_disk(url, work)
                break
            reason = (f"{home / 'start'} printed {url}, where nodes it did not start answer "
                      f"(their data in {', '.join(strangers)}, not in {work}): another run's "
                      "cluster took the same ports")
        except BaseException:
            _stop(home, work)
            raise
        _stop(home, work)
    else:
        raise StartFailed(reason)
    port = urlsplit(url).port or 0
    _own_ports.add(port)
    try:
        yield Started(url, work)
    finally:
        _own_ports.discard(port)
        _stop(home, work)


def _strangers(url: str, work: Path) -> list[str]:
    """The data paths of the nodes answering at ``url`` that are not under ``work``."""
    with _admin(url, work) as client:
        nodes = client.nodes.info(metric="settings",
                                  filter_path="nodes.*.settings.path.data")["nodes"]
    paths = [path for node in nodes.values()
             for path in _listed(node["settings"]["path"]["data"])]
    return [path for path in paths if not Path(path).is_relative_to(work)]


def _ignore_the_disk(url: str, work: Path) -> None:
    """The disk watermarks off: the test clusters hold a few MB on a disk the machine shares,
    and past 85% of it used (by anyone) no replica is allocated (the 3-node test's cluster
    stayed yellow), past 95% every index is made read-only."""
    with _admin(url, work) as client:
        client.cluster.put_settings(body={"persistent": {
            "cluster.routing.allocation.disk.threshold_enabled": False}})


@contextlib.contextmanager
def _admin(url: str, work: Path) -> Iterator[Any]:
    """A client of the nodes in ``work`` (a secured node's: its CA, its admin)."""
    from ebr.stores.opensearch.client import connect

    options: dict[str, Any] = {}
    if (work / "credentials").exists():
        options = {"ca_certs": str(work / "ca.pem"), "user": "admin",
                   "password": _passwords(work)["admin"]}
    client = connect(url, **options)
    try:
        yield client
    finally:
        client.close()


def _listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _passwords(work: Path) -> dict[str, str]:
    """A secured node's ``user password`` lines (``WORKDIR/credentials``)."""
    lines = (work / "credentials").read_text().split("\n")
    return dict(line.split(" ", 1) for line in lines if " " in line)


def _stop(home: Path, work: Path) -> None:
    subprocess.run([str(home / "stop"), str(work), "--clean"], capture_output=True,
                   timeout=120, check=False)
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def opensearch_cluster() -> Iterator[Cluster]:
    url = os.environ.get(URL_ENV)
    if url:
        yield Cluster(url, has_faiss=os.environ.get("EBR_OPENSEARCH_FAISS") == "1",
                      how=f"{URL_ENV}")
        return
    home = _home()
    if home is not None:
        version = [os.environ[VERSION_ENV]] if os.environ.get(VERSION_ENV) else []
        with contextlib.ExitStack() as stack:
            try:
                started = stack.enter_context(started_nodes(home, *version))
            except StartFailed as e:
                _unavailable(str(e))
            yield Cluster(started.url, has_faiss=False,
                          how=f"{home / 'start'} {' '.join(version)}".strip())
        return
    from support.container import docker_unavailable_reason, running_opensearch

    reason = docker_unavailable_reason()
    if reason is not None:
        _unavailable(f"no {URL_ENV}, no start script in {HOME_ENV} or {SHARED_HOME}, and "
                     f"{reason}")
    with running_opensearch() as client:
        host = client.transport.hosts[0]
        yield Cluster(f"http://{host['host']}:{host['port']}", has_faiss=True,
                      how="testcontainers")


@pytest.fixture(scope="session")
def opensearch_url(opensearch_cluster: Cluster) -> str:
    return opensearch_cluster.url


@dataclass(frozen=True)
class SecuredCluster:
    """A node as production clusters run: TLS with its own CA, basic auth, an ``admin`` and a
    read-only ``reader`` user."""

    url: str
    ca: str
    passwords: dict[str, str]


@pytest.fixture(scope="session")
def secured_opensearch() -> Iterator[SecuredCluster]:
    """A secured 2.19.1 node from the start script (the release line with the security
    plugin); skipped (or failed, under EBR_REQUIRE_OPENSEARCH) without one."""
    home = _home()
    if home is None:
        _unavailable(f"a secured node needs the start script of {HOME_ENV} or {SHARED_HOME}")
        return
    with contextlib.ExitStack() as stack:
        try:
            started = stack.enter_context(started_nodes(
                home, "2.19.1", prefix="ebr-opensearch-secured-", env={"EBR_OS_SECURITY": "1"}))
        except StartFailed as e:
            _unavailable(f"the secured node did not start: {e}")
        yield SecuredCluster(started.url, str(started.work / "ca.pem"), _passwords(started.work))
