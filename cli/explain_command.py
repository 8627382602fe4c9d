"""``ebr explain``: show a query's AST, plan and compiled OpenSearch request."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ebr.cli.inputs import (
    MAX_SIZE,
    centroid_options,
    cluster_options,
    fill_with_stand_ins,
    infer_schema,
    open_store,
    query_text,
    vector_options,
)
from ebr.explanation import explain
from ebr.mappings.schema import Schema
from ebr.query.parser import parse
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion


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
              help="OpenSearch version to compile for (a cluster --store gives its own).")
@click.option("--store", "where", metavar="local:PATH|URL",
              help="Take the schema and quantizers from an index: a local index directory or "
                   "an OpenSearch cluster (with --index).")
@click.option("--index", help="The OpenSearch index, with a cluster --store.")
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print only the request body, as JSON.")
@click.option("--full-vectors", is_flag=True, help="Print query vectors in full.")
def explain_command(query: str, schema_path: Path | None, vector_specs: tuple[str, ...],
                    centroid_specs: tuple[str, ...], size: int, server_version: str,
                    where: str | None, index: str | None, ca_certs: str | None, user: str | None,
                    as_json: bool, full_vectors: bool) -> None:
    """Show how QUERY is read, planned and compiled for OpenSearch ('-' reads stdin).

    \b
    Example:
      ebr explain '(and (term location:seattle) (nn model-1 :radius 0.2 :nprobe 4))'
    """
    text = query_text(query)
    version = ServerVersion.parse(server_version)
    quantizers = centroid_options(centroid_specs)
    if where is not None:
        with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
            schema = store.schema
            quantizers = {**store.quantizers, **quantizers}
            if isinstance(store.version, ServerVersion):  # an OpenSearch store's server
                version = store.version
    else:
        schema = Schema.load(schema_path) if schema_path else infer_schema(parse(text))
    vectors = vector_options(vector_specs)
    # Without real inputs, seeded random ones show the request's shape; say so.
    fill_with_stand_ins(schema, vectors, quantizers, lambda text: click.echo("note: " + text, err=True))
    result = explain(text, schema, vectors, quantizers, size=size, version=version)
    if as_json:
        click.echo(json.dumps(result.compiled.body, indent=2, ensure_ascii=False))
    else:
        click.echo(result.render(full_vectors=full_vectors))
