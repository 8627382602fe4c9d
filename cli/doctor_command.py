"""``ebr doctor``: check that ebr works on an OpenSearch cluster, one verdict per check."""

from __future__ import annotations

from typing import Any

import click

from ebr.cli.inputs import cluster_options, signed_in
from ebr.errors import EbrError
from ebr.stores.opensearch.client import AuthenticationFailed, cluster_errors, connect
from ebr.stores.opensearch.doctor import run_checks


def _signed_in(url: str, user: str | None, ca_certs: str | None) -> dict[str, Any]:
    """Connection settings the cluster accepts (asked for again after a 401 on a terminal);
    any other failure is left for the checks to report."""

    def probe(**connection: Any) -> dict[str, Any]:
        client = connect(url, **connection)
        try:
            with cluster_errors(client, "sign in"):
                client.cluster.health()
        except AuthenticationFailed:
            raise
        except EbrError:
            pass
        finally:
            client.close()
        return connection

    return signed_in(probe, user, ca_certs)


@click.command("doctor")
@click.option("--store", "url", required=True, metavar="URL",
              help="The cluster, http(s)://host:port.")
@click.option("--engine", type=click.Choice(["lucene", "faiss"]), default="lucene",
              show_default=True,
              help="k-NN engine to try. faiss only on clusters with the k-NN native libraries: "
                   "without them the first document written to a Faiss field kills the node.")
@click.option("--shards", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Shards of the temporary index.")
@cluster_options
def doctor_command(url: str, engine: str, shards: int, ca_certs: str | None,
                   user: str | None) -> None:
    """Check the cluster at URL: the server and its version, the k-NN plugin, painless
    cosineSimilarity, then hybrid queries through a temporary index against the local store
    (the index is deleted after).  Exits 1 if any check fails."""
    failed = 0
    for check in run_checks(url, engine=engine, shards=shards,  # type: ignore[arg-type]
                            **_signed_in(url, user, ca_certs)):
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"{mark} {check.name}: {check.detail}")
        failed += not check.ok
    if failed:
        raise click.exceptions.Exit(1)
    click.echo("ebr works on this cluster")
