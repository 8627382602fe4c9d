"""ebr's local store beside raw Faiss and LanceDB: one run, the same data and queries, ratios.

Each engine builds an index of the same documents, is reopened in a fresh subprocess (open
time, resident memory), then answers the same queries in this process, one at a time on one
thread, after a warm-up: ``WARMUP`` queries of each kind, then (unless ``--cold``) one
hybrid query of each kind per term the measured queries constrain, with a warm-up vector
(:attr:`Workload.warm_terms`):

- **ebr**: :class:`ebr.stores.local.LocalStore` through the public API, timed from the
  query text and vector to the hits' ids (``ebr.parse`` + ``ebr.plan`` + ``search`` +
  ``result.ids``; a repeated text's parse and logical plan are kept, :mod:`ebr.query.kept`,
  and the hits' explanations are built only when read, :class:`ebr.stores.protocol.LazyHits`):
  ``(and (term NS:v) (nn KEY :radius r :nprobe n))``, ``(nn KEY :radius r :nprobe n)`` and
  ``(and (term NS:v) (nn KEY :k 10 :nprobe n))``; the ids (strings) become numbers for the
  recall after the clock stops, as Faiss's and LanceDB's answers are numbers already;
- **raw Faiss**: an ``IndexIVFFlat`` (inner product over unit vectors) on the same centroids
  (ebr's training is Faiss's spherical k-means on a seeded sample: the Faiss build makes the
  same call, so both get the same centroids), the term constraint as an ``IDSelectorBitmap``
  over the term's posting list (one packed bitmap per term, saved beside the index), in
  ``SearchParametersIVF`` with the same nprobe: ``range_search`` and ``search``;
- **LanceDB** (``bench`` extra): an ``IVF_FLAT`` cosine index of nlist partitions (its own
  k-means) and a ``BITMAP`` scalar index on the term column, queried with a prefilter
  ``where``, ``nprobes(n)`` and ``distance_range`` for the radius.

Figures: p50/p99 of each query kind with its recall against the exact answer (numpy, all
documents); open time (open plus the first query answered, so that a lazy open is not
credited for deferring its work) and VmRSS after it, in a subprocess that imported its
engine first; build time (ingest + quantizer training + scalar index, written to disk).
Ratios are to raw Faiss; the targets (issue 14) are the right-hand column: the absolute
ones are for 1M x 128, so they are judged only there.

Workloads: ``synthetic`` (bench/local_store.py's generator: ``--docs`` clustered unit vectors,
a location namespace with Zipf-skewed frequencies; the query's location is its source
document's) and ``homedepot`` (the titles embedded by ``--model``'s document tower, the queries
-- judged Home Depot queries -- by its query tower; the constraint is a title's first word,
the query's that of its exact nearest title; the radius is the median distance of the 200th
nearest title, so a radius query returns about 200 like the synthetic one).  The homedepot
workload also prints the model's file sizes and its query tower's p50/p99 (one query at a
time, 1 thread), the issue's model figures.

    python bench/embedded_peers.py [--workload synthetic|homedepot|both] [--docs 1000000]
        [--dim 128] [--clusters 1000] [--queries 200] [--radius 0.25] [--nprobe 16]
        [--model DIR] [--data DIR] [--work DIR] [--engines ebr,faiss,lancedb] [--quick]
"""

from __future__ import annotations

import os

# One thread everywhere; set before numpy, Faiss and LanceDB start their pools.
# (LanceDB's LANCE_IO_THREADS stays at its default: 1 deadlocks its index build.)
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LANCE_CPU_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("LANCEDB_LOG", "error")  # not a deprecation warning per query

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Protocol  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from local_store import LOCATIONS, Corpus, rss_mb  # noqa: E402  (rss_mb: VmRSS, what a map touched)

from ebr import parse, plan  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402
from ebr.quantization.kmeans import train_centroids  # noqa: E402
from ebr.stores.local import LocalStore  # noqa: E402
from ebr.stores.protocol import IndexDocument  # noqa: E402

F32 = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

KEY = "emb"
K = 10
WARMUP = 20
#: The most a radius query returns (ebr's ``size``, LanceDB's ``limit``; Faiss has none).
RADIUS_LIMIT = 10_000
BATCH = 10_000
KMEANS_ITERATIONS = 20  # LocalStore.train_quantizers' default, which the Faiss build repeats
HD_NLIST = 256  # about sqrt(54,667 titles), as bench/homedepot_eval.py
HD_RADIUS_RANK = 200


