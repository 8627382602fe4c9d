"""``ebr eval``: judged queries through query templates on a store, scored per path."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from ebr.cli.inputs import (
    cluster_options,
    key_value,
    load_reranker_option,
    open_store,
    query_encoders,
    reranker_option,
)
from ebr.evaluation.judgments import read_judgments
from ebr.evaluation.metrics import MIN_RELEVANCE, RELEVANT_AT, RetrievalReport
from ebr.evaluation.retrieval_paths import (
    KS,
    EvalPath,
    PathRun,
    SweepPoint,
    default_paths,
    has_radius_nn,
    radius_sweep,
    run_path,
    score,
)
from ebr.evaluation.trec import query_ids, write_qrels, write_run
from ebr.mappings.schema import Schema
from ebr.mappings.space import MAX_RADIUS, MIN_RADIUS
from ebr.mappings.text_analysis import WORD_ANALYZERS
from ebr.request.embedders import embedders_for
from ebr.request.searcher import DEFAULT_CANDIDATES, Searcher

_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def _text_namespace(schema: Schema, given: str | None) -> str:
    if given is not None:
        if schema.namespace(given) is None:
            raise click.BadParameter(f"the index has no namespace {given!r}", param_hint="--namespace")
        return given
    text = [ns.name for ns in schema.namespaces if ns.analyzer in WORD_ANALYZERS]
    if len(text) != 1:
        raise click.UsageError(f"the default paths match the query text in one namespace; the index "
                               f"has {len(text)} free-text namespaces ({', '.join(text) or 'none'}): "
                               "name it with --namespace, or give --path NAME=TEMPLATE")
    return text[0]


def _radii(value: str | None) -> list[float]:
    if not value:
        return []
    try:
        radii = [float(r) for r in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected radii like 0.3,0.5,0.7; got {value!r}",
                                 param_hint="--radius-sweep") from None
    bad = [r for r in radii if not MIN_RADIUS <= r <= MAX_RADIUS]
    if bad:
        raise click.BadParameter(f"radii must be between {MIN_RADIUS:g} and {MAX_RADIUS:g}; got {bad}",
                                 param_hint="--radius-sweep")
    return radii


def _paths(specs: tuple[str, ...]) -> list[EvalPath]:
    paths = [EvalPath(*key_value(s, "--path")) for s in specs]
    names = [p.name for p in paths]
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise click.BadParameter(f"a path name is a file name and a TREC run tag: letters, digits and "
                                 f"_ . + - only; got {', '.join(map(repr, bad))}", param_hint="--path")
    if len(set(names)) != len(names):
        raise click.BadParameter(f"path names must differ; got {', '.join(names)}", param_hint="--path")
    return paths


def _table(reports: dict[str, RetrievalReport], runs: dict[str, PathRun]) -> list[str]:
    columns = ["path", "queries", *next(iter(reports.values())).columns(), "failed"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join([name, str(r.queries), *(f"{v:.3f}" for v in r.values()),
                                 str(len(runs[name].failed))]) + " |" for name, r in reports.items()]
    return lines


def _sweep_table(points: list[SweepPoint]) -> list[str]:
    ks = list(points[0].recall)
    lines = ["| path | radius | mean matched | median matched | "
             + " | ".join(f"recall@{k}" for k in ks) + " |", "|---" * (4 + len(ks)) + "|"]
    lines += [f"| {p.path} | {p.radius:g} | {p.mean_matched:.1f} | {p.median_matched:g} | "
              + " | ".join(f"{p.recall[k]:.3f}" for k in ks) + " |" for p in points]
    return lines


def _report_json(paths: list[EvalPath], reports: dict[str, RetrievalReport], runs: dict[str, PathRun],
                 sweep: list[SweepPoint]) -> dict[str, Any]:
    out: dict[str, Any] = {"paths": {}}
    for p in paths:
        r = reports[p.name]
        out["paths"][p.name] = {"template": p.template, "reranked": p.rerank, "queries": r.queries,
                                **dict(zip(r.columns(), r.values(), strict=True)),
                                "failed": len(runs[p.name].failed)}
    out["radius_sweep"] = [dataclasses.asdict(s) for s in sweep]
    return out


@click.command("eval")
@click.argument("where", metavar="STORE")
@click.argument("judged", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--path", "path_specs", multiple=True, metavar="NAME=TEMPLATE",
              help="A retrieval path: a query template ($q the query text, $key the embedding "
                   "key) (repeatable; default: terms, nn and hybrid).")
@click.option("--namespace", help="The text namespace of the default paths' match (default: the "
                                  "index's only free-text namespace).")
@click.option("--radius", default=0.6, show_default=True, type=click.FloatRange(MIN_RADIUS, MAX_RADIUS),
              help="The default hybrid path's nn radius (choose it with --radius-sweep).")
@click.option("--nprobe", default=16, show_default=True, type=click.IntRange(1),
              help="The default hybrid path's clusters probed.")
@click.option("--model", "model_paths", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A model directory from `ebr train` (its query tower) or a sentence model directory "
                   "(ebr.encoders.serving.sentence_encoder) embeds the queries for its "
                   "key (repeatable: every key needs its model but one named *-trigrams, embedded by "
                   "the trigram projection).")
@click.option("--key", help="The embedding key $key stands for (default: the index's only key).")
@click.option("--candidates", default=DEFAULT_CANDIDATES, show_default=True, type=click.IntRange(1),
              help="First-stage hits a reranker reorders.")
@reranker_option("Also run the last path (by default the hybrid) through this reranker, as "
                 "NAME+reranker")
@click.option("--radius-sweep", "sweep", metavar="R1,R2,..",
              help="Run each path holding a radius nn at these radii: documents matched against "
                   "recall (Que2Search 6.3).")
@click.option("--relevant-at", default=RELEVANT_AT, show_default=True, type=float,
              help="The grade from which a document counts as relevant.")
@click.option("--min-grade", default=MIN_RELEVANCE, show_default=True, type=float,
              help="The lowest grade (ndcg's gain is grade - min grade).")
@click.option("--format", "judged_format", type=click.Choice(["jsonl", "tsv", "csv"]),
              help="The judged file's format (default: from its suffix).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the figures as JSON to this file ('-' for stdout, instead of the tables).")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write a TREC run file per path (NAME.run), qrels.txt and queries.tsv here.")
@click.option("--index", help="The OpenSearch index, when STORE is a cluster URL.")
@cluster_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_command(where: str, judged: Path, path_specs: tuple[str, ...], namespace: str | None,
                 radius: float, nprobe: int, model_paths: tuple[Path, ...], key: str | None,
                 candidates: int, reranker_spec: str | None, sweep: str | None,
                 relevant_at: float, min_grade: float,
                 judged_format: str | None, json_path: Path | None, runs_dir: Path | None,
                 index: str | None, ca_certs: str | None, user: str | None,
                 quiet: bool) -> None:
    """Run the judged queries of JUDGED (TSV or CSV with a header naming query, doc_id and
    grade, or JSONL objects with those fields) through retrieval paths on STORE (a local
    index directory, or a cluster URL with --index) and report recall@10/100/1000, ndcg@10
    and mrr@10 per path, each query retrieving 1000 hits.

    \b
    Example (after `ebr quickstart`; judged.tsv: query, doc_id, grade):
      ebr eval ./ebr-quickstart judged.tsv --namespace name --radius-sweep 0.2,0.3,0.4 \\
        --path 'us=(and (term country:us) (or (match name $q) (nn $key :k 100)))'
    """
    from tqdm import tqdm  # type: ignore[import-untyped]

    radii = _radii(sweep)
    judgments = read_judgments(judged, format=judged_format)
    qrels, queries = judgments.qrels, judgments.queries
    if not any(g >= relevant_at for judged_grades in qrels.values() for g in judged_grades.values()):
        raise click.UsageError(f"no judged query has a document graded >= {relevant_at:g} (relevant): "
                               "nothing to measure; set --relevant-at for your grades")
    with open_store(where, index, readonly=True, ca_certs=ca_certs, user=user) as store:
        judgments.check_ids(store)
        models = query_encoders(model_paths)
        reranker = load_reranker_option(reranker_spec, store.schema)
        searcher = Searcher(store, embedders_for(store.schema, models), candidates=candidates,
                            key=key, reranker=reranker)
        paths = _paths(path_specs) or default_paths(_text_namespace(store.schema, namespace),
                                                    radius=radius, nprobe=nprobe, reranked=False)
        if reranker is not None:  # the last path (the default hybrid) again, reranked
            paths.append(EvalPath(f"{paths[-1].name}+reranker", paths[-1].template, rerank=True))
        swept = [p for p in paths if radii and not p.rerank and has_radius_nn(searcher, p)]
        with tqdm(total=len(queries) * (len(paths) + len(swept) * len(radii)), unit="query",
                  disable=quiet, desc="eval", dynamic_ncols=True, file=sys.stderr) as bar:
            runs = {p.name: run_path(searcher, p, queries, depth=max(KS), progress=bar.update)
                    for p in paths}
            points = [point for p in swept
                      for point in radius_sweep(searcher, p, qrels, radii, relevant_at=relevant_at,
                                                min_relevance=min_grade, progress=bar.update)]
    reports = {n: score(r, qrels, relevant_at=relevant_at, min_relevance=min_grade) for n, r in runs.items()}
    if runs_dir is not None:
        runs_dir.mkdir(parents=True, exist_ok=True)
        qids = query_ids(queries)
        write_qrels(runs_dir, qrels, qids)
        for name, run in runs.items():
            write_run(runs_dir / f"{name}.run", name, run.ranked, run.scores, qids)
    for run in runs.values():
        for query, message in list(run.failed.items())[:3]:
            click.echo(f"{run.path.name}: query {query!r} failed: {message}", err=True)
    report = _report_json(paths, reports, runs, points)
    if json_path is not None:
        text = json.dumps(report, indent=2)
        if str(json_path) == "-":
            click.echo(text)
            return
        json_path.write_text(text + "\n", encoding="utf-8")
    click.echo("\n".join(_table(reports, runs)))
    if points:
        click.echo("\nradius sweep (first stage)")
        click.echo("\n".join(_sweep_table(points)))
