"""``ebr index create|stats|check|upgrade|drop``: manage a local index directory, or inspect and drop
an index on an OpenSearch cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from ebr.cli import inputs
from ebr.cli.inputs import cluster_options, is_cluster, open_store, signed_in
from ebr.mappings.schema import Schema
from ebr.stores.local import LocalStore
from ebr.stores.local.database import FORMAT
from ebr.stores.opensearch.client import shown
from ebr.stores.opensearch.store import OpenSearchStore

_INDEX_PATH = click.Path(file_okay=False, path_type=Path)
_INDEX_OPTION = click.option("--index", help="The index, when STORE is an OpenSearch cluster URL.")


@click.group("index")
def index_group() -> None:
    """Create, inspect, check, upgrade and drop indexes: local ones (a directory each), or on a
    cluster (stats, drop)."""


@index_group.command("create")
@click.argument("path", type=_INDEX_PATH)
@click.option("--schema", "schema_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Index schema JSON (namespaces, embedding keys).")
def create_command(path: Path, schema_path: Path) -> None:
    """Create an empty local index in PATH (a missing or empty directory)."""
    schema = Schema.load(schema_path)
    with LocalStore.create(path, schema) as store:
        keys = ", ".join(f"{k.name} ({k.dimension}-d)" for k in store.schema.keys) or "none"
    click.echo(f"created index {schema.index!r} in {path}; embedding keys: {keys}")


def _cluster_details(store: OpenSearchStore) -> dict[str, Any]:
    """What a cluster index has beyond the common stats: engine, k-NN models, PQ/OPQ
    tables, encoder fingerprints."""
    return {"engine": store.engine, "server": str(store.version),
            "knn_models": dict(store.knn_models),
            "untrained_models": sorted(store.untrained_models),
            "pq": {k: {"m": p.m, "opq": p.rotation is not None} for k, p in store.products.items()},
            "fingerprints": dict(store.fingerprints)}


@index_group.command("stats")
@click.argument("where", metavar="STORE")
@_INDEX_OPTION
@cluster_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats_command(where: str, index: str | None, ca_certs: str | None, user: str | None,
                  as_json: bool) -> None:
    """What the index in STORE holds: documents, embeddings, terms, quantizers, disk.  STORE
    is a local index directory (``local:PATH`` or ``PATH``) or a cluster URL with --index."""
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
        stats = store.stats()
        name = store.schema.index if isinstance(store, LocalStore) else store.index
        details = _cluster_details(store) if isinstance(store, OpenSearchStore) else {}
    place = f"on {shown(where)}" if details else f"in {where.removeprefix('local:')}"
    if as_json:
        click.echo(json.dumps({"index": name, **dataclasses.asdict(stats), **details}, indent=2))
        return
    click.echo(f"index {name!r} {place}")
    if details:
        click.echo(f"  engine     {details['engine']} (OpenSearch {details['server']})")
    click.echo(f"  documents  {stats.documents:,}")
    click.echo(f"  terms      {stats.terms:,} distinct (cluster terms included)")
    for key, count in stats.embeddings.items():
        nlist = stats.quantizers.get(key)
        trained = f"coarse quantizer nlist {nlist}" if nlist else "quantizer not trained"
        extra = ""
        if key in details.get("pq", {}):
            pq = details["pq"][key]
            extra += f", PQ m {pq['m']}{' with OPQ' if pq['opq'] else ''}"
        if key in details.get("knn_models", {}):
            extra += f", k-NN model {details['knn_models'][key]}"
        if key in details.get("untrained_models", ()):
            extra += ", k-NN model not trained"
        if key in details.get("fingerprints", {}):
            extra += f", encoder {details['fingerprints'][key][:12]}"
        click.echo(f"  {key}: {count:,} embeddings, {trained}{extra}")
    if stats.disk_bytes is not None:
        click.echo(f"  disk       {stats.disk_bytes / 1e6:.1f} MB")


@index_group.command("check")
@click.argument("path", type=_INDEX_PATH)
def check_command(path: Path) -> None:
    """Check the index in PATH fully, read-only: SQLite's integrity check, every stored row
    against its checksum, every source.  Exit 1 naming what is damaged."""
    stats = LocalStore.check(path)
    click.echo(f"ok: the index in {path} is sound ({stats.documents:,} documents, "
               f"{sum(stats.embeddings.values()):,} embeddings checked)")


@index_group.command("upgrade")
@click.argument("path", type=_INDEX_PATH)
def upgrade_command(path: Path) -> None:
    """Upgrade the local index in PATH, written by an older ebr, to this ebr's format in
    place (a transaction per format step: interrupted, it leaves the index as it was or one
    step on, which the next run or writable open finishes).  Needs PATH
    writable and no other writer; every other command opens an index read-only and refuses
    an older format."""
    was = LocalStore.upgrade(path)
    if was is None:
        click.echo(f"the index in {path} is already in format {FORMAT}: nothing to do")
    else:
        click.echo(f"upgraded the index in {path} from format {was} to format {FORMAT}")


@index_group.command("drop")
@click.argument("where", metavar="STORE")
@_INDEX_OPTION
@cluster_options
@click.option("--yes", "-y", is_flag=True, help="Drop without asking.")
def drop_command(where: str, index: str | None, ca_certs: str | None, user: str | None,
                 yes: bool) -> None:
    """Delete the index in STORE.  A local index directory loses its files (the directory
    too if nothing else is in it); an index on a cluster (URL with --index) goes with its
    metadata and the k-NN models ebr trained for it.  Asks first unless --yes; without a
    terminal to ask on, refuses unless --yes."""
    cluster = is_cluster(where)
    if cluster and not index:
        raise click.UsageError(f"{shown(where)} is an OpenSearch cluster: name the index with "
                               "--index")
    what = f"index {index!r} on {shown(where)}" if cluster else f"the index in {where}"
    if not yes:
        if not inputs.interactive():  # looked up here: tests stand in for a terminal
            raise click.ClickException(f"not dropping {what}: stdin is not a terminal to "
                                       "confirm on; pass --yes to drop without asking")
        click.confirm(f"Drop {what}?", abort=True, err=True)
    if cluster:
        assert index is not None
        signed_in(lambda **connection: OpenSearchStore.drop(where, index, **connection),
                  user, ca_certs)
    else:
        LocalStore.drop(Path(where.removeprefix("local:")))
    click.echo(f"dropped {what}")