# -- workloads and their exact answers ---------------------------------------------------------

@dataclass
class Settings:
    """What every engine needs to build and query an index of a workload."""

    namespace: str  # the constraint's namespace (a column in LanceDB)
    nlist: int
    nprobe: int
    radius: float  # cosine distance, 1 - cos
    k: int = K


@dataclass
class Workload:
    """Documents ``0..n-1`` (unit vectors, one constraint term each) and the queries: the first
    ``warmup`` are run before measuring, the rest are measured."""

    name: str
    description: str
    settings: Settings
    vectors: F32
    terms: npt.NDArray[np.int64]  # each document's term, an index into ``values``
    values: list[str]
    queries: F32
    query_terms: npt.NDArray[np.int64]
    warmup: int = WARMUP
    #: Also answer each measured query's term once before measuring (with a warm-up vector):
    #: a service that has served each location before, as Faiss's per-term bitmaps are built
    #: before timing.  ``--cold`` turns it off: then a term's first query pays for what is
    #: kept per term and per text (ebr's term rows, parsed texts and plans).
    warm_terms: bool = True

    @property
    def measured(self) -> range:
        return range(self.warmup, len(self.queries))

    def term_of(self, query: int) -> str:
        return self.values[int(self.query_terms[query])]


@dataclass
class Answers:
    """One query kind's answer per query, as document numbers."""

    hybrid_radius: list[Ids] = field(default_factory=list)
    radius: list[Ids] = field(default_factory=list)
    hybrid_topk: list[Ids] = field(default_factory=list)


def exact_answers(w: Workload, queries: Sequence[int], radius: float | None = None) -> Answers:
    """The exact answer of every query kind (all documents, numpy), for ``queries``."""
    r = w.settings.radius if radius is None else radius
    out = Answers()
    for start in range(0, len(queries), 32):
        chunk = list(queries[start:start + 32])
        sims = w.vectors @ w.queries[chunk].T
        for j, qi in enumerate(chunk):
            s = sims[:, j]
            admitted = np.flatnonzero(w.terms == w.query_terms[qi])
            within = np.flatnonzero(s >= np.float32(1.0 - r))
            out.radius.append(within)
            out.hybrid_radius.append(within[w.terms[within] == w.query_terms[qi]])
            best = np.argsort(-s[admitted], kind="stable")[: w.settings.k]
            out.hybrid_topk.append(admitted[best])
    return out


def mean_recall(found: Sequence[Ids], exact: Sequence[Ids]) -> float:
    """Mean over queries with a non-empty exact answer of the share of it found (nan if none)."""
    shares = [np.isin(e, f).mean() for f, e in zip(found, exact, strict=True) if len(e)]
    return float(np.mean(shares)) if shares else float("nan")


