"""The reranker's cost per request, 100 candidates each, beside the first stage it follows.

Data: ``--docs`` synthetic titles with a location term and their trigram-projection embedding
(the corpus of ``bench/opensearch_store.py``).  Per request: a hybrid radius query
``(or (match title "w1 w2") (nn key :radius r :nprobe 16))`` keeps its ``--size`` best hits;
then the features alone, the linear default and a LambdaRank scorer (trained here on
synthetic grades from ``--train`` queries), each end to end (features included).  One line
per figure, p50 / p99 over ``--queries`` requests, on the local store and, with ``--url``, on
OpenSearch, where the cosine may instead be computed on the server: the same search with a
request-level ``rescore`` (``compile_rescore``) beside reading the candidates' vectors back
(``get_vectors``, what the reranker did before the search returned what it reads).

Then the request API (``Searcher.search``) with the Home Depot benchmark's shape: its pool
template (``homedepot_pool.pool_template``: ``(or (match title $q :minimum-should-match 1 :k P)
(nn $key :k P))``), ``--pool`` each, all ``--candidates`` reranked by the LambdaRank scorer, 10
hits, the trigram projection embedding the request text. Per phase (embed, plan, retrieve,
rerank) and whole, p50 / p99, of two searchers on the same store, one request of each in turn:
``fetch=False`` (the reranker reads the candidates' vectors and terms after the search: on
OpenSearch an ``mget`` each) and ``fetch=True`` (the search returns them: script-field cosines
and filtered ``_source`` terms in the same ``_search``).

    python bench/rerank_latency.py [--docs 20000] [--url http://127.0.0.1:9200]
        [--pool 300] [--candidates 600] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from homedepot_pool import pool_template
from opensearch_store import KEY, LOCATIONS, WORDS, Projection, write_corpus

from ebr import parse, plan
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.ingest.pipeline import ingest
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.ranking import (
    JudgedSearch,
    LambdaRankReranker,
    LinearReranker,
    RerankRequest,
    compute_features,
    train_lambdarank,
)
from ebr.request import ProjectionEmbedder, Searcher
from ebr.request.searcher import PHASES
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.compiler import compile_rescore, compile_search
from ebr.stores.opensearch.store import OpenSearchStore
from ebr.stores.protocol import Hit, Store

Batch = list[tuple[RerankRequest, tuple[Hit, ...], float]]


def requests(store: Store, n: int, seed: int, args: argparse.Namespace) -> Batch:
    """``n`` requests, their candidates and the first stage's seconds."""
    rng = np.random.default_rng(seed)
    projection = TrigramProjection(args.dim)
    out = []
    for _ in range(n):
        words = tuple(rng.choice(WORDS[:300], 2))
        vectors = {KEY: projection.embed_one(" ".join(words))}
        text = f'(or (match title "{" ".join(words)}") (nn {KEY} :radius {args.radius} :nprobe 16))'
        executable = plan(parse(text, store.schema), vectors, store.quantizers, store.schema)
        started = time.perf_counter()
        hits = store.search(executable, vectors, size=args.size).hits
        seconds = time.perf_counter() - started
        context = {"loc": LOCATIONS[int(rng.integers(0, 5))]}
        out.append((RerankRequest(vectors, {"title": words}, context, executable), hits, seconds))
    return out


def trained(store: Store, args: argparse.Namespace) -> LambdaRankReranker:
    """Synthetic grades: the searcher's location counts 2, a close embedding 1."""
    searches = []
    for request, hits, _ in requests(store, args.train, 99, args):
        features = compute_features(request, hits, store)
        row = features.feature_set.columns
        grades = {h.id: 2.0 * features.values[i, row["context_match"]]
                  + (features.values[i, row[f"cosine:{KEY}"]] > 0.8)
                  for i, h in enumerate(features.hits)}
        searches.append(JudgedSearch(request, hits, grades))
    return train_lambdarank(searches, store)


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def line(what: str, seconds: list[float]) -> str:
    p50, p99 = (float(np.percentile(seconds, q)) * 1000 for q in (50, 99))
    return f"  {what:<42} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"


def measure(name: str, store: Store, args: argparse.Namespace) -> tuple[Batch, LambdaRankReranker]:
    scorer = trained(store, args)
    linear = LinearReranker()
    batch = requests(store, args.queries, 7, args)
    sizes = [len(hits) for _, hits, _ in batch]
    print(f"{name}: {args.queries} requests, {np.mean(sizes):.0f} candidates on average "
          f"(--size {args.size})")
    print(line("first stage (store.search)", [s for _, _, s in batch]))
    steps: list[tuple[str, Callable[[RerankRequest, tuple[Hit, ...], Store], object]]] = [
        ("features (get_vectors + get_terms + matrix)", compute_features),
        ("linear default, end to end", linear.rerank),
        ("LambdaRank, end to end", scorer.rerank)]
    for what, step in steps:
        print(line(what, [timed(lambda r=r, h=h, step=step: step(r, h, store))  # type: ignore[misc]
                          for r, h, _ in batch]))
    return batch, scorer


