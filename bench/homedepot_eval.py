"""Every retrieval path through ``ebr eval`` on the Home Depot validation split, the hybrid
reranked by LambdaRank trained on the train split, beside the baselines measured in the same
run, and the request API's latency per request.

1. The 54,667 titles go into a local store through ``ebr ingest`` with a trained model's
   document tower (``--model``: a model directory, e.g. from
   ``python bench/homedepot_train.py --no-baselines --save DIR``), under an IVF-PQ key
   (``NLIST`` clusters, PQ codes of d/4 bytes) and an ``english``-analyzed title namespace;
   ``--work DIR`` keeps the index for the next run.  By default (``--no-minilm`` to leave it
   out) a second key holds all-MiniLM-L6-v2's title vectors, given with the records (EBR's
   ensemble of embeddings): its cosine to the request, embedded by the same pretrained model
   (a sentence model directory, ``WORK/minilm``, passed as a second ``--model``), is one more
   reranker feature, on the cross-fit's folds as on the served index.
2. LambdaRank is trained on the train split's judged queries, on the first-stage hits of the
   training pool (BM25's top ``--train-pool`` or nn's top ``--train-pool`` or, with the second
   key, MiniLM's nn top ``--train-pool``: :func:`training_pool`; all of them) for each query,
   as serving retrieves them, from an encoder that did not train on the query: on the
   queries an encoder trained on, its cosine ranks the relevant titles first almost always
   (recall@100 0.999 against 0.76 on queries it never saw), so a reranker trained there learns
   to trust the cosine alone and gains nothing from the other features.  By default every train
   query, cross-fitted (``homedepot_cross_fit.py``: two encoders trained as the model was, each
   on half the queries, retrieve the other half's candidates; kept in ``--work``);
   ``--reranker-training held-out``: ``ebr train-reranker`` on the model's own held-out slice
   (the queries its training held out to stop early, by the trainer's own split:
   :func:`reranker_queries`).
3. ``ebr eval`` runs the validation judgments (written as a judged TSV) through the paths:
   terms only (BM25 top 1000), nn only (top-K, IVF, ``--nprobe``), hybrid with a radius nn
   (``--radius``), the pool (BM25's top ``--pool`` or nn's top ``--pool`` or MiniLM's nn top
   ``--minilm-pool``; ``--candidates`` of them), and the pool reranked, with a radius sweep
   (``--sweep``); its table is printed as is.  The pool reranked is wider than the one the
   reranker trains on (a third of the rows to train on): on a held-out slice of the train split
   (611 queries, the cross-fit as here), this reranker on the 1000 pool against the terms 300 |
   nn 300 pool reranked by one trained there: ndcg@10 +0.0067 (paired s.e. 0.0030),
   recall@1000 +0.039 (0.006), recall@100 +0.004 (0.004, noise).
4. BM25, all-MiniLM-L6-v2 and their RRF (``homedepot_baselines.py``) on the same queries.
5. The request API: one :class:`ebr.Searcher` (the model's query tower, a cold cache: every
   query distinct), the pool path, 100 candidates reranked, 10 hits, one request at a time
   on one thread; p50/p99 of the whole request and of each phase.

Needs the ``bench`` extra for the baselines (``--no-baselines`` to skip them) and the
``rerank`` extra.  ``--latency-only`` measures step 5 alone, on the index a run before left in
``--work`` and its reranker (or ``--reranker FILE``).

    python bench/homedepot_eval.py --model DIR [--data DIR] [--work DIR] [--nprobe 64]
        [--radius 0.6] [--sweep 0.5,0.6,0.7] [--pool 1000] [--minilm-pool 1000]
        [--train-pool 300] [--candidates N]
        [--reranker-training cross-fit|held-out] [--no-minilm] [--latency-queries 1000] [--no-baselines]
        [--latency-only [--reranker FILE]]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from homedepot_baselines import (  # noqa: E402
    MINILM_NAME,
    baseline_runs,
    corpus_embeddings,
    markdown_table,
    torch_threads,
)
from homedepot_cross_fit import cross_fitted_reranker  # noqa: E402
from homedepot_data import HomeDepot, add_data_argument, load_or_exit  # noqa: E402
from homedepot_pool import MINILM_KEY, TEXT, pool_size, pool_template, training_pool  # noqa: E402

from ebr.cli.main import cli  # noqa: E402
from ebr.encoders.serving.model_files import read_model_info  # noqa: E402
from ebr.encoders.serving.sentence_encoder import SentenceEncoder, is_sentence_model_directory  # noqa: E402
from ebr.encoders.training.data import in_validation  # noqa: E402
from ebr.evaluation.metrics import evaluate_rankings  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402
from ebr.ranking.lambdarank import load_reranker  # noqa: E402
from ebr.request import ModelEmbedder, Searcher  # noqa: E402
from ebr.request.embedders import TextEmbedder  # noqa: E402
from ebr.request.searcher import PHASES  # noqa: E402
from ebr.stores.local import LocalStore  # noqa: E402
from ebr.stores.local.database import DB_FILE  # noqa: E402

NLIST = 256  # about sqrt(54,667), as homedepot_train.py
#: The k of each branch of the reranked path (``--pool``, ``--minilm-pool``): 3,000
#: candidates, about 2,050 distinct titles per query, reranked in about 130 ms.
POOL = 1000
#: The k of each branch of the pool the reranker trains on (``--train-pool``).  On the held-out
#: train slice MiniLM's branch in it (terms 300 | nn 300 | MiniLM 300 against terms 300 |
#: nn 300) raised the reranked ndcg@10 by 0.0064 (paired s.e. 0.0030) and recall@1000 by 0.020
#: (0.005); recall@100 moved within the noise.
TRAIN_POOL = 300


def minilm_encoder(work: Path) -> SentenceEncoder:
    """all-MiniLM-L6-v2 as the encoder of :data:`MINILM_KEY`, saved in ``work`` as a sentence
    model directory (what ``ebr eval --model`` reads; reused when there)."""
    directory = work / "minilm"
    if is_sentence_model_directory(directory):
        return SentenceEncoder.load(directory, field=TEXT)
    from homedepot_baselines import load_minilm

    encoder = SentenceEncoder(MINILM_KEY, load_minilm(), field=TEXT)
    encoder.save(directory)
    return encoder


def _ebr(*args: str) -> None:
    """An ``ebr`` command in this process (its errors end the script with their message)."""
    cli.main(list(args), standalone_mode=False)


def build_index(data: HomeDepot, model: Path, work: Path,
                minilm: SentenceEncoder | None = None) -> Path:
    """The titles in a local IVF-PQ index under ``work`` (reused when already there); with
    ``minilm``, a second key holds its title vectors (exact, given with the records: computed
    once and cached by ``homedepot_baselines.py``)."""
    index = work / ("index-minilm" if minilm else "index")
    if (index / DB_FILE).exists():
        LocalStore.open(index).close()  # upgrades an index an older ebr wrote (else a no-op)
        print(f"index: reusing {index}")
        return index
    info = read_model_info(model)
    key, dim = info.key, info.output_dim
    keys = [EmbeddingKey(key, dim, CoarseQuantizerSpec(nlist=NLIST, pq_m=dim // 4))]
    vectors = None
    if minilm is not None:
        keys.append(EmbeddingKey(minilm.key, minilm.dimension, CoarseQuantizerSpec(nlist=NLIST)))
        vectors = corpus_embeddings(minilm.model, data.titles, name=MINILM_NAME)
    schema = Schema.create("homedepot", (Namespace(TEXT, "english"),), tuple(keys))
    (work / "schema.json").write_text(schema.to_json(), encoding="utf-8")
    products = work / "products.jsonl"
    with products.open("w", encoding="utf-8") as out:
        for i, (uid, title) in enumerate(zip(data.product_ids, data.titles, strict=True)):
            record: dict[str, object] = {"id": uid, TEXT: title}
            if minilm is not None and vectors is not None:
                record[minilm.key] = np.round(vectors[i].astype(np.float64), 6).tolist()
            out.write(json.dumps(record) + "\n")
    started = time.perf_counter()
    _ebr("ingest", str(products), "--store", f"local:{index}", "--schema", str(work / "schema.json"),
         "--model", str(model), "--quiet", "--checkpoint", str(work / f"{index.name}.checkpoint"))
    products.unlink()  # the titles are in the index; with the vectors this file is large
    print(f"index: {len(data.titles):,} titles ingested in {time.perf_counter() - started:.1f} s "
          f"(key {key}, {dim}-d, nlist {NLIST}, PQ {dim // 4} bytes"
          + (f"; key {minilm.key}, {minilm.dimension}-d, exact vectors" if minilm else "") + ")")
    return index


def reranker_queries(data: HomeDepot, model: Path) -> dict[str, dict[str, float]]:
    """The judgments of the train split's queries that ``model``'s training held out (its
    ``validation_fraction``, split as :func:`ebr.encoders.training.data.prepare` splits
    ``homedepot_train.py``'s ``{"text": query}`` records): the queries its cosine has not
    learnt, so their candidates' features look as a new query's do."""
    fraction = float(read_model_info(model).training.get("config", {}).get("validation_fraction", 0))
    held_out = {q: j for q, j in data.qrels("train").items() if in_validation({"text": q}, fraction)}
    if not held_out:
        raise SystemExit(f"{model} was trained on every train query (validation_fraction "
                         f"{fraction:g}): no query is left to train the reranker on")
    return held_out


def write_judged(qrels: dict[str, dict[str, float]], path: Path) -> dict[str, dict[str, float]]:
    with path.open("w", encoding="utf-8") as out:
        out.write("query\tdoc_id\tgrade\n")
        for query, judged in qrels.items():
            out.writelines(f"{query}\t{uid}\t{grade:g}\n" for uid, grade in judged.items())
    return qrels


def request_latency(index: Path, model: Path, queries: Sequence[str], template: str, n: int,
                    reranker: Path, candidates: int, others: Sequence[TextEmbedder] = ()) -> None:
    from ebr.encoders.serving.query_encoder import QueryEncoder

    with LocalStore.open(index, readonly=True) as store, torch_threads(1):
        encoder = QueryEncoder(model)
        searcher = Searcher(store, [ModelEmbedder(encoder), *others], key=encoder.key,
                            reranker=load_reranker(reranker, store.schema), candidates=candidates)
        for q in queries[:20]:  # warm-up; these stay cached, the measured queries are others
            searcher.search(template, text=q)
        measured = list(queries[20:20 + n])
        total, cpu = np.empty(len(measured)), np.empty(len(measured))
        phases = {p: np.empty(len(measured)) for p in PHASES}
        for i, q in enumerate(measured):
            started, used = time.perf_counter(), time.thread_time()
            response = searcher.search(template, text=q, size=10)
            total[i] = time.perf_counter() - started
            cpu[i] = time.thread_time() - used
            for p in PHASES:
                phases[p][i] = response.timings[p]
    extra = "".join(f" and {e.key}" for e in others)
    print(f"request API, {template} with the query tower{extra} (each request embedded once per "
          f"key), {candidates} candidates reranked by "
          f"LambdaRank, size 10, {len(measured)} distinct queries one at a time on 1 thread "
          "(wall time; the CPU time of the request's thread beside it, which other processes "
          "on a loaded machine inflate less):")
    for name, times in [("whole request", total), ("whole request, CPU time", cpu),
                        *phases.items()]:
        ms = times * 1e3
        print(f"  {name}: p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, "
              f"mean {ms.mean():.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(ap)
    ap.add_argument("--model", type=Path, required=True, help="A model directory (ebr train).")
    ap.add_argument("--work", type=Path, help="Keep the index, judged file and runs here.")
    ap.add_argument("--nprobe", type=int, default=64)
    ap.add_argument("--radius", type=float, default=0.6)
    ap.add_argument("--sweep", default="0.4,0.5,0.6,0.7")
    ap.add_argument("--pool", type=int, default=POOL,
                    help="The k of each branch of the reranked path (BM25 top k or nn top k).")
    ap.add_argument("--minilm-pool", type=int, default=POOL,
                    help="With --minilm: the k of a third branch of the reranked path, MiniLM's "
                         "nn top k (0: no such branch).")
    ap.add_argument("--train-pool", type=int, default=TRAIN_POOL,
                    help="The k of each branch of the pool the reranker trains on (its branches "
                         "those of the reranked path); all of its candidates train.")
    ap.add_argument("--candidates", type=int,
                    help="First-stage candidates the reranker reorders; default all of the "
                         "pool's (the sum of its branches' k).")
    ap.add_argument("--reranker-training", choices=("cross-fit", "held-out"), default="cross-fit",
                    help="The reranker's training queries: every train query, its candidates "
                         "from a half-split encoder that did not train on it (cross-fit), or "
                         "only those the model's training held out (held-out).")
    ap.add_argument("--minilm", action=argparse.BooleanOptionalAction, default=True,
                    help="A second embedding key: all-MiniLM-L6-v2's title vectors, its cosine to "
                         "the request one more reranker feature (EBR's ensemble of embeddings).")
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--latency-only", action="store_true",
                    help="Only the request API's latency, on the index and reranker in --work.")
    ap.add_argument("--reranker", type=Path,
                    help="With --latency-only: this reranker file (default: WORK/reranker.json).")
    args = ap.parse_args()
    if args.latency_only and args.work is None:
        ap.error("--latency-only needs --work (the directory of an earlier run)")
    data = load_or_exit(args.data)
    work_dir = args.work or Path(tempfile.mkdtemp(prefix="ebr-homedepot-eval-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; corpus {len(data.titles):,} titles; validation queries "
          f"{len(data.queries('validation')):,} ({len(data.queries('validation', with_relevant=True)):,} "
          f"with a relevant product); work {work_dir}", flush=True)
    minilm = minilm_encoder(work_dir) if args.minilm else None
    others = [minilm] if minilm else []
    models = ["--model", str(args.model), *(("--model", str(work_dir / "minilm")) if minilm else ()),
              "--key", read_model_info(args.model).key]
    builder = partial(build_index, minilm=minilm)
    index = builder(data, args.model, work_dir)
    minilm_pool = args.minilm_pool if minilm else 0
    pool = pool_template(args.pool, args.nprobe, minilm_pool)
    candidates = args.candidates or pool_size(args.pool, minilm_pool)
    train_pool, train_candidates = training_pool(args.train_pool, args.nprobe, minilm_pool > 0)
    reranker = work_dir / "reranker.json"
    if args.latency_only:
        request_latency(index, args.model, data.queries("validation"), pool, args.latency_queries,
                        args.reranker or reranker, min(candidates, 100), others)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return
    qrels = write_judged(data.qrels("validation"), work_dir / "judged.tsv")
    match = f"(match {TEXT} $q :minimum-should-match 1 :k 1000)"
    hybrid = f"(or {match} (nn $key :radius {args.radius} :nprobe {args.nprobe}))"
    paths = {"terms": match,
             "nn": f"(nn $key :k 1000 :nprobe {args.nprobe})",
             "hybrid": hybrid,
             "pool": pool}  # last: ebr eval runs it again through the reranker
    started = time.perf_counter()
    if args.reranker_training == "cross-fit":
        with LocalStore.open(index, readonly=True) as store:
            schema = store.schema
        cross_fitted_reranker(data, args.model, schema, work_dir, train_pool, train_candidates,
                              builder, others).save(reranker)
    else:
        write_judged(reranker_queries(data, args.model), work_dir / "train.tsv")
        _ebr("train-reranker", str(index), str(work_dir / "train.tsv"), "--path", train_pool,
             "--candidates", str(train_candidates), *models, "--output",
             str(reranker), "--quiet")
    print(f"reranker trained ({args.reranker_training}) on {train_pool} in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    _ebr("eval", str(index), str(work_dir / "judged.tsv"), *models,
         "--radius-sweep", args.sweep, "--runs", str(work_dir / "runs"),
         "--json", str(work_dir / "eval.json"), "--quiet", "--reranker", str(reranker),
         "--candidates", str(candidates),
         *(a for name, t in paths.items() for a in ("--path", f"{name}={t}")))
    print(f"ebr eval: {len(paths) + 1} paths + the sweep in {time.perf_counter() - started:.0f} s",
          flush=True)
    if not args.no_baselines:
        queries = list(qrels)
        reports = {name: evaluate_rankings(runs, qrels)
                   for name, runs in baseline_runs(data, queries).items()}
        print("\nbaselines, same queries, same run")
        print(markdown_table(reports))
    request_latency(index, args.model, data.queries("validation"), pool, args.latency_queries,
                    reranker, min(candidates, 100), others)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
