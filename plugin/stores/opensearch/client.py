"""Connecting to an OpenSearch cluster: the client, credentials, TLS, and clean errors.

Credentials come from the arguments, else from the environment (``EBR_OPENSEARCH_USER``,
``EBR_OPENSEARCH_PASSWORD``; ``EBR_OPENSEARCH_CA`` names a CA bundle), never from the URL
printed in messages.  TLS certificates are verified unless the caller turns it off.  Every
failure of the cluster becomes a :class:`~ebr.errors.StoreError` that says what and where,
without the password.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ebr.errors import StoreError, UnsupportedError
from ebr.stores.opensearch.versions import ServerVersion, require_supported

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

USER_ENV = "EBR_OPENSEARCH_USER"
PASSWORD_ENV = "EBR_OPENSEARCH_PASSWORD"
CA_ENV = "EBR_OPENSEARCH_CA"
#: Seconds a request may take (bulk chunks and scrolls on a loaded node can be slow).
TIMEOUT = 60


class AuthenticationFailed(StoreError):
    """The cluster answered 401: no credentials, or wrong ones (a command may ask again)."""


def connect(url: str, *, user: str | None = None, password: str | None = None,
            ca_certs: str | None = None, verify_certs: bool = True,
            timeout: float = TIMEOUT) -> OpenSearch:
    """A client for the cluster at ``url`` (``http(s)://host:port``); 5xx answers and
    dropped connections are retried a few times."""
    try:
        from opensearchpy import OpenSearch
    except ImportError:
        raise StoreError("the OpenSearch store needs opensearch-py: pip install 'ebr[opensearch]'"
                         ) from None
    from ebr.stores.opensearch.serialization import OrjsonSerializer

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"not an OpenSearch URL: {shown(url)!r} (expected http(s)://host:port)")
    user = user or parts.username or os.environ.get(USER_ENV)
    password = password or parts.password or os.environ.get(PASSWORD_ENV)
    ca_certs = ca_certs or os.environ.get(CA_ENV)
    options: dict[str, Any] = {
        "timeout": timeout, "max_retries": 3, "retry_on_timeout": True,
        "retry_on_status": (502, 503, 504), "serializer": OrjsonSerializer(),
    }
    if user:
        options["http_auth"] = (user, password or "")
    if parts.scheme == "https":
        options.update(use_ssl=True, verify_certs=verify_certs, ssl_show_warn=verify_certs)
        if ca_certs:
            options["ca_certs"] = ca_certs
    host = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port or 9200}", parts.path, "", ""))
    return OpenSearch(hosts=[host], **options)


def server_version(client: OpenSearch, fallback: ServerVersion | None = None) -> ServerVersion:
    """The cluster's version from ``GET /``, refused below what ebr needs; ``fallback`` when
    the user may not read ``GET /`` (a read-only role), if given."""
    from opensearchpy.exceptions import AuthorizationException

    with cluster_errors(client, "read the server version"):
        try:
            info = client.info()
        except AuthorizationException:
            if fallback is None:
                raise
            return fallback
    version = ServerVersion.from_info(info)
    require_supported(version)
    return version


def send(client: OpenSearch, method: str, path: str, params: Mapping[str, str] | None,
         body: bytes) -> Any:
    """One request on the client's connection, its JSON answer decoded by the client's
    serializer, for the requests the store sends per search: without the API method's per-call
    work (checking every keyword against the parameters it accepts, rebuilding the path) nor
    the transport's (resolving its options, copying the headers), which were a good part of a
    small search's client time.  A first attempt that fails in a way the transport retries (a
    dropped connection, a timeout, 502/503/504) is handed to the transport, which retries it
    as the client is configured.  ``path`` is quoted, ``params`` are strings and ``body`` is
    serialised already (:func:`~ebr.stores.opensearch.serialization.dumps`)."""
    from opensearchpy.exceptions import ConnectionError, ConnectionTimeout, TransportError

    transport = client.transport
    connection = transport.get_connection()
    try:
        _, headers, data = connection.perform_request(method, path, params, body)
    except TransportError as err:
        retried = (transport.retry_on_timeout if isinstance(err, ConnectionTimeout)
                   else isinstance(err, ConnectionError)
                   or err.status_code in transport.retry_on_status)
        if not retried or not transport.max_retries:
            raise
        # The transport pops its own options from the parameters it is given: a copy
        return transport.perform_request(method, path, params=dict(params or {}), body=body)
    transport.connection_pool.mark_live(connection)
    return transport.deserializer.loads(data, headers.get("content-type")) if data else data


def shown(url: str) -> str:
    """``url`` without credentials, for messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def where(client: OpenSearch) -> str:
    """The cluster's address, for messages (no credentials)."""
    hosts = client.transport.hosts or [{}]
    host = hosts[0]
    scheme = "https" if host.get("use_ssl") or client.transport.kwargs.get("use_ssl") else "http"
    return f"{scheme}://{host.get('host', '?')}:{host.get('port', '?')}"


@contextlib.contextmanager
def cluster_errors(client: OpenSearch, doing: str) -> Iterator[None]:
    """Turn the client's exceptions into a :class:`StoreError` saying what failed, where,
    and what to do."""
    from opensearchpy import exceptions as e

    try:
        yield
    except UnsupportedError:
        raise
    except e.AuthenticationException:
        raise AuthenticationFailed(f"cannot {doing} on {where(client)}: authentication failed "
                                   f"(401); check the user and password ({USER_ENV}, "
                                   f"{PASSWORD_ENV})") from None
    except e.AuthorizationException as err:
        raise StoreError(f"cannot {doing} on {where(client)}: permission denied (403): "
                         f"{_reason(err)}") from None
    except e.SSLError as err:
        raise StoreError(f"cannot {doing} on {where(client)}: TLS failed ({_short(err)}); give "
                         f"the cluster's CA bundle ({CA_ENV} or --ca-certs)") from None
    except e.ConnectionError as err:
        raise StoreError(f"cannot {doing}: no OpenSearch answers at {where(client)} "
                         f"({_short(err)})") from None
    except e.TransportError as err:
        raise StoreError(f"cannot {doing} on {where(client)}: {err.status_code} "
                         f"{_reason(err)}") from None


def _reason(err: Any) -> str:
    info = getattr(err, "info", None)
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            root = (error.get("root_cause") or [error])[0]
            return f"{root.get('type', '')}: {root.get('reason', '')}".strip(": ")
        if error:
            return str(error)
    return str(getattr(err, "error", "") or err)


def _short(err: Exception) -> str:
    text = str(getattr(err, "info", "") or err)
    return text if len(text) <= 200 else text[:200] + "..."
