"""``ebr tune``: sweep ANN settings on a corpus's embeddings against exact search (EBR §4.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ebr.errors import TuningError
from ebr.tuning.recommend import DEFAULT_TARGETS, recommend
from ebr.tuning.report import plot, recommendation_lines, table_lines, to_json
from ebr.tuning.sources import TuningData, given_queries, hold_out, read_ground_truth, read_matrix
from ebr.tuning.sweep import Codes, SweepSettings, sweep

#: Queries held out of the base when no queries file is given (full, --quick).
HELD_OUT = (1000, 200)
JSON_FILE = "tune.json"
PLOT_FILE = "tune.png"


def _numbers(kind: type[int] | type[float]) -> Any:
    """A click callback reading repeated, comma-separated numbers into one sorted tuple."""
    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
        try:
            return tuple(sorted({kind(v) for value in values for v in value.split(",") if v}))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {kind.__name__}s; got "
                                     f"{', '.join(values)!r}") from None
    return parse


@click.command("tune")
@click.argument("source")
@click.option("--index", help="The OpenSearch index, when SOURCE is a cluster URL.")
@click.option("--key", help="The embedding key (needed when the index has several).")
@click.option("--queries", "queries_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Query vectors (.npy/.npz); default: rows held out of SOURCE.")
@click.option("--ground-truth", "truth_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Reference neighbour ids (queries x k .npy), e.g. another metric's exact "
                   "search; reported beside recall against exact cosine search.")
@click.option("--num-queries", type=click.IntRange(1),
              help=f"Rows held out as queries (default {HELD_OUT[0]}, --quick {HELD_OUT[1]}).")
@click.option("--nlist", multiple=True, callback=_numbers(int),
              help="Coarse clusters to try, comma-separated (default: around sqrt(rows)).")
@click.option("--nprobe", multiple=True, callback=_numbers(int),
              help="Clusters probed per query (default 1,2,4,..,256; --quick to 32).")
@click.option("--pq-bytes", multiple=True, callback=_numbers(int),
              help="PQ code sizes (bytes = sub-quantizers) to try besides exact distances "
                   "(default d/16,d/8,d/4,d/2; --quick d/4).")
@click.option("--opq/--no-opq", default=True, show_default=True,
              help="Also try each PQ size after an OPQ rotation (EBR: always try OPQ).")
@click.option("--radius", multiple=True, callback=_numbers(float),
              help="Cosine radii for radius mode (default: the median distances of the "
                   "10th and 100th neighbours).")
@click.option("--target", multiple=True, callback=_numbers(float),
              help="Shares of exact recall to recommend settings for (default 0.9,0.95,0.99).")
@click.option("--quick", is_flag=True,
              help="A reduced sweep: one nlist, nprobe to 32, d/4 PQ bytes, fewer queries.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help=f"Directory for {JSON_FILE} and {PLOT_FILE} (created if missing).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def tune_command(source: str, index: str | None, key: str | None, queries_path: Path | None,
                 truth_path: Path | None, num_queries: int | None, nlist: tuple[int, ...],
                 nprobe: tuple[int, ...], pq_bytes: tuple[int, ...], opq: bool,
                 radius: tuple[float, ...], target: tuple[float, ...], quick: bool, seed: int,
                 output: Path, quiet: bool) -> None:
    """Sweep coarse clusters (nlist), nprobe, PQ bytes and OPQ on the embeddings of SOURCE
    (an .npy matrix, an .npz from `ebr encode`, a local index directory, or an OpenSearch
    URL with --index) against exact cosine search; print recall against documents
    scanned and the cheapest settings keeping each share of exact recall; write
    tune.json and tune.png to --output."""
    if truth_path is not None and queries_path is None:
        raise click.UsageError("--ground-truth needs --queries: its ids are rows of SOURCE for "
                               "those queries")
    if any(not 0 < t <= 1 for t in target):
        raise click.BadParameter("targets are shares of exact recall, in (0, 1]",
                                 param_hint="--target")
    vectors, described = _read_source(source, index, key)
    data = _data(vectors, queries_path, truth_path,
                 num_queries or HELD_OUT[quick], seed)
    settings = _settings(data, quick, opq, nlist, nprobe, pq_bytes, radius, seed)
    result = sweep(data, settings, progress=not quiet)
    points = recommend(result, target or DEFAULT_TARGETS)
    output.mkdir(parents=True, exist_ok=True)
    (output / JSON_FILE).write_text(json.dumps(to_json(result, points, described), indent=1) + "\n")
    plot(result, output / PLOT_FILE)
    click.echo(f"{result.documents:,} documents x {result.dimension}-d, {result.queries:,} "
               f"queries, cosine; {result.seconds:.1f} s")
    if result.exact_vs_truth:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in result.exact_vs_truth.items())
        click.echo(f"exact cosine search against the given ground truth: {figures}")
    for line in table_lines(result):
        click.echo(line)
    click.echo("\nrecommended (cheapest: fewest documents scanned, then fewest bytes):")
    for line in recommendation_lines(points):
        click.echo("  " + line)
    click.echo(f"wrote {output / JSON_FILE} and {output / PLOT_FILE}")


def _read_source(source: str, index: str | None, key: str | None
                 ) -> tuple[Any, dict[str, Any]]:
    path = Path(source.removeprefix("local:"))
    if source.startswith(("http://", "https://")) or path.is_dir():
        from ebr.cli.inputs import open_store

        with open_store(source, index, readonly=True) as store:
            keys = [k.name for k in store.schema.keys]
            if key is None and len(keys) != 1:
                raise click.UsageError(f"name the embedding key with --key: the index has "
                                       f"{', '.join(keys) or 'none'}")
            chosen = key or keys[0]
            if chosen not in keys:
                raise click.BadParameter(f"{chosen!r} is not an embedding key of the index "
                                         f"({', '.join(keys) or 'none'})", param_hint="--key")
            ids, vectors = store.all_vectors(chosen)
        if not ids:
            raise TuningError(f"{source}: no document has a {chosen!r} embedding yet")
        return vectors, {"index": index or str(path), "key": chosen}
    if not path.exists():
        raise click.BadParameter(f"{source} does not exist", param_hint="SOURCE")
    return read_matrix(path), {"file": path.name}


def _data(vectors: Any, queries: Path | None, truth: Path | None, held_out: int,
          seed: int) -> TuningData:
    if queries is None:
        return hold_out(vectors, held_out, seed)
    q = read_matrix(queries, "queries")
    gt = read_ground_truth(truth, len(q), len(vectors)) if truth is not None else None
    return given_queries(vectors, q, gt)


def _settings(data: TuningData, quick: bool, opq: bool, nlist: tuple[int, ...],
              nprobe: tuple[int, ...], pq_bytes: tuple[int, ...], radius: tuple[float, ...],
              seed: int) -> SweepSettings:
    rows, dimension = data.base.shape
    base = SweepSettings.default(rows, dimension, quick=quick, opq=opq)
    codes = base.codes if not pq_bytes else (Codes(),) + tuple(
        Codes(m, o) for m in pq_bytes if m for o in ((False, True) if opq else (False,)))
    settings = SweepSettings(nlist or base.nlists, nprobe or base.nprobes, codes, radius,
                             seed=seed, opq_iterations=base.opq_iterations)
    settings.check(rows, dimension)
    return settings
