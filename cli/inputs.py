"""Parsing what several commands take (and a console will): ``KEY=VALUE`` options, vectors
given inline or as ``.npy`` files, coarse-quantizer centroids, for exploring a query before
an index exists a schema inferred from the query with seeded stand-in vectors, and opening a
store (a cluster's CA bundle and credentials: :func:`cluster_options`, :func:`signed_in`).

Bad values raise :class:`click.BadParameter` naming the option, so a command reports them
as usage errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema, cluster_key
from ebr.quantization.coarse import CentroidQuantizer, CoarseQuantizer
from ebr.query.nodes import NN, Match, Node, Term, walk
from ebr.stores.local.database import DB_FILE
from ebr.stores.opensearch.client import PASSWORD_ENV, USER_ENV, AuthenticationFailed

if TYPE_CHECKING:
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.encoders.serving.sentence_encoder import SentenceEncoder
    from ebr.ranking import Reranker
    from ebr.stores.local import LocalStore
    from ebr.stores.opensearch.store import OpenSearchStore

F32 = npt.NDArray[np.float32]
T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., Any])

#: The most hits a command asks for (OpenSearch's default index.max_result_window).
MAX_SIZE = 10000


def key_value(spec: str, option: str) -> tuple[str, str]:
    """``KEY=VALUE`` split at the first ``=``."""
    key, sep, value = spec.partition("=")
    if not sep or not key or not value:
        raise click.BadParameter(f"expected KEY=VALUE, got {spec!r}", param_hint=option)
    return key, value


def load_array(value: str, option: str) -> F32:
    """``path.npy`` or comma-separated numbers."""
    try:
        if value.endswith(".npy"):
            return np.asarray(np.load(value), dtype=np.float32)
        return np.array([float(x) for x in value.split(",")], dtype=np.float32)
    except (OSError, ValueError) as e:
        raise click.BadParameter(f"cannot read {value!r}: {e}", param_hint=option) from None


def vector_options(specs: tuple[str, ...], option: str = "--vector") -> dict[str, F32]:
    """``KEY=x,y,..`` / ``KEY=file.npy`` options as query embeddings by key."""
    return {k: load_array(v, option) for k, v in (key_value(s, option) for s in specs)}


def centroid_options(specs: tuple[str, ...], option: str = "--centroids"
                     ) -> dict[str, CoarseQuantizer]:
    """``KEY=file.npy`` options as coarse quantizers by key."""
    quantizers: dict[str, CoarseQuantizer] = {}
    for key, value in (key_value(s, option) for s in specs):
        try:
            quantizers[key] = CentroidQuantizer(load_array(value, option))
        except ValueError as e:
            raise click.BadParameter(f"{value}: {e}", param_hint=option) from None
    return quantizers


def infer_schema(ast: Node, index: str = "ebr", dimension: int = 16, nlist: int = 64) -> Schema:
    """A permissive schema declaring exactly the namespaces and keys ``ast`` uses, for
    exploring queries before an index exists."""
    keys = sorted({n.key for n in walk(ast) if isinstance(n, NN)})
    namespaces = sorted({n.namespace for n in walk(ast) if isinstance(n, Term | Match)})
    return Schema.create(
        index,
        tuple(Namespace(ns) for ns in namespaces if cluster_key(ns) is None),
        tuple(EmbeddingKey(k, dimension, CoarseQuantizerSpec(nlist=nlist)) for k in keys),
    )


def fill_with_stand_ins(schema: Schema, vectors: dict[str, F32],
                        quantizers: dict[str, CoarseQuantizer],
                        note: Callable[[str], None]) -> None:
    """Give every key of ``schema`` without a query vector a seeded random unit vector, and
    without centroids seeded random ones, so a request's shape can be shown; ``note`` is told
    of each stand-in (the user must know the figures are not theirs)."""
    for i, key in enumerate(schema.keys):
        rng = np.random.default_rng(i)
        if key.name not in vectors:
            note(f"no --vector for {key.name}: using a random unit vector (seed {i}) to show "
                 "the request's shape")
            v = rng.standard_normal(key.dimension).astype(np.float32)
            vectors[key.name] = v / np.linalg.norm(v)
        if key.name not in quantizers:
            note(f"no --centroids for {key.name}: using {key.quantizer.nlist} random "
                 f"centroids (seed {i})")
            c = rng.standard_normal((key.quantizer.nlist, key.dimension)).astype(np.float32)
            quantizers[key.name] = CentroidQuantizer(c / np.linalg.norm(c, axis=1, keepdims=True))


def interactive() -> bool:
    """Whether a person can answer a prompt (a module function so tests can stand in for a
    terminal)."""
    return sys.stdin.isatty()


def cluster_options(command: C) -> C:
    """The options of every command that may reach an OpenSearch cluster: its CA bundle and
    the user to sign in as."""
    command = click.option(
        "--user", help=f"Sign in to the cluster as USER (else {USER_ENV}); the password comes "
                       f"from {PASSWORD_ENV}, else is asked for on a terminal, never shown."
    )(command)
    return click.option(
        "--ca-certs", type=click.Path(exists=True, dir_okay=False),
        help="CA bundle of an OpenSearch cluster over TLS (or EBR_OPENSEARCH_CA)."
    )(command)


def credentials(user: str | None) -> dict[str, str]:
    """The credentials to connect with: none given here (the client reads the environment),
    or ``user`` with the environment's password if it is that user's, else one asked for
    (hidden) on a terminal."""
    if not user:
        return {}
    if os.environ.get(PASSWORD_ENV) and os.environ.get(USER_ENV, user) == user:
        return {"user": user, "password": os.environ[PASSWORD_ENV]}
    if not interactive():
        return {"user": user}  # no password to give: the cluster says 401, cleanly
    return {"user": user, "password": click.prompt(f"Password for {user}", hide_input=True,
                                                   err=True)}


def signed_in(call: Callable[..., T], user: str | None, ca_certs: str | None) -> T:
    """``call(**connection)`` with the CA bundle and :func:`credentials`; if the cluster
    answers 401 and a person is at a terminal, asks for the user and password once more."""
    try:
        return call(ca_certs=ca_certs, **credentials(user))
    except AuthenticationFailed as e:
        if not interactive():
            raise
        click.echo(f"{e}; sign in:", err=True)
        user = click.prompt("User", default=user or os.environ.get(USER_ENV), err=True)
        password = click.prompt(f"Password for {user}", hide_input=True, err=True)
        return call(ca_certs=ca_certs, user=user, password=password)


def is_cluster(where: str) -> bool:
    """Whether a ``--store`` / STORE names an OpenSearch cluster (else a local index)."""
    return where.startswith(("http://", "https://"))


def query_text(query: str) -> str:
    """QUERY as given, or for ``-`` the text on stdin, which must be UTF-8."""
    if query != "-":
        return query
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise click.UsageError(f"the query on stdin is not valid UTF-8 text (byte {e.start}: "
                               f"{e.reason})") from None


def reranker_option(what: str) -> Callable[[C], C]:
    """``--reranker FILE|linear``: a file from ``ebr train-reranker``, or the linear default."""
    return click.option("--reranker", "reranker_spec", metavar="FILE|linear",
                        help=f"{what}: a file from `ebr train-reranker`, or 'linear' (the "
                             "default weights, no training).")


def load_reranker_option(spec: str | None, schema: Schema) -> Reranker | None:
    """The reranker ``--reranker`` names (refused when trained for other features)."""
    if spec is None:
        return None
    from ebr.ranking import LinearReranker
    from ebr.ranking.lambdarank import load_reranker

    return LinearReranker() if spec == "linear" else load_reranker(spec, schema)


def query_encoders(paths: tuple[Path, ...]) -> dict[str, QueryEncoder | SentenceEncoder]:
    """The query towers of the model directories ``paths`` by embedding key (a bag-only model
    needs no torch; one with a text transformer says so when torch is missing); a sentence
    model directory (:mod:`ebr.encoders.serving.sentence_encoder`) gives its sentence encoder."""
    if not paths:
        return {}
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.encoders.serving.sentence_encoder import SentenceEncoder, is_sentence_model_directory

    models = [SentenceEncoder.load(p) if is_sentence_model_directory(p) else QueryEncoder(p)
              for p in paths]
    return {m.key: m for m in models}


def open_store(where: str, index: str | None, *, readonly: bool = False,
               engine: str | None = None, schema: Schema | None = None,
               ca_certs: str | None = None, user: str | None = None
               ) -> LocalStore | OpenSearchStore:
    """The store ``where`` names: ``http(s)://host:port`` (with ``index``) for OpenSearch,
    signed in as :func:`signed_in` says, else a local index directory (``local:PATH`` or
    ``PATH``).  Given a ``schema``, an index that does not exist yet is created (OpenSearch on
    ``engine``, default faiss)."""
    if is_cluster(where):
        from ebr.stores.opensearch.store import OpenSearchStore, index_exists

        if not index:
            raise click.UsageError(f"{where} is an OpenSearch cluster: name the index with --index")

        def opened(**connection: Any) -> OpenSearchStore:
            assert index is not None
            if schema is not None and not index_exists(where, index, **connection):
                return OpenSearchStore.create(where, index, schema, engine=engine or "faiss",  # type: ignore[arg-type]
                                              **connection)
            return OpenSearchStore.open(where, index, **connection)

        return signed_in(opened, user, ca_certs)
    from ebr.stores.local import LocalStore

    path = Path(where.removeprefix("local:"))
    if schema is not None and not (path / DB_FILE).exists():
        return LocalStore.create(path, schema)
    return LocalStore.open(path, readonly=readonly)