def rescore_versus_vectors(remote: OpenSearchStore, batch: Batch, args: argparse.Namespace) -> None:
    """The cosine on the server (a rescore over the same search) against reading vectors."""
    plain, rescored, took_plain, took_rescored, vectors = [], [], [], [], []
    for request, hits, _ in batch:
        assert request.plan is not None
        body = compile_search(request.plan, remote.schema, request.vectors, size=args.size,
                              version=remote.version).body
        with_rescore = {**body, "rescore": [compile_rescore(remote.schema, KEY, request.vectors[KEY],
                                                            window_size=args.size)]}
        for target, took, b in ((plain, took_plain, body), (rescored, took_rescored, with_rescore)):
            started = time.perf_counter()
            found = remote.client.search(index=remote.index, body=b, _source=False)
            target.append(time.perf_counter() - started)
            took.append(found["took"] / 1000)
        ids = [h.id for h in hits]
        vectors.append(timed(lambda ids=ids: remote.get_vectors(ids, KEY)))  # type: ignore[misc]
    print(line("search without rescore (wall)", plain))
    print(line("search with a cosine rescore (wall)", rescored))
    print(line("  the same, server took: without", took_plain))
    print(line("  the same, server took: with", took_rescored))
    print(line("get_vectors of the candidates (wall)", vectors))
    extra = float(np.median(rescored) - np.median(plain))
    print(f"  rescore adds {extra * 1000:.2f} ms at p50; reading the vectors back costs "
          f"{np.median(vectors) * 1000:.2f} ms: ratio rescore / get_vectors "
          f"{extra / max(float(np.median(vectors)), 1e-9):.2f}")


def request_api(name: str, store: Store, scorer: LambdaRankReranker, args: argparse.Namespace
                ) -> None:
    """The request API's phases without and with the search returning the features' inputs."""
    embedder = ProjectionEmbedder(KEY, TrigramProjection(args.dim))
    searchers = {fetch: Searcher(store, [embedder], reranker=scorer, candidates=args.candidates,
                                 fetch=fetch) for fetch in (False, True)}
    template = pool_template(args.pool)
    rng = np.random.default_rng(3)
    texts = [(" ".join(rng.choice(WORDS[:300], int(rng.integers(2, 4)))),
              {"loc": LOCATIONS[int(rng.integers(0, 5))]}) for _ in range(args.requests + 10)]
    times: dict[bool, dict[str, list[float]]] = {f: {p: [] for p in (*PHASES, "whole")}
                                                 for f in searchers}
    differ = 0
    for i, (text, context) in enumerate(texts):
        ids = {}
        for fetch in ((False, True) if i % 2 else (True, False)):  # alternate who goes first
            started = time.perf_counter()
            response = searchers[fetch].search(template, text=text, context=context, size=10)
            whole = time.perf_counter() - started
            ids[fetch] = response.ids
            if i >= 10:  # the first ten warm up
                times[fetch]["whole"].append(whole)
                for phase in PHASES:
                    times[fetch][phase].append(response.timings[phase])
        differ += ids[False] != ids[True]
    print(f"{name}, request API: {template}, {args.candidates} candidates reranked by LambdaRank, "
          f"size 10, {args.requests} requests, each searcher in turn; pages differing: {differ}")
    for phase in (*PHASES, "whole"):
        for fetch in searchers:
            print(line(f"{phase}, {'fetched with the hits' if fetch else 'read after (before)'}",
                       times[fetch][phase]))
    for phase in ("rerank", "whole"):
        before, after = (float(np.median(times[f][phase])) for f in (False, True))
        print(f"  {phase} p50: read after {before * 1000:.2f} ms, fetched with the hits "
              f"{after * 1000:.2f} ms (after / before {after / max(before, 1e-9):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--nlist", type=int, default=128)
    parser.add_argument("--radius", type=float, default=0.6)
    parser.add_argument("--size", type=int, default=100, help="candidates reranked per request")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--train", type=int, default=200, help="queries the LambdaRank learns from")
    parser.add_argument("--url", help="an OpenSearch to measure as well (lucene engine)")
    parser.add_argument("--pool", type=int, default=300, help="the request API's k per branch")
    parser.add_argument("--candidates", type=int, default=600,
                        help="hits the request API reranks")
    parser.add_argument("--requests", type=int, default=200, help="requests per searcher")
    args = parser.parse_args()
    schema = Schema.create("rerank-bench", (Namespace("title"), Namespace("loc", "keyword")),
                           (EmbeddingKey(KEY, args.dim, CoarseQuantizerSpec(nlist=args.nlist)),))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores; {args.docs} docs x {args.dim}-d, "
          f"nlist {args.nlist}, radius {args.radius}")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "docs.jsonl"
        write_corpus(source, args.docs)
        with LocalStore.create(Path(tmp) / "local", schema, synchronous="OFF") as local:
            ingest(local, source, encoder=Projection(args.dim), batch_size=2000)
            _, scorer = measure("local store", local, args)
            request_api("local store", local, scorer, args)
            if args.url:
                remote = OpenSearchStore.create(args.url, "ebr-rerank-bench", schema, engine="lucene")
                try:
                    ingest(remote, source, encoder=Projection(args.dim), batch_size=2000)
                    batch, scorer = measure(f"OpenSearch {remote.version}", remote, args)
                    rescore_versus_vectors(remote, batch, args)
                    request_api(f"OpenSearch {remote.version}", remote, scorer, args)
                finally:
                    remote.close()
                    OpenSearchStore.drop(args.url, "ebr-rerank-bench")


if __name__ == "__main__":
    main()
