"""The sweep: coarse clusters x codes x nprobe, measured against exact search (EBR §4.1).

Each setting is what a key's schema can ask for (``quantizer.nlist``, ``pq_m``, ``opq``)
and a query's ``:nprobe``, run with ebr's own pieces: spherical k-means
(:func:`ebr.quantization.kmeans.train_centroids`), the coarse quantizer's probes and
assignments (:class:`~ebr.quantization.coarse.CentroidQuantizer`) and the PQ/OPQ codes of
residuals (:mod:`ebr.quantization.product`).  A query scans the documents of its ``nprobe``
nearest clusters and ranks them by exact distance (``Flat``) or by their codes alone
(``PQm``, ``OPQm,PQm``: EBR Table 3's figures, before any exact refinement).  Cost is the
number of documents scanned, not nprobe: clusters are unbalanced, so equal nprobe scans
different amounts at different nlist.

Radius mode (``(nn key :radius r :nprobe n)``, verified exactly in both stores) depends on
nlist and nprobe only: the matched count and its recall against exact radius search.

The candidates of nprobe ``n`` are a prefix of those of the largest nprobe (clusters are
scanned nearest first), so each query is scored once per (nlist, codes) and every nprobe
reads a prefix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ebr.errors import TuningError
from ebr.quantization.coarse import CentroidQuantizer, assign, unit_rows
from ebr.quantization.kmeans import train_centroids
from ebr.quantization.product import KSUB, CodedDistances, train_product
from ebr.tuning.neighbours import count_within, exact_neighbours, one_recall_at, recall_at
from ebr.tuning.sources import TuningData

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

#: EBR's 1-recall@10 and recall@100.
ONE_RECALL_K = 10
RECALL_K = 100
#: The default radii are the median distances of these neighbours (about 10 and 100 matches).
RADIUS_NEIGHBOURS = (10, 100)
#: OPQ's alternating steps in a quick sweep (each costs several PQ trainings; Faiss runs 50).
QUICK_OPQ_ITERATIONS = 8
_KEY = "tune"  # the key name training errors would use


@dataclass(frozen=True, slots=True)
class Codes:
    """How candidates are ranked: exact distances (``pq_bytes == 0``) or ``pq_bytes`` 8-bit
    PQ codes of the residual, after an OPQ rotation when ``opq``."""

    pq_bytes: int = 0
    opq: bool = False

    @property
    def name(self) -> str:
        """Faiss's factory spelling, as in EBR Table 3."""
        if not self.pq_bytes:
            return "Flat"
        pq = f"PQ{self.pq_bytes}"
        return f"OPQ{self.pq_bytes},{pq}" if self.opq else pq

    def bytes_per_vector(self, dimension: int) -> int:
        return self.pq_bytes or 4 * dimension


