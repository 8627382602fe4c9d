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

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def _unavailable(reason: str) -> None:
    if _required():
        pytest.fail(f"{REQUIRE_ENV} is set but no OpenSearch is available: {reason}",
                    pytrace=False)
    pytest.skip(f"no OpenSearch: {reason}")


def _home() -> Path | None:
    home = os.environ.get(HOME_ENV)
    path = Path(home) if home else SHARED_HOME
    return path if (path / "start").is_file() else None


@pytest.fixture(scope="session")
def opensearch_cluster() -> Iterator[Cluster]:
    url = os.environ.get(URL_ENV)
    if url:
        yield Cluster(url, has_faiss=os.environ.get("EBR_OPENSEARCH_FAISS") == "1",
                      how=f"{URL_ENV}")
        return
    home = _home()
    if home is not None:
        work = tempfile.mkdtemp(prefix="ebr-opensearch-")
        # The node runs as an unprivileged user when we are root: it must reach its work dir.
        os.chmod(work, 0o777)
        command = [str(home / "start")]
        if os.environ.get(VERSION_ENV):
            command.append(os.environ[VERSION_ENV])
        done = subprocess.run(command, env={**os.environ, "EBR_OS_WORK": work},
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            _unavailable(f"{home / 'start'} failed: {(done.stdout + done.stderr)[-2000:]}")
        try:
            yield Cluster(done.stdout.strip().splitlines()[-1], has_faiss=False,
                          how=f"{home / 'start'} {os.environ.get(VERSION_ENV, '')}".strip())
        finally:
            subprocess.run([str(home / "stop"), work, "--clean"], capture_output=True,
                           timeout=120, check=False)
            shutil.rmtree(work, ignore_errors=True)
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
    work = tempfile.mkdtemp(prefix="ebr-opensearch-secured-")
    os.chmod(work, 0o777)
    done = subprocess.run([str(home / "start"), "2.19.1"], capture_output=True, text=True,
                          env={**os.environ, "EBR_OS_WORK": work, "EBR_OS_SECURITY": "1"},
                          timeout=300)
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        _unavailable(f"the secured node did not start: {(done.stdout + done.stderr)[-2000:]}")
    try:
        lines = (Path(work) / "credentials").read_text().split("\n")
        passwords = dict(line.split(" ", 1) for line in lines if " " in line)
        yield SecuredCluster(done.stdout.strip().splitlines()[-1], str(Path(work) / "ca.pem"),
                             passwords)
    finally:
        subprocess.run([str(home / "stop"), work, "--clean"], capture_output=True, timeout=120,
                       check=False)
        shutil.rmtree(work, ignore_errors=True)
