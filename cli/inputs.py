"""Parsing what several commands take (and a console will): ``KEY=VALUE`` options, vectors
given inline or as ``.npy`` files, coarse-quantizer centroids, and, for exploring a query
before an index exists, a schema inferred from the query with seeded stand-in vectors.

Bad values raise :class:`click.BadParameter` naming the option, so a command reports them
as usage errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema, cluster_key
from ebr.quantization.coarse import CentroidQuantizer, CoarseQuantizer
from ebr.query.nodes import NN, Node, Term, walk
from ebr.stores.local.database import DB_FILE

if TYPE_CHECKING:
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.stores.local import LocalStore
    from ebr.stores.opensearch.store import OpenSearchStore

F32 = npt.NDArray[np.float32]

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
    namespaces = sorted({n.namespace for n in walk(ast) if isinstance(n, Term)})
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


def query_encoders(paths: tuple[Path, ...], command: str) -> dict[str, QueryEncoder]:
    """The query towers of the model directories ``paths`` by embedding key (torch is
    imported only when a model is given)."""
    if not paths:
        return {}
    from ebr.cli.torch_extra import require_torch

    require_torch(command)
    from ebr.encoders.serving.query_encoder import QueryEncoder

    models = [QueryEncoder(p) for p in paths]
    return {m.key: m for m in models}


def open_store(where: str, index: str | None, *, readonly: bool = False,
               engine: str | None = None, schema: Schema | None = None,
               ca_certs: str | None = None) -> LocalStore | OpenSearchStore:
    """The store ``where`` names: ``http(s)://host:port`` (with ``index``) for OpenSearch,
    else a local index directory (``local:PATH`` or ``PATH``).  Given a ``schema``, an index
    that does not exist yet is created (OpenSearch on ``engine``, default faiss)."""
    if where.startswith(("http://", "https://")):
        from ebr.stores.opensearch.store import OpenSearchStore, index_exists

        if not index:
            raise click.UsageError(f"{where} is an OpenSearch cluster: name the index with --index")
        if schema is not None and not index_exists(where, index, ca_certs=ca_certs):
            return OpenSearchStore.create(where, index, schema, engine=engine or "faiss",  # type: ignore[arg-type]
                                          ca_certs=ca_certs)
        return OpenSearchStore.open(where, index, ca_certs=ca_certs)
    from ebr.stores.local import LocalStore

    path = Path(where.removeprefix("local:"))
    if schema is not None and not (path / DB_FILE).exists():
        return LocalStore.create(path, schema)
    return LocalStore.open(path, readonly=readonly)
