"""``ebr console``: the interactive query console on a local index or an OpenSearch index
(the session and the prompt are :mod:`ebr.console`)."""

from __future__ import annotations

from pathlib import Path

import click

from ebr.cli.inputs import (
    cluster_options,
    load_reranker_option,
    open_store,
    query_encoders,
    reranker_option,
)
from ebr.console.session import Session
from ebr.console.terminal import default_history, run
from ebr.request.embedders import embedders_for
from ebr.request.searcher import Searcher
from ebr.stores.local import LocalStore


@click.command("console")
@click.argument("where", metavar="STORE")
@click.option("--index", help="The OpenSearch index, when STORE is a cluster URL.")
@cluster_options
@reranker_option("Rerank with this (`:rerank on|off` switches it)")
@click.option("--model", "model_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train`: :text is embedded for its key with its "
                   "query tower (repeatable: every key needs its model but one named *-trigrams, embedded "
                   "by the trigram projection).")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path),
              help="The history file (default: console_history in the user's data directory).")
def console_command(where: str, index: str | None, ca_certs: str | None, user: str | None,
                    reranker_spec: str | None, model_paths: tuple[Path, ...],
                    history: Path | None) -> None:
    """Query STORE interactively: a local index directory (``local:PATH`` or ``PATH``) or an
    OpenSearch cluster URL with --index.  Type a query, or :help for the commands (request
    text and context, page size, the plan, the OpenSearch request, explanations, timings).

    \b
    Example (after `ebr quickstart`):
      ebr console ./ebr-quickstart --model ./ebr-quickstart-model
      ebr> :text "san fransisco"
      ebr> (or (match name $q)
      ...>     (nn $key :radius 0.3))
    """
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
        models = query_encoders(model_paths)
        searcher = Searcher(store, embedders_for(store.schema, models),
                            reranker=load_reranker_option(reranker_spec, store.schema))
        if isinstance(store, LocalStore):
            session = Session(searcher)
        else:
            session = Session(searcher, version=store.version, index=store.index)
        run(session, history or default_history())
