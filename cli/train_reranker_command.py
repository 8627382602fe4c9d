"""``ebr train-reranker``: LightGBM LambdaRank trained on judged queries' candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ebr.cli.inputs import cluster_options, open_store, query_encoders
from ebr.evaluation.judgments import read_judgments
from ebr.evaluation.reranker_training import judged_searches
from ebr.request.embedders import embedders_for
from ebr.request.searcher import DEFAULT_CANDIDATES, Searcher


@click.command("train-reranker")
@click.argument("where", metavar="STORE")
@click.argument("judged", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--path", "template", required=True, metavar="TEMPLATE",
              help="The query template whose first-stage candidates the reranker will reorder "
                   "($q the query text, $key the embedding key): the one you will serve.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The reranker file to write (customarily MODEL/reranker.json).")
@click.option("--model", "model_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train`: its query tower embeds the queries.")
@click.option("--key", help="The embedding key $key stands for (default: the index's only key).")
@click.option("--candidates", default=DEFAULT_CANDIDATES, show_default=True,
              type=click.IntRange(1), help="First-stage candidates per query (as served).")
@click.option("--format", "judged_format", type=click.Choice(["jsonl", "tsv", "csv"]),
              help="The judged file's format (default: from its suffix).")
@click.option("--index", help="The OpenSearch index, when STORE is a cluster URL.")
@cluster_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_reranker_command(where: str, judged: Path, template: str, output: Path,
                           model_paths: tuple[Path, ...], key: str | None, candidates: int,
                           judged_format: str | None, index: str | None, ca_certs: str | None,
                           user: str | None, quiet: bool) -> None:
    """Train a LambdaRank reranker on the judged queries of JUDGED (as `ebr eval` reads
    them): each query's candidates retrieved through --path on STORE, graded by the file
    (unjudged candidates grade 0), saved with its feature list.  Serve or evaluate it with
    `ebr eval --reranker FILE`."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from ebr.ranking.lambdarank import train_lambdarank

    judgments = read_judgments(judged, format=judged_format)
    failed: dict[str, str] = {}
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
        judgments.check_ids(store)
        models = query_encoders(model_paths)
        searcher = Searcher(store, embedders_for(store.schema, models), key=key)
        with tqdm(total=len(judgments.qrels), unit="query", disable=quiet, desc="candidates",
                  dynamic_ncols=True, file=sys.stderr) as bar:
            groups = list(judged_searches(searcher, template, judgments.qrels,
                                          candidates=candidates, progress=bar.update,
                                          failed=failed))
        reranker = train_lambdarank(groups, store)
    reranker.save(output)
    for query, message in list(failed.items())[:3]:
        click.echo(f"query {query!r} left out: {message}", err=True)
    click.echo(f"trained on {len(groups)} queries ({sum(len(g.hits) for g in groups):,} "
               f"candidates; {len(failed)} left out); wrote {output}")