def synthetic(docs: int, dim: int, clusters: int, queries: int, radius: float,
              nprobe: int) -> Workload:
    """bench/local_store.py's corpus and queries (a document's vector plus noise; its location)."""
    corpus = Corpus(docs, dim, clusters)
    vectors = np.empty((docs, dim), np.float32)
    for start in range(0, docs, BATCH):
        vectors[start:start + BATCH] = corpus.vectors(start, min(start + BATCH, docs))
    rng = np.random.default_rng(7)
    picks = rng.integers(0, docs, queries + WARMUP)
    q = vectors[picks] + 0.2 / np.sqrt(dim) * rng.standard_normal((len(picks), dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return Workload(
        "synthetic", f"{docs:,} x {dim} synthetic clustered unit vectors (seed 0), {LOCATIONS} "
        f"Zipf locations", Settings("location", clusters, nprobe, radius),
        vectors, corpus.location.astype(np.int64), [f"l{i}" for i in range(LOCATIONS)],
        q, corpus.location[picks].astype(np.int64))


def first_word(title: str) -> str:
    """A title's first word, lower-cased letters and digits only (often the brand)."""
    match = re.search(r"[a-z0-9]+", title.lower())
    return match.group() if match else "none"


def homedepot(model: Path, data: Path, queries: int, nprobe: int) -> Workload:
    """The titles by the model's document tower, judged queries by its query tower (timed)."""
    from homedepot_baselines import torch_threads
    from homedepot_data import load_or_exit

    from ebr.encoders.serving.model_directory import EncoderModel
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.request import ModelEmbedder

    hd = load_or_exit(data)
    encoder = EncoderModel.load(model)
    fields = sorted({c.field for c in encoder.config.doc.channels if c.kind != "categorical"})
    started = time.perf_counter()
    vectors = encoder.encode_docs([dict.fromkeys(fields, t) for t in hd.titles])
    del encoder
    embedder = ModelEmbedder(QueryEncoder(model))
    texts = list(np.random.default_rng(7).permutation(sorted(hd.judgments))[: queries + WARMUP])
    q = np.empty((len(texts), vectors.shape[1]), np.float32)
    seconds = []
    with torch_threads(1):
        for i, text in enumerate(texts):  # one at a time, as a query service embeds
            began = time.perf_counter()
            q[i] = embedder.embed(text, {})
            seconds.append(time.perf_counter() - began)
    print(f"homedepot: {len(vectors):,} titles and {len(q)} queries embedded by {model.name} in "
          f"{time.perf_counter() - started:.0f} s (not part of any engine's figures)")
    ms = np.array(seconds[WARMUP:]) * 1e3
    files = ", ".join(f"{f.name} {f.stat().st_size / 2**20:,.0f} MiB"
                      for f in sorted(model.iterdir()) if f.is_file() and f.stat().st_size > 2**20)
    print(f"model {model.name}: {files}; query tower (ebr.request.ModelEmbedder, 1 thread) "
          f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms over {len(ms)} "
          f"queries after {WARMUP}")
    words = [first_word(t) for t in hd.titles]
    values = sorted(set(words))
    index = {v: i for i, v in enumerate(values)}
    terms = np.array([index[w] for w in words], np.int64)
    sims = q @ vectors.T
    nearest = sims.argmax(axis=1)
    rank = min(HD_RADIUS_RANK, len(vectors)) - 1
    kth = -np.partition(-sims, rank, axis=1)[:, rank]  # each query's rank-th highest cosine
    radius = float(np.median(1.0 - kth))
    return Workload(
        "homedepot", f"{len(vectors):,} Home Depot titles x {vectors.shape[1]} ({embedder.key}), "
        f"{len(values):,} distinct first words, radius {radius:.3f} (median distance of the "
        f"{HD_RADIUS_RANK}th nearest title)", Settings("first_word", HD_NLIST, nprobe, radius),
        np.ascontiguousarray(vectors, np.float32), terms, values, q, terms[nearest])


# -- the engines -----------------------------------------------------------------------------

class Opened(Protocol):
    """An engine's index opened for queries; each query returns document numbers, or ids
    (strings) that are document numbers, as the engine's API gives them."""

    def hybrid_radius(self, q: F32, term: str) -> Ids | list[str]: ...
    def radius(self, q: F32) -> Ids | list[str]: ...
    def hybrid_topk(self, q: F32, term: str) -> Ids | list[str]: ...
    def close(self) -> None: ...


def numbers(found: Ids | list[str]) -> Ids:
    """An answer as document numbers (after the clock: recall's bookkeeping, not the query)."""
    return found if isinstance(found, np.ndarray) else np.fromiter(map(int, found), np.int64,
                                                                    len(found))


@dataclass(frozen=True)
class Engine:
    name: str
    short: str
    label: str
    build: Callable[[Workload, Path], None]
    open: Callable[[Path, Settings], Opened]


def build_ebr(w: Workload, directory: Path) -> None:
    s = w.settings
    schema = Schema.create("bench", (Namespace(s.namespace, "keyword"),),
                           (EmbeddingKey(KEY, w.vectors.shape[1], CoarseQuantizerSpec(nlist=s.nlist)),))
    with LocalStore.create(directory, schema, synchronous="NORMAL") as store:
        for start in range(0, len(w.vectors), BATCH):
            store.add(IndexDocument(id=str(i), terms={s.namespace: [w.values[w.terms[i]]]},
                                    embeddings={KEY: w.vectors[i]})
                      for i in range(start, min(start + BATCH, len(w.vectors))))
        store.train_quantizers(seed=0, niter=KMEANS_ITERATIONS)


class EbrOpened:
    def __init__(self, directory: Path, s: Settings) -> None:
        self.store = LocalStore.open(directory, readonly=True)
        self.s = s

    def _search(self, query: str, q: F32, size: int) -> list[str]:
        vectors = {KEY: q}
        schema = self.store.schema
        result = self.store.search(plan(parse(query, schema), vectors, self.store.quantizers, schema),
                                   vectors, size=size)
        return result.ids  # the hits' explanations are built only if read (LazyHits)

    def hybrid_radius(self, q: F32, term: str) -> list[str]:
        s = self.s
        return self._search(f"(and (term {s.namespace}:{term}) "
                            f"(nn {KEY} :radius {s.radius} :nprobe {s.nprobe}))", q, RADIUS_LIMIT)

    def radius(self, q: F32) -> list[str]:
        return self._search(f"(nn {KEY} :radius {self.s.radius} :nprobe {self.s.nprobe})", q,
                            RADIUS_LIMIT)

    def hybrid_topk(self, q: F32, term: str) -> list[str]:
        s = self.s
        return self._search(f"(and (term {s.namespace}:{term}) "
                            f"(nn {KEY} :k {s.k} :nprobe {s.nprobe}))", q, s.k)

    def close(self) -> None:
        self.store.close()


FAISS_INDEX, FAISS_TERMS, FAISS_VALUES = "ivf.faiss", "term_bitmaps.npy", "terms.json"


def build_faiss(w: Workload, directory: Path) -> None:
    """What a user hand-wiring Faiss would build: k-means, an IVFFlat, one bitmap per term."""
    directory.mkdir(parents=True)
    n, dim = w.vectors.shape
    centroids, _ = train_centroids(KEY, w.vectors, w.settings.nlist, sample_size=None, seed=0,
                                   niter=KMEANS_ITERATIONS)
    coarse = faiss.IndexFlatL2(dim)  # unit centroids: L2 and inner product probe alike
    coarse.add(centroids)
    ivf = faiss.IndexIVFFlat(coarse, dim, len(centroids), faiss.METRIC_INNER_PRODUCT)
    ivf.is_trained = True
    ivf.add(w.vectors)
    faiss.write_index(ivf, str(directory / FAISS_INDEX))
    bitmaps = np.zeros((len(w.values), (n + 7) // 8), np.uint8)
    for t in range(len(w.values)):
        bitmaps[t] = term_bitmap(w.terms == t)
    np.save(directory / FAISS_TERMS, bitmaps)
    (directory / FAISS_VALUES).write_text(json.dumps(w.values), encoding="utf-8")


def term_bitmap(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """A posting list as ``IDSelectorBitmap`` reads it: bit ``i & 7`` of byte ``i >> 3``."""
    return np.packbits(mask, bitorder="little")


class FaissOpened:
    def __init__(self, directory: Path, s: Settings) -> None:
        self.ivf = faiss.read_index(str(directory / FAISS_INDEX))
        self.bitmaps = np.load(directory / FAISS_TERMS)
        values = json.loads((directory / FAISS_VALUES).read_text(encoding="utf-8"))
        self.row = {v: i for i, v in enumerate(values)}
        self.s = s

    def _params(self, term: str | None) -> Any:
        if term is None:
            return faiss.SearchParametersIVF(nprobe=self.s.nprobe)
        bitmap = self.bitmaps[self.row[term]]
        selector = faiss.IDSelectorBitmap(self.ivf.ntotal, faiss.swig_ptr(bitmap))
        return faiss.SearchParametersIVF(sel=selector, nprobe=self.s.nprobe)

    def _range(self, q: F32, term: str | None) -> Ids:
        _, _, ids = self.ivf.range_search(q[None, :], 1.0 - self.s.radius, params=self._params(term))
        return ids.astype(np.int64)

    def hybrid_radius(self, q: F32, term: str) -> Ids:
        return self._range(q, term)

    def radius(self, q: F32) -> Ids:
        return self._range(q, None)

    def hybrid_topk(self, q: F32, term: str) -> Ids:
        _, ids = self.ivf.search(q[None, :], self.s.k, params=self._params(term))
        return ids[0][ids[0] >= 0].astype(np.int64)

    def close(self) -> None:
        del self.ivf


LANCE_TABLE = "docs"


def build_lancedb(w: Workload, directory: Path) -> None:
    import lancedb
    import pyarrow as pa
    from lancedb.index import Bitmap, IvfFlat

    s = w.settings
    n, dim = w.vectors.shape
    table = pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        s.namespace: pa.array(np.asarray(w.values, dtype=object)[w.terms], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(w.vectors.reshape(-1)), dim),
    })
    db = lancedb.connect(directory)
    tbl = db.create_table(LANCE_TABLE, data=table)
    tbl.create_index("vector", config=IvfFlat(distance_type="cosine", num_partitions=s.nlist,
                                              max_iterations=KMEANS_ITERATIONS))
    tbl.create_index(s.namespace, config=Bitmap())


class LanceOpened:
    def __init__(self, directory: Path, s: Settings) -> None:
        import lancedb

        self.table = lancedb.connect(directory).open_table(LANCE_TABLE)
        self.s = s

    def _search(self, q: F32, term: str | None, limit: int, radius: float | None) -> Ids:
        query = (self.table.search(q, vector_column_name="vector").distance_type("cosine")
                 .nprobes(self.s.nprobe).select(["id"]).limit(limit))
        if radius is not None:
            query = query.distance_range(upper_bound=radius)
        if term is not None:
            quoted = term.replace("'", "''")
            query = query.where(f"{self.s.namespace} = '{quoted}'", prefilter=True)
        return query.to_arrow()["id"].to_numpy().astype(np.int64)

    def hybrid_radius(self, q: F32, term: str) -> Ids:
        return self._search(q, term, RADIUS_LIMIT, self.s.radius)

    def radius(self, q: F32) -> Ids:
        return self._search(q, None, RADIUS_LIMIT, self.s.radius)

    def hybrid_topk(self, q: F32, term: str) -> Ids:
        return self._search(q, term, self.s.k, None)

    def close(self) -> None:
        del self.table


ENGINES = {e.name: e for e in (
    Engine("ebr", "ebr", "ebr local store", build_ebr, EbrOpened),
    Engine("faiss", "Faiss", "raw Faiss IVFFlat", build_faiss, FaissOpened),
    Engine("lancedb", "LanceDB", "LanceDB (IVF_FLAT + BITMAP)", build_lancedb, LanceOpened),
)}


# -- measuring ----------------------------------------------------------------------------------

@dataclass
class Latency:
    p50: float  # ms
    p99: float
    recall: float
    mean_results: float

    def text(self) -> str:
        return f"{self.p50:.2f} / {self.p99:.2f} ms"


@dataclass
class Figures:
    build: float  # s
    open: float  # s, open and first query
    rss: float  # MiB after it
    hybrid_radius: Latency
    radius: Latency
    hybrid_topk: Latency


def latency(seconds: Sequence[float], found: Sequence[Ids], exact: Sequence[Ids]) -> Latency:
    ms = np.asarray(seconds) * 1e3
    return Latency(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
                   mean_recall(found, exact), float(np.mean([len(f) for f in found])))


def run_queries(opened: Opened, w: Workload, exact: Answers) -> tuple[Latency, Latency, Latency]:
    """Each query kind over the measured queries, after the warm-up queries of every kind."""
    kinds: list[tuple[Callable[[int], Ids | list[str]], list[Ids]]] = [
        (lambda i: opened.hybrid_radius(w.queries[i], w.term_of(i)), exact.hybrid_radius),
        (lambda i: opened.radius(w.queries[i]), exact.radius),
        (lambda i: opened.hybrid_topk(w.queries[i], w.term_of(i)), exact.hybrid_topk),
    ]
    for ask, _ in kinds:
        for i in range(w.warmup):
            ask(i)
    if w.warm_terms:
        for term in sorted({w.term_of(i) for i in w.measured}):
            opened.hybrid_radius(w.queries[0], term)
            opened.hybrid_topk(w.queries[0], term)
    out = []
    for ask, truth in kinds:
        seconds, found = [], []
        for i in w.measured:
            started = time.perf_counter()
            ids = ask(i)
            seconds.append(time.perf_counter() - started)
            found.append(numbers(ids))
        out.append(latency(seconds, found, truth))
    return out[0], out[1], out[2]


PROBE_QUERY = "probe_query.npy"


def probe(engine: str, directory: Path, settings: Settings, term: str) -> dict[str, float]:
    """In this process (``--probe``): open ``directory``, answer one hybrid top-K query, report
    the seconds and VmRSS.  The engine's modules are imported before the clock starts."""
    if engine == "lancedb":
        import lancedb  # noqa: F401
    q = np.load(directory.parent / PROBE_QUERY)
    before = rss_mb()
    started = time.perf_counter()
    opened = ENGINES[engine].open(directory, settings)
    opened.hybrid_topk(q, term)
    return {"open": time.perf_counter() - started, "rss": rss_mb(), "rss_before": before}


def open_in_subprocess(engine: str, directory: Path, w: Workload) -> dict[str, float]:
    np.save(directory.parent / PROBE_QUERY, w.queries[0])
    done = subprocess.run(
        [sys.executable, __file__, "--probe", engine, str(directory),
         json.dumps(asdict(w.settings)), w.term_of(0)],
        capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"reopening the {engine} index failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(engine: Engine, w: Workload, exact: Answers, work: Path) -> Figures:
    directory = work / w.name / engine.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    engine.build(w, directory)
    build = time.perf_counter() - started
    reopened = open_in_subprocess(engine.name, directory, w)
    opened = engine.open(directory, w.settings)
    try:
        hybrid_radius, radius, hybrid_topk = run_queries(opened, w, exact)
    finally:
        opened.close()
    shutil.rmtree(directory, ignore_errors=True)
    imported = "numpy, Faiss, ebr" + (", LanceDB" if engine.name == "lancedb" else "")
    print(f"  {engine.label}: build {build:.1f} s, open {reopened['open']:.2f} s, "
          f"{reopened['rss']:,.0f} MiB ({reopened['rss_before']:,.0f} MiB before opening, with "
          f"{imported} imported); hybrid radius {hybrid_radius.text()}, radius "
          f"{radius.text()}, hybrid top-{w.settings.k} {hybrid_topk.text()}", flush=True)
    return Figures(build, reopened["open"], reopened["rss"], hybrid_radius, radius, hybrid_topk)


# -- the table ----------------------------------------------------------------------------------

def ratio(value: float, faiss_value: float | None) -> str:
    return "" if faiss_value is None or not faiss_value else f"{value / faiss_value:.1f}x"


def table(w: Workload, figures: dict[str, Figures], at_scale: bool) -> str:
    """The markdown table: a column per engine, ebr's and LanceDB's ratios to Faiss, the target
    and whether ebr meets it (absolute targets only ``at_scale``: 1M x 128)."""
    names = list(figures)
    base = figures.get("faiss")
    ebr = figures.get("ebr")
    k = w.settings.k
    ratios = [f"{ENGINES[n].short} / Faiss" for n in names if n != "faiss" and base]
    header = ["figure", *(ENGINES[n].label for n in names), *ratios, "target for ebr", "ebr meets it"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def row(label: str, cell: Callable[[Figures], str], value: Callable[[Figures], float],
            target: str, met: Callable[[Figures], bool] | None) -> None:
        cells = [label, *(cell(figures[n]) for n in names)]
        if base:
            cells += [ratio(value(figures[n]), value(base)) for n in names if n != "faiss"]
        verdict = "" if ebr is None or met is None else ("yes" if met(ebr) else "no")
        lines.append("| " + " | ".join([*cells, target, verdict]) + " |")

    def twice_faiss(pick: Callable[[Figures], Latency], recall: float = 0.0
                    ) -> Callable[[Figures], bool] | None:
        if base is None:
            return None
        return lambda f: (pick(f).p50 <= 2 * pick(base).p50 and pick(f).p99 <= 2 * pick(base).p99
                          and pick(f).recall >= recall)

    def absolute(limit: float, pick: Callable[[Figures], float]) -> Callable[[Figures], bool] | None:
        return (lambda f: pick(f) <= limit) if at_scale else None

    row("hybrid: term AND radius nn, p50 / p99, recall",
        lambda f: f"{f.hybrid_radius.text()}, {f.hybrid_radius.recall:.3f}",
        lambda f: f.hybrid_radius.p50, "<= 2x Faiss (p50 and p99)",
        twice_faiss(lambda f: f.hybrid_radius))
    row("radius nn, no constraint, p50 / p99, recall (mean results)",
        lambda f: f"{f.radius.text()}, {f.radius.recall:.3f} ({f.radius.mean_results:.0f})",
        lambda f: f.radius.p50, "<= 2x Faiss", twice_faiss(lambda f: f.radius))
    row(f"hybrid top-{k}, p50 / p99, recall",
        lambda f: f"{f.hybrid_topk.text()}, {f.hybrid_topk.recall:.3f}",
        lambda f: f.hybrid_topk.p50, "<= 2x Faiss at recall >= 0.99",
        twice_faiss(lambda f: f.hybrid_topk, 0.99))
    row("open (and first query), fresh process", lambda f: f"{f.open:.2f} s", lambda f: f.open,
        "<= 1 s at 1M", absolute(1.0, lambda f: f.open))
    row("resident memory after open (VmRSS)", lambda f: f"{f.rss:,.0f} MiB", lambda f: f.rss,
        "<= 800 MiB at 1M", absolute(800.0, lambda f: f.rss))
    row("build (ingest + train + indexes)", lambda f: f"{f.build:.1f} s", lambda f: f.build,
        "<= 45 s at 1M", absolute(45.0, lambda f: f.build))
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = [f"python {platform.python_version()}", f"faiss {faiss.__version__}"]
    try:
        import lancedb
        versions.append(f"lancedb {lancedb.__version__}")
    except ImportError:
        pass
    return f"{platform.machine()} {model}, {os.cpu_count()} cores; {', '.join(versions)}; 1 thread"


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_workload(w: Workload, engines: Sequence[Engine], work: Path, at_scale: bool) -> None:
    s = w.settings
    print(f"\n## {w.name}: {w.description}; nlist {s.nlist}, nprobe {s.nprobe}, radius "
          f"{s.radius:.3f}, {len(w.measured)} queries after {w.warmup} warm-up queries of each kind"
          + (" and one per measured term" if w.warm_terms else " (cold: no warm-up per term)"),
          flush=True)
    started = time.perf_counter()
    exact = exact_answers(w, w.measured)
    print(f"  exact answers in {time.perf_counter() - started:.1f} s; load average {load()}", flush=True)
    figures = {e.name: measure(e, w, exact, work) for e in engines}
    print(f"\nload average after: {load()}\n")
    print(table(w, figures, at_scale))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        engine, directory, settings, term = sys.argv[2:6]
        print(json.dumps(probe(engine, Path(directory), Settings(**json.loads(settings)), term)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", choices=("synthetic", "homedepot", "both"), default="both")
    ap.add_argument("--docs", type=int, default=1_000_000, help="synthetic documents")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=1000, help="synthetic data's clusters and nlist")
    ap.add_argument("--queries", type=int, default=200, help="measured queries of each kind")
    ap.add_argument("--radius", type=float, default=0.25, help="synthetic workload's radius")
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--model", type=Path, help="a model directory (the homedepot workload)")
    ap.add_argument("--data", type=Path, default=None, help="the Home Depot data directory")
    ap.add_argument("--work", type=Path, default=None, help="where indexes are built (default: temporary)")
    ap.add_argument("--engines", default="ebr,faiss,lancedb")
    ap.add_argument("--quick", action="store_true",
                    help="20,000 synthetic documents, 100 clusters, 50 queries: a smoke run")
    ap.add_argument("--cold", action="store_true",
                    help="no warm-up query per measured term (see Workload.warm_terms)")
    args = ap.parse_args()
    if args.quick:
        args.docs, args.clusters, args.queries = 20_000, 100, 50
    faiss.omp_set_num_threads(1)
    engines = [ENGINES[name] for name in args.engines.split(",")]
    if any(e.name == "lancedb" for e in engines):
        try:
            import lancedb  # noqa: F401
        except ImportError:
            raise SystemExit("LanceDB is not installed: pip install -e '.[bench]' "
                             "(or --engines ebr,faiss)") from None
    print(f"machine: {machine()}; load average {load()}")
    with tempfile.TemporaryDirectory(prefix="ebr-peers-", dir=args.work) as tmp:
        if args.workload in ("synthetic", "both"):
            w = synthetic(args.docs, args.dim, args.clusters, args.queries, args.radius,
                          args.nprobe)
            w.warm_terms = not args.cold
            run_workload(w, engines, Path(tmp),
                         at_scale=args.docs >= 1_000_000 and args.dim == 128)
        if args.workload in ("homedepot", "both"):
            if args.model is None:
                print("\nhomedepot: skipped (no --model DIR given)")
            else:
                from homedepot_data import DEFAULT_DATA_DIR
                w = homedepot(args.model, args.data or DEFAULT_DATA_DIR, args.queries,
                              args.nprobe)
                w.warm_terms = not args.cold
                run_workload(w, engines, Path(tmp), at_scale=False)


if __name__ == "__main__":
    main()
