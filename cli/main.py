"""The ``ebr`` command.  Library errors become one clean message here, at one boundary."""

from __future__ import annotations

from typing import Any

import click

from ebr.cli.console_command import console_command
from ebr.cli.convert_model_command import convert_model_command
from ebr.cli.doctor_command import doctor_command
from ebr.cli.encode_command import encode_command
from ebr.cli.eval_command import eval_command
from ebr.cli.explain_command import explain_command
from ebr.cli.index_command import index_group
from ebr.cli.ingest_command import ingest_command
from ebr.cli.query_command import query_command
from ebr.cli.quickstart_command import quickstart_command
from ebr.cli.train_command import train_command
from ebr.cli.train_reranker_command import train_reranker_command
from ebr.cli.tune_command import tune_command
from ebr.errors import EbrError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EbrError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ebr")
def cli() -> None:
    """Embedding-based retrieval for OpenSearch: hybrid term + nearest-neighbour queries."""


cli.add_command(quickstart_command)
cli.add_command(explain_command)
cli.add_command(index_group)
cli.add_command(ingest_command)
cli.add_command(query_command)
cli.add_command(train_command)
cli.add_command(encode_command)
cli.add_command(convert_model_command)
cli.add_command(doctor_command)
cli.add_command(tune_command)
cli.add_command(eval_command)
cli.add_command(train_reranker_command)
cli.add_command(console_command)


def main() -> None:
    cli(auto_envvar_prefix="EBR")
