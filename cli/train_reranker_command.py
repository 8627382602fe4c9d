"""``ebr train-reranker``: LightGBM LambdaRank trained on judged queries' candidates, on the
served index and, cross-fitted, on fold indexes of encoders that never trained on them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ebr.cli.inputs import cluster_options, is_cluster, open_store, query_encoders
from ebr.evaluation.judgments import Judgments, read_judgments
from ebr.evaluation.reranker_training import fold_groups, judged_searches
from ebr.request.embedders import embedders_for
from ebr.request.searcher import DEFAULT_CANDIDATES, Searcher

if TYPE_CHECKING:
    from ebr.ranking.feature_set import FeatureSet
    from ebr.ranking.lambdarank import GradedFeatures

#: ``--fold STORE MODEL JUDGED``.
Fold = tuple[str, Path, Path]


@click.command("train-reranker")
@click.argument("where", metavar="STORE")
@click.argument("judged", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--path", "template", required=True, metavar="TEMPLATE",
              help="The query template whose first-stage candidates the reranker will reorder "
                   "($q the query text, $key the embedding key): the one you will serve.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The reranker file to write (customarily MODEL/reranker.json).")
@click.option("--model", "model_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train`: its query tower embeds the queries.")
@click.option("--key", help="The embedding key $key stands for (default: the index's only key).")
@click.option("--fold", "folds", multiple=True, metavar="STORE MODEL JUDGED",
              type=click.Tuple([str, click.Path(exists=True, file_okay=False, path_type=Path),
                                click.Path(exists=True, dir_okay=False, path_type=Path)]),
              help="Cross-fit: the queries of JUDGED, which MODEL never trained on, retrieved "
                   "on STORE (a local index of the same documents and namespaces under MODEL's "
                   "key); MODEL's cosine stands for the served key's.  Repeatable, e.g. one "
                   "fold per half of the judged queries, each with the other half's encoder.")
@click.option("--candidates", default=DEFAULT_CANDIDATES, show_default=True,
              type=click.IntRange(1), help="First-stage candidates per query (as served).")
@click.option("--format", "judged_format", type=click.Choice(["jsonl", "tsv", "csv"]),
              help="The judged files' format (default: from each one's suffix).")
@click.option("--index", help="The OpenSearch index, when STORE is a cluster URL.")
@cluster_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def train_reranker_command(where: str, judged: Path | None, template: str, output: Path,
                           model_paths: tuple[Path, ...], key: str | None,
                           folds: tuple[Fold, ...], candidates: int,
                           judged_format: str | None, index: str | None, ca_certs: str | None,
                           user: str | None, quiet: bool) -> None:
    """Train a LambdaRank reranker for STORE on the judged queries of JUDGED (as `ebr eval`
    reads them): each query's candidates retrieved through --path on STORE, graded by the file
    (unjudged candidates grade 0), saved with its feature list.  With --fold, also (or only)
    on each fold's queries, retrieved on the fold's index.  Serve or evaluate it with
    `ebr eval --reranker FILE`."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    from ebr.ranking.feature_set import FeatureSet
    from ebr.ranking.lambdarank import fit_lambdarank, graded_features

    if judged is None and not folds:
        raise click.UsageError("give JUDGED (queries the model never trained on), --fold, or both")
    for fold_store, _, _ in folds:
        if is_cluster(fold_store):
            raise click.UsageError(f"--fold {fold_store}: a fold must be a local index (its "
                                   "candidates only train the reranker)")
    main = read_judgments(judged, format=judged_format) if judged is not None else None
    fold_judgments = [read_judgments(path, format=judged_format) for _, _, path in folds]
    total = sum(len(j.qrels) for j in (main, *fold_judgments) if j is not None)
    failed: dict[str, str] = {}
    groups: list[GradedFeatures] = []
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store, \
            tqdm(total=total, unit="query", disable=quiet, desc="candidates",
                 dynamic_ncols=True, file=sys.stderr) as bar:
        target = FeatureSet.for_schema(store.schema)
        if main is not None:
            main.check_ids(store)
            searcher = Searcher(store, embedders_for(store.schema, query_encoders(model_paths)),
                                key=key)
            groups.extend(graded_features(judged_searches(
                searcher, template, main.qrels, candidates=candidates, progress=bar.update,
                failed=failed), store, target))
        served_key = Searcher(store, key=key).key
        for (fold_store, fold_model, _), judgments in zip(folds, fold_judgments, strict=True):
            groups.extend(_fold(fold_store, fold_model, model_paths, judgments, template, target,
                                served_key, candidates, bar.update, failed))
    reranker = fit_lambdarank(groups, target)
    reranker.save(output)
    for query, message in list(failed.items())[:3]:
        click.echo(f"query {query!r} left out: {message}", err=True)
    folded = f", {len(folds)} folds" if folds else ""
    click.echo(f"trained on {len(groups)} queries ({sum(len(g.grades) for g in groups):,} "
               f"candidates{folded}; {len(failed)} left out); wrote {output}")


def _fold(where: str, model: Path, served_models: tuple[Path, ...], judgments: Judgments,
          template: str, target: FeatureSet, key: str | None, candidates: int,
          progress: Callable[[], object], failed: dict[str, str]) -> list[GradedFeatures]:
    """One fold's graded features, as rows of ``target`` (the served index's features); the
    fold's other keys (a pretrained sentence model's) are embedded by the served ``--model``
    of the same key."""
    if key is None:
        raise click.UsageError("--fold: the served index has several embedding keys; name the "
                               "one the folds' encoders stand for with --key")
    with open_store(where, None, readonly=True) as store:
        judgments.check_ids(store)
        fold = query_encoders((model,))
        searcher = Searcher(store, embedders_for(store.schema,
                                                 {**query_encoders(served_models), **fold}),
                            key=next(iter(fold)))
        return list(fold_groups(searcher, template, judgments.qrels, target, key,
                                candidates=candidates, progress=progress, failed=failed))
