"""Local store at scale: build, memory, hybrid-query latency beside raw Faiss, probed recall.

Synthetic clustered data with a fixed seed (as Faiss's SyntheticDataset): ``--docs`` unit
vectors of ``--dim`` dimensions around ``--clusters`` random centres, a location namespace
with Zipf-skewed frequencies and a text namespace of Zipf-distributed words.  Prints one line
per figure (targets: p50 and p99 <= 2x raw Faiss at the same nprobe, top-10 recall >= 0.99):

- build: ingest throughput (batches of 10k, synchronous=NORMAL), quantizer training, the
  close that saves the snapshot file;
- open, in a fresh process, read-only: its time, resident memory (VmRSS) and the peak, once
  rebuilt from the database and once mapped from the snapshot file (targets: <= 1 s,
  <= 800 MB at 1M x 128);
- single-threaded p50/p99 of three query shapes, each beside raw Faiss on an IndexIVFFlat
  with the same centroids and nprobe in the same run (the location constraint given to Faiss
  as an ``IDSelectorBitmap``), with the ratios, and how ebr read the probed clusters
  (``probe reads``: bitmap-first or scanned in place, :class:`ebr.stores.ProbeChoice`):
  the paper's hybrid query ``(and (or (term location:a) (term location:b)) (or (and
  (term text:x) (term text:y)) (nn key :radius r :nprobe 16)))``; the radius ``nn`` alone;
  and a hybrid top-10 ``(and (or (term location:a) (term location:b)) (nn key :k 10
  :nprobe 16))`` with both recalls against the exact constrained top-10;
- recall of probed radius search against exact radius search at nprobe 1/4/16/64, with the
  documents scanned (EBR §4.1).

With ``--pq-m M`` (and ``--opq``) the key keeps PQ codes: the hybrid query and the probed
recall then use compressed verification, and the lines also give the candidates scored by
codes and verified exactly (run once without the flag for the figures without codes).

    python bench/local_store.py [--docs 1000000] [--dim 128] [--clusters 1000] [--queries 200]
                                [--pq-m 32] [--opq] [--dir DIR [--reuse]]
    python bench/local_store.py --dir DIR --opens-only 3   # the opens again, of DIR's index
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # BLAS and Faiss threads contend on 2 cores

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from ebr import parse, plan  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402
from ebr.stores.local import LocalStore  # noqa: E402
from ebr.stores.local.snapshot_file import SNAPSHOT_FILE  # noqa: E402
from ebr.stores.protocol import IndexDocument, SearchStats  # noqa: E402

KEY = "emb"
LOCATIONS = 300
VOCABULARY = 5000


OPEN_AND_MEASURE = """
import sys, time
from ebr.stores.local import LocalStore
def status(field):  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
before = status("VmRSS")
mapped = sys.argv[2] == "snapshot"
start = time.perf_counter()
with LocalStore.open(sys.argv[1], readonly=True, snapshot=mapped) as store:
    seconds = time.perf_counter() - start
    after = status("VmRSS")
    peak = status("VmHWM")
    assert (store.snapshot_problem is None) == mapped, store.snapshot_problem
    how = "mapped from the snapshot file" if mapped else "rebuilt from the database"
    print(f"open, {how} (fresh process, read-only): {seconds:.2f} s; resident "
          f"{after:,.0f} MB ({after - before:,.0f} MB above the interpreter with ebr "
          f"imported), peak while opening {peak:,.0f} MB")
