"""``ebr explain``: show a query's AST, plan and compiled OpenSearch request."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import numpy.typing as npt

from ebr.explanation import explain
from ebr.mappings.schema import (
    CoarseQuantizerSpec,
    EmbeddingKey,
    Namespace,
    Schema,
    cluster_key,
)
from ebr.quantization.coarse import CentroidQuantizer, CoarseQuantizer
from ebr.query.nodes import NN, Node, Term, walk
from ebr.query.parser import parse
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion

#: OpenSearch's default index.max_result_window.
MAX_SIZE = 10000


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


def _key_value(spec: str, option: str) -> tuple[str, str]:
    key, sep, value = spec.partition("=")
    if not sep or not key or not value:
        raise click.BadParameter(f"expected KEY=VALUE, got {spec!r}", param_hint=option)
    return key, value


def _load_array(value: str, option: str) -> npt.NDArray[np.float32]:
    """``path.npy`` or comma-separated numbers."""
    try:
        if value.endswith(".npy"):
            return np.asarray(np.load(value), dtype=np.float32)
        return np.array([float(x) for x in value.split(",")], dtype=np.float32)
    except (OSError, ValueError) as e:
        raise click.BadParameter(f"cannot read {value!r}: {e}", param_hint=option) from None


def _quantizer(value: str) -> CentroidQuantizer:
    try:
        return CentroidQuantizer(_load_array(value, "--centroids"))
    except ValueError as e:
        raise click.BadParameter(f"{value}: {e}", param_hint="--centroids") from None


@click.command("explain")
@click.argument("query")
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Index schema JSON. Without it, one is inferred from the query.")
@click.option("--vector", "vector_specs", multiple=True, metavar="KEY=FILE.npy|x,y,..",
              help="Query embedding for an embedding key (repeatable).")
@click.option("--centroids", "centroid_specs", multiple=True, metavar="KEY=FILE.npy",
              help="Coarse-quantizer centroids (nlist x d) for an embedding key (repeatable).")
@click.option("--size", default=10, show_default=True, type=click.IntRange(0, MAX_SIZE),
              help="Hits to request.")
@click.option("--server-version", default=str(MINIMUM), show_default=True,
              help="OpenSearch version to compile for.")
@click.option("--json", "as_json", is_flag=True, help="Print only the request body, as JSON.")
@click.option("--full-vectors", is_flag=True, help="Print query vectors in full.")
def explain_command(query: str, schema_path: Path | None, vector_specs: tuple[str, ...],
                    centroid_specs: tuple[str, ...], size: int, server_version: str,
                    as_json: bool, full_vectors: bool) -> None:
    """Show how QUERY is read, planned and compiled for OpenSearch ('-' reads stdin).

    \b
    Example:
      ebr explain '(and (term location:seattle) (nn model-1 :radius 0.2 :nprobe 4))'
    """
    text = sys.stdin.read() if query == "-" else query
    schema = Schema.load(schema_path) if schema_path else infer_schema(parse(text))
    vectors = {k: _load_array(v, "--vector") for k, v in
               (_key_value(s, "--vector") for s in vector_specs)}
    quantizers: dict[str, CoarseQuantizer] = {
        k: _quantizer(v) for k, v in (_key_value(s, "--centroids") for s in centroid_specs)}
    for i, key in enumerate(schema.keys):
        # Without real inputs, seeded random ones show the request's shape; say so.
        rng = np.random.default_rng(i)
        if key.name not in vectors:
            click.echo(f"note: no --vector for {key.name}: using a random unit vector "
                       f"(seed {i}) to show the request's shape", err=True)
            v = rng.standard_normal(key.dimension).astype(np.float32)
            vectors[key.name] = v / np.linalg.norm(v)
        if key.name not in quantizers:
            click.echo(f"note: no --centroids for {key.name}: using {key.quantizer.nlist} "
                       f"random centroids (seed {i})", err=True)
            c = rng.standard_normal((key.quantizer.nlist, key.dimension)).astype(np.float32)
            quantizers[key.name] = CentroidQuantizer(c / np.linalg.norm(c, axis=1,
                                                                        keepdims=True))
    result = explain(text, schema, vectors, quantizers, size=size,
                     version=ServerVersion.parse(server_version))
    if as_json:
        click.echo(json.dumps(result.compiled.body, indent=2, ensure_ascii=False))
    else:
        click.echo(result.render(full_vectors=full_vectors))