@dataclass(frozen=True)
class SweepSettings:
    """The grid: every nlist x codes x nprobe (nprobe values above an nlist are skipped)."""

    nlists: tuple[int, ...]
    nprobes: tuple[int, ...]
    codes: tuple[Codes, ...] = (Codes(),)
    #: Cosine radii for radius mode; empty: the median distance of the 10th and 100th neighbours.
    radii: tuple[float, ...] = ()
    seed: int = 0
    niter: int = 20
    #: OPQ's alternating steps (None: Faiss's 50, as the stores train; quick sweeps take 8).
    opq_iterations: int | None = None

    @classmethod
    def default(cls, rows: int, dimension: int, *, quick: bool = False, opq: bool = True
                ) -> SweepSettings:
        """nlist around sqrt(rows) (x1/4, x1, x4 as powers of two, at least 16 rows per
        cluster), nprobe 1..256 in powers of two, PQ at d/16..d/2 bytes (EBR: about d/4),
        with and without OPQ.  ``quick``: nlist ~ sqrt(rows), nprobe to 32, d/4 bytes only."""
        centre = _power_of_two(math.sqrt(rows))
        scales = (1,) if quick else (4, 1, 0.25)
        nlists = sorted({max(1, min(int(centre / s), rows // 16)) for s in scales})
        nprobes = tuple(2 ** i for i in range(6 if quick else 9))
        divisors = (4,) if quick else (16, 8, 4, 2)
        sizes = sorted({dimension // k for k in divisors
                        if dimension // k >= 1 and dimension % (dimension // k) == 0})
        codes = [Codes()] + [Codes(m, o) for m in sizes for o in ((False, True) if opq else (False,))]
        return cls(tuple(nlists), nprobes, tuple(codes),
                   opq_iterations=QUICK_OPQ_ITERATIONS if quick else None)

    def check(self, rows: int, dimension: int) -> None:
        """Refuse what the data cannot support, before any training."""
        if not self.nlists or not self.nprobes or not self.codes:
            raise TuningError("nothing to sweep: give at least one nlist, nprobe and codes")
        for nlist in self.nlists:
            if not 1 <= nlist <= rows:
                raise TuningError(f"nlist {nlist} must be between 1 and the {rows} vectors")
        if min(self.nprobes) < 1:
            raise TuningError(f"nprobe must be >= 1; got {min(self.nprobes)}")
        for c in self.codes:
            if c.pq_bytes and (c.pq_bytes < 0 or dimension % c.pq_bytes):
                raise TuningError(f"{c.pq_bytes} PQ bytes must divide the dimension {dimension}")
            if c.pq_bytes and rows < KSUB:
                raise TuningError(f"PQ codes need at least {KSUB} vectors to train; got {rows}")
        for r in self.radii:
            if not 0 < r <= 2:
                raise TuningError(f"a cosine radius must be in (0, 2]; got {r}")


@dataclass(frozen=True)
class TopKPoint:
    """One setting's figures, averaged over the queries.  ``truth_*``: against the given
    ground truth (None without one)."""

    nlist: int
    codes: str
    code_bytes: int
    nprobe: int
    scanned: float
    one_recall_at_10: float
    recall_at_100: float
    truth_one_recall_at_10: float | None = None
    truth_recall_at_100: float | None = None


@dataclass(frozen=True)
class RadiusPoint:
    """Radius mode at one (nlist, nprobe): mean matches of exact and probed search, and the
    mean share of each query's exact matches found (over queries with at least one)."""

    radius: float
    nlist: int
    nprobe: int
    scanned: float
    exact_matched: float
    matched: float
    recall: float


@dataclass(frozen=True)
class SweepResult:
    documents: int
    dimension: int
    queries: int
    settings: SweepSettings
    radii: tuple[float, ...]
    topk: tuple[TopKPoint, ...]
    radius: tuple[RadiusPoint, ...]
    #: Exact cosine search against the given ground truth (empty without one).
    exact_vs_truth: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: The trained coarse centroids by nlist (for ``set_quantizer``; not in the JSON).
    centroids: Mapping[int, F32] = field(default_factory=dict, repr=False, compare=False)


def sweep(data: TuningData, settings: SweepSettings, *, progress: bool = False) -> SweepResult:
    """Every setting of ``settings`` on ``data``'s unit vectors, against exact search."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    start = time.perf_counter()
    units, queries = unit_rows(data.base), unit_rows(data.queries)
    settings.check(len(units), units.shape[1])
    exact, distances = exact_neighbours(units, queries, RECALL_K)
    k = exact.shape[1]  # fewer than 100 rows: recall@k over all of them
    truth = _Truth(data.ground_truth, exact)
    radii = settings.radii or tuple(
        round(float(np.median(distances[:, min(n, k) - 1])), 4) for n in RADIUS_NEIGHBOURS)
    exact_counts = count_within(units, queries, radii)
    topk: list[TopKPoint] = []
    radius: list[RadiusPoint] = []
    centroids: dict[int, F32] = {}
    with tqdm(total=len(settings.nlists) * len(settings.codes), desc="tune", unit="setting",
              disable=not progress, leave=False) as bar:
        for nlist in settings.nlists:
            bar.set_postfix_str(f"nlist {nlist}: k-means")
            trained, sample = train_centroids(_KEY, units, nlist, sample_size=None,
                                              seed=settings.seed, niter=settings.niter)
            centroids[nlist] = trained
            quantizer = CentroidQuantizer(trained)
            clusters = assign(quantizer, units)
            nprobes = sorted({n for n in settings.nprobes if n <= nlist}) or [nlist]
            scans = _Scans(quantizer, clusters, queries, nprobes)
            for codes in settings.codes:
                bar.set_postfix_str(f"nlist {nlist}: {codes.name}")
                score = _scorer(codes, units, clusters, trained, sample, settings)
                found, within = scans.run(score, k, radii if not codes.pq_bytes else ())
                for i, nprobe in enumerate(nprobes):
                    topk.append(TopKPoint(
                        nlist, codes.name, codes.bytes_per_vector(units.shape[1]), nprobe,
                        float(scans.scanned[:, i].mean()),
                        one_recall_at(found[i], exact[:, 0], min(ONE_RECALL_K, k)),
                        recall_at(found[i], exact, k), *truth.recalls(found[i])))
                    for j, r in enumerate(radii if within is not None else ()):
                        assert within is not None
                        radius.append(_radius_point(r, nlist, nprobe, scans.scanned[:, i],
                                                    exact_counts[:, j], within[i][:, j]))
                bar.update()
    return SweepResult(len(units), units.shape[1], len(queries), settings, radii, tuple(topk),
                       tuple(radius), truth.exact_figures(), time.perf_counter() - start,
                       centroids)


#: ``score(query index, query, candidate rows) -> distances`` (smaller is nearer).
Scorer = Callable[[int, F32, I64], F32]


def _scorer(codes: Codes, units: F32, clusters: npt.NDArray[np.int32], centroids: F32,
            sample: I64, settings: SweepSettings) -> Scorer:
    if not codes.pq_bytes:
        return lambda _i, q, rows: np.asarray(1.0 - units[rows] @ q, np.float32)
    sampled = units[sample]
    product = train_product(_KEY, sampled, clusters[sample], centroids, codes.pq_bytes,
                            opq=codes.opq, seed=settings.seed,
                            opq_iterations=settings.opq_iterations)
    coded, norms = product.encode(units, clusters)
    return lambda _i, q, rows: CodedDistances(product, q).distances(coded, clusters, norms, rows)


class _Scans:
    """Each query's probes (its ``max(nprobes)`` nearest clusters, nearest first) and the
    documents scanned at each nprobe.  Candidates are gathered per pass, not kept: at a
    million rows they would not fit."""

    def __init__(self, quantizer: CentroidQuantizer, clusters: npt.NDArray[np.int32],
                 queries: F32, nprobes: Sequence[int]) -> None:
        order = np.argsort(clusters, kind="stable").astype(np.int64)
        bounds = np.searchsorted(clusters[order], np.arange(quantizer.nlist + 1))
        self.members = [order[bounds[c]:bounds[c + 1]] for c in range(quantizer.nlist)]
        self.queries, self.nprobes = queries, nprobes
        self.probes = [quantizer.probe(q, nprobes[-1]) for q in queries]
        self.scanned = np.empty((len(queries), len(nprobes)), np.int64)
        for i, probes in enumerate(self.probes):
            sizes = np.cumsum([len(self.members[c]) for c in probes])
            self.scanned[i] = sizes[np.asarray(nprobes) - 1]

    def run(self, score: Scorer, k: int, radii: Sequence[float]
            ) -> tuple[list[I64], list[I64] | None]:
        """Per nprobe: the ``k`` best candidates of each query ``(queries, k)``, -1 padded;
        with ``radii``, the matches within each radius ``(queries, radii)``."""
        found = [np.full((len(self.queries), k), -1, np.int64) for _ in self.nprobes]
        within = [np.empty((len(self.queries), len(radii)), np.int64) for _ in self.nprobes]
        for i, (q, probes) in enumerate(zip(self.queries, self.probes, strict=True)):
            rows = np.concatenate([self.members[c] for c in probes])
            dist = score(i, q, rows)
            inside = [np.cumsum(dist <= r) for r in radii]
            for p, scanned in enumerate(self.scanned[i].tolist()):
                best = _smallest(dist[:scanned], k)
                found[p][i, :len(best)] = rows[best]
                for j, counts in enumerate(inside):
                    within[p][i, j] = counts[scanned - 1] if scanned else 0
        return found, (within if radii else None)


def _smallest(dist: F32, k: int) -> I64:
    """Indices of the ``k`` smallest, smallest first."""
    if len(dist) > k:
        part = np.argpartition(dist, k - 1)[:k]
        return part[np.argsort(dist[part], kind="stable")].astype(np.int64)
    return np.argsort(dist, kind="stable").astype(np.int64)


class _Truth:
    """The optional reference neighbours a user gave (e.g. an L2 ground truth)."""

    def __init__(self, given: I64 | None, exact: I64) -> None:
        self.given = given
        self.k = min(RECALL_K, exact.shape[1], given.shape[1]) if given is not None else 0
        self.exact = exact

    def recalls(self, found: I64) -> tuple[float | None, float | None]:
        if self.given is None:
            return None, None
        return (one_recall_at(found, self.given[:, 0], min(ONE_RECALL_K, self.k)),
                recall_at(found, self.given, self.k))

    def exact_figures(self) -> dict[str, float]:
        one, full = self.recalls(self.exact)
        if one is None or full is None:
            return {}
        return {f"1-recall@{ONE_RECALL_K}": one, f"recall@{self.k}": full}


def _radius_point(radius: float, nlist: int, nprobe: int, scanned: I64, exact: I64,
                  matched: I64) -> RadiusPoint:
    some = exact > 0
    recall = float((matched[some] / exact[some]).mean()) if some.any() else 1.0
    return RadiusPoint(radius, nlist, nprobe, float(scanned.mean()), float(exact.mean()),
                       float(matched.mean()), recall)


def _power_of_two(x: float) -> int:
    return int(2 ** round(math.log2(max(x, 1.0))))