"""


def measure_opens(directory: str) -> None:
    """Open the index read-only in a fresh process, rebuilt then mapped; print both."""
    opens = {}
    for how in ("database", "snapshot"):
        probe = subprocess.run(
            [sys.executable, "-c", OPEN_AND_MEASURE, directory, how], capture_output=True,
            text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        print(probe.stdout.strip())
        opens[how] = float(probe.stdout.split(": ")[1].split(" s;")[0])
    print(f"open: snapshot file / rebuild ratio {opens['snapshot'] / opens['database']:.3f} "
          "(targets: <= 1 s and <= 800 MB resident at 1M x 128)", flush=True)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def zipf_choice(rng: np.random.Generator, n: int, size: int, s: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return rng.choice(n, size=size, p=weights / weights.sum())


class Corpus:
    def __init__(self, docs: int, dim: int, clusters: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        centres = self.rng.standard_normal((clusters, dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.docs, self.dim = docs, dim
        self.cluster = self.rng.integers(0, clusters, docs)
        self.location = zipf_choice(self.rng, LOCATIONS, docs)
        self.words = zipf_choice(self.rng, VOCABULARY, docs * 3).reshape(docs, 3)

    def vectors(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng([1, start])
        v = self.centres[self.cluster[start:stop]] + 0.6 / np.sqrt(self.dim) * \
            rng.standard_normal((stop - start, self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def batches(self, size: int) -> Iterator[tuple[np.ndarray, list[IndexDocument]]]:
        for start in range(0, self.docs, size):
            stop = min(start + size, self.docs)
            vecs = self.vectors(start, stop)
            yield vecs, [
                IndexDocument(
                    id=f"d{i}",
                    terms={"location": [f"l{self.location[i]}"],
                           "text": [f"w{w}" for w in self.words[i]]},
                    embeddings={KEY: vecs[i - start]},
                    rank=float(i % 100),
                )
                for i in range(start, stop)
            ]


def percentiles(samples: list[float]) -> str:
    a = np.array(samples) * 1e3
    return f"p50 {np.percentile(a, 50):.2f} ms, p99 {np.percentile(a, 99):.2f} ms"


def radius_search(store: LocalStore, schema: Schema, q: np.ndarray,
                  options: str) -> tuple[set[str], SearchStats]:
    """The ids ``(nn KEY <options>)`` matches and the search's stats."""
    vectors = {KEY: q}
    executable = plan(parse(f"(nn {KEY} {options})", schema), vectors, store.quantizers, schema)
    result = store.search(executable, vectors, size=10_000)
    return set(result.ids), result.stats


