"""``ebr index create|stats|check|drop``: manage a local index directory."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from ebr.mappings.schema import Schema
from ebr.stores.local import LocalStore

_INDEX_PATH = click.Path(file_okay=False, path_type=Path)


def _interactive() -> bool:
    """Whether a person can answer a confirmation prompt (a module function so tests can
    stand in for a terminal)."""
    return sys.stdin.isatty()


@click.group("index")
def index_group() -> None:
    """Create, inspect, check and drop local indexes (one directory each)."""


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


@index_group.command("stats")
@click.argument("path", type=_INDEX_PATH)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats_command(path: Path, as_json: bool) -> None:
    """What the index in PATH holds: documents, embeddings, terms, quantizers, disk."""
    with LocalStore.open(path, readonly=True) as store:
        stats = store.stats()
        name = store.schema.index
    if as_json:
        click.echo(json.dumps({"index": name, **dataclasses.asdict(stats)}, indent=2))
        return
    click.echo(f"index {name!r} in {path}")
    click.echo(f"  documents  {stats.documents:,}")
    click.echo(f"  terms      {stats.terms:,} distinct (cluster terms included)")
    for key, count in stats.embeddings.items():
        nlist = stats.quantizers.get(key)
        trained = f"coarse quantizer nlist {nlist}" if nlist else "quantizer not trained"
        click.echo(f"  {key}: {count:,} embeddings, {trained}")
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


@index_group.command("drop")
@click.argument("path", type=_INDEX_PATH)
@click.option("--yes", "-y", is_flag=True, help="Drop without asking.")
def drop_command(path: Path, yes: bool) -> None:
    """Delete the local index in PATH (its files; the directory too if nothing else is in
    it).  Asks first unless --yes; without a terminal to ask on, refuses unless --yes."""
    if not yes:
        if not _interactive():
            raise click.ClickException(f"not dropping {path}: stdin is not a terminal to "
                                       "confirm on; pass --yes to drop without asking")
        click.confirm(f"Drop the index in {path}?", abort=True, err=True)
    LocalStore.drop(path)
    click.echo(f"dropped the index in {path}")