def build(directory: str, schema: Schema, corpus: Corpus, all_vectors: np.ndarray) -> None:
    """Ingest the corpus (its vectors copied into ``all_vectors``) and train the quantizer."""
    start = time.perf_counter()
    with LocalStore.create(directory, schema, synchronous="NORMAL") as store:
        done = 0
        for vecs, batch in corpus.batches(10_000):
            store.add(batch)
            all_vectors[done:done + len(batch)] = vecs
            done += len(batch)
        ingest = time.perf_counter() - start
        print(f"ingest: {corpus.docs} docs in {ingest:.1f} s ({corpus.docs / ingest:,.0f} docs/s)")
        start = time.perf_counter()
        store.train_quantizers(seed=0)
        print(f"quantizer training + cluster re-assignment: {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
    saved = os.path.getsize(os.path.join(directory, SNAPSHOT_FILE)) / 2**20
    print(f"close (saves the snapshot file, {saved:,.0f} MB): "
          f"{time.perf_counter() - start:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--radius", type=float, default=0.25)
    ap.add_argument("--dir", default=None, help="index directory (default: a temporary one)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep an index already in --dir (built by a run with the same data "
                         "options): skip the build and measure again")
    ap.add_argument("--pq-m", type=int, default=0,
                    help="keep PQ codes of M bytes per vector (0: none; EBR: about dim/4)")
    ap.add_argument("--opq", action="store_true", help="learn an OPQ rotation before PQ")
    ap.add_argument("--opens-only", type=int, default=0, metavar="ROUNDS",
                    help="only measure ROUNDS pairs of opens of the index an earlier run "
                         "left in --dir (both ways, alternating)")
    args = ap.parse_args()
    if args.opens_only:
        if not args.dir:
            ap.error("--opens-only needs --dir")
        for _ in range(args.opens_only):
            measure_opens(args.dir)
        return
    faiss.omp_set_num_threads(1)
    codes = (f"PQ codes {args.pq_m} bytes{' with OPQ' if args.opq else ''}" if args.pq_m
             else "no PQ codes")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores; data: {args.docs} synthetic "
          f"clustered docs (seed 0), {args.dim}-d, {args.clusters} coarse clusters, "
          f"{LOCATIONS} Zipf locations; {codes}; 1 thread")

    directory = args.dir or tempfile.mkdtemp(prefix="ebr-bench-")
    schema = Schema.create("bench", (Namespace("location", "keyword"), Namespace("text", "keyword")),
                           (EmbeddingKey(KEY, args.dim, CoarseQuantizerSpec(
                               nlist=args.clusters, pq_m=args.pq_m, opq=args.opq)),))
    corpus = Corpus(args.docs, args.dim, args.clusters)
    all_vectors = np.empty((args.docs, args.dim), np.float32)

    if args.reuse and os.path.exists(os.path.join(directory, "index.sqlite")):
        for start in range(0, args.docs, 10_000):  # the generator is seeded: same vectors
            all_vectors[start:start + 10_000] = corpus.vectors(start, min(start + 10_000,
                                                                          args.docs))
        print(f"build: skipped (--reuse: the index in {directory})")
    else:
        shutil.rmtree(directory, ignore_errors=True)
        build(directory, schema, corpus, all_vectors)

    del corpus.words
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # The store's own memory, measured in a fresh process that only opens the index (this
    # process also holds the benchmark's copy of the vectors for raw Faiss).
    measure_opens(directory)
    start = time.perf_counter()
    store = LocalStore.open(directory)
    print(f"reopen for writing (mapped from the snapshot file): "
          f"{time.perf_counter() - start:.2f} s")

    centroids = store.quantizers[KEY].centroids
    rng = np.random.default_rng(7)
    picks = rng.integers(0, args.docs, args.queries)
    queries = all_vectors[picks] + 0.2 / np.sqrt(args.dim) * rng.standard_normal(
        (args.queries, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    # -- the same queries through ebr and raw Faiss ----------------------------------------
    # Raw Faiss: an IndexIVFFlat with the same centroids and nprobe, the location constraint
    # handed over as a bitmap of the admitted ids (IDSelectorBitmap, built per query from
    # per-location bitmaps: Faiss's counterpart of posting lists).
    coarse = faiss.IndexFlatL2(args.dim)
    coarse.add(centroids)
    ivf = faiss.IndexIVFFlat(coarse, args.dim, len(centroids), faiss.METRIC_INNER_PRODUCT)
    ivf.is_trained = True
    ivf.add(all_vectors)
    ivf.nprobe = 16
    location_bits = [np.packbits(corpus.location == loc, bitorder="little")
                     for loc in range(LOCATIONS)]
    constraints = [(int(corpus.location[doc]), int(rng.integers(0, LOCATIONS)),
                    *rng.integers(0, VOCABULARY, 2).tolist()) for doc in picks]

    def faiss_params(a: int, b: int) -> tuple[faiss.SearchParametersIVF, np.ndarray]:
        bits = np.bitwise_or(location_bits[a], location_bits[b])
        selector = faiss.IDSelectorBitmap(args.docs, faiss.swig_ptr(bits))
        return faiss.SearchParametersIVF(sel=selector, nprobe=16), bits  # bits: kept alive

    def timed_ebr(texts: list[str]) -> tuple[list[float], list[SearchStats], list[list[str]]]:
        seconds, stats, found = [], [], []
        for text, q in zip(texts, queries, strict=True):
            vectors = {KEY: q}
            t0 = time.perf_counter()
            result = store.search(plan(parse(text, schema), vectors, store.quantizers, schema),
                                  vectors, size=10)
            seconds.append(time.perf_counter() - t0)
            stats.append(result.stats)
            found.append(result.ids)
        return seconds, stats, found

    def reads(stats: list[SearchStats]) -> str:
        counts = Counter(p.read for s in stats for p in s.probes)
        return ", ".join(f"{read} {n}" for read, n in sorted(counts.items())) or "none"

    def compare(name: str, ebr: list[float], raw: list[float], stats: list[SearchStats],
                extra: str = "") -> None:
        print(f"{name}: ebr (parse+plan+search) {percentiles(ebr)}; raw Faiss "
              f"{percentiles(raw)}; ebr/Faiss p50 {np.median(ebr) / np.median(raw):.1f}x, "
              f"p99 {np.percentile(ebr, 99) / np.percentile(raw, 99):.1f}x; mean matches "
              f"{np.mean([s.total for s in stats]):.1f}, scored by codes "
              f"{np.mean([s.candidates_by_codes for s in stats]):,.0f}, verified "
              f"{np.mean([s.candidates_verified for s in stats]):,.0f}; probe reads "
              f"{reads(stats)}{extra}")

    hybrid, stats, _ = timed_ebr([
        f"(and (or (term location:l{a}) (term location:l{b})) "
        f"(or (and (term text:w{x}) (term text:w{y})) "
        f"(nn {KEY} :radius {args.radius} :nprobe 16)))" for a, b, x, y in constraints])
    raw = []
    for q, (a, b, _, _) in zip(queries, constraints, strict=True):
        t0 = time.perf_counter()
        params, _bits = faiss_params(a, b)
        ivf.range_search(q[None, :], 1.0 - args.radius, params=params)  # similarity > 1 - r
        raw.append(time.perf_counter() - t0)
    compare("hybrid: location term AND radius nn, nprobe 16", hybrid, raw, stats)

    free, stats, _ = timed_ebr([f"(nn {KEY} :radius {args.radius} :nprobe 16)"] * len(queries))
    raw = []
    for q in queries:
        t0 = time.perf_counter()
        ivf.range_search(q[None, :], 1.0 - args.radius)
        raw.append(time.perf_counter() - t0)
    compare("radius nn, no constraint, nprobe 16", free, raw, stats)

    top, stats, found = timed_ebr([
        f"(and (or (term location:l{a}) (term location:l{b})) (nn {KEY} :k 10 :nprobe 16))"
        for a, b, _, _ in constraints])
    raw, raw_found = [], []
    for q, (a, b, _, _) in zip(queries, constraints, strict=True):
        t0 = time.perf_counter()
        params, _bits = faiss_params(a, b)
        _, labels = ivf.search(q[None, :], 10, params=params)
        raw.append(time.perf_counter() - t0)
        raw_found.append(labels[0][labels[0] >= 0].tolist())
    recall_ebr, recall_raw = [], []
    for q, (a, b, _, _), got, got_raw in zip(queries, constraints, found, raw_found,
                                             strict=True):
        admitted = np.flatnonzero((corpus.location == a) | (corpus.location == b))
        truth = admitted[np.argsort(-(all_vectors[admitted] @ q), kind="stable")[:10]]
        recall_ebr.append(len({f"d{i}" for i in truth} & set(got)) / len(truth))
        recall_raw.append(len(set(truth.tolist()) & set(got_raw)) / len(truth))
    compare("hybrid top-10: location term AND nn :k 10, nprobe 16", top, raw, stats,
            f"; recall@10 ebr {np.mean(recall_ebr):.3f}, Faiss {np.mean(recall_raw):.3f}")

    # -- recall of probed radius vs exact radius ------------------------------------------
    for nprobe in (1, 4, 16, 64):
        recalls, scanned, verified, by_codes, seconds = [], [], [], [], []
        for q in queries[:50]:
            exact_ids, _ = radius_search(store, schema, q, f":radius {args.radius} :exact true")
            t0 = time.perf_counter()
            probed_ids, stats = radius_search(store, schema, q,
                                              f":radius {args.radius} :nprobe {nprobe}")
            seconds.append(time.perf_counter() - t0)
            scanned.append(stats.documents_scanned)
            verified.append(stats.candidates_verified)
            by_codes.append(stats.candidates_by_codes)
            if exact_ids:
                recalls.append(len(exact_ids & probed_ids) / len(exact_ids))
        print(f"radius {args.radius} recall vs exact at nprobe {nprobe}: "
              f"{np.mean(recalls):.3f} over {len(recalls)} queries; documents scanned "
              f"{np.mean(scanned):,.0f}, scored by codes {np.mean(by_codes):,.0f}, verified "
              f"exactly {np.mean(verified):,.0f}; p50 {np.median(seconds) * 1e3:.2f} ms")

    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(the machine is shared: compare the ratios, measured side by side)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process (build, training, raw Faiss copy): "
          f"{peak:,.0f} MB; now {rss_mb():,.0f} MB")
    store.close()
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
