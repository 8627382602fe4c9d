"""Executing a plan over one snapshot: every node to a bitmap of document numbers.

Semantics are :mod:`ebr.stores.reference`'s with ``path_context=False`` (each node on its own, as
push-down arranged): terms read posting lists; ``and``/``or``/``difference`` are bitmap
algebra; ``nothing`` is empty; ``within`` verifies the exact cosine radius over its
candidates that have the key, vectorised (:mod:`ebr.stores.local.vectors`); top-K ``nn`` takes the
``k`` nearest by (distance, id) among the documents its constraint admits; ``match`` scores
its documents by BM25 over the postings and each document's number of terms
(:mod:`ebr.stores.local.lengths`), and in top-K mode keeps the ``k`` best by (score, id).

Every node is evaluated whole, even under an ``and`` already known empty, because each hit
reports every branch it satisfies; each node once (a pushed-down constraint shares its
terms with the siblings it came from).

Top-K chooses between two executions (reported in the stats): ``exact`` over every admitted
document, or ``probe``: only the admitted documents in the ``nprobe`` clusters nearest the
query (the node's ``:nprobe``, else the key's default), as OpenSearch's IVF search does.
Exact is chosen when the admitted set is at most ``exact_threshold`` documents (cheap
enough, its rows gathered from anywhere, and then the answer is exact), when the key has
no trained quantizer, when the node says ``exact``, or when the probed clusters hold fewer
than ``k`` admitted documents (probing would return fewer than asked).  A probe reads its
clusters by bitmap or by scan (:meth:`Execution._scan`, reported in the stats as well).

Probing a tight constraint loses recall: the admitted documents in the nearest clusters
are few, the rest of the probed clusters' are far.  The probed clusters hold about
``admitted * nprobe / nlist`` admitted documents, so the default threshold (5,000) leaves
about 80 of them at nlist 1000 and nprobe 16, whatever the index's size: top-10 recall
0.996 on ``bench/local_store.py``'s data, against 0.97 at 2,000; on
``bench/embedded_peers.py``'s hybrid top-10 at 1M, 0.994 against 0.985 at 3,000, 0.976 at
2,000 and 0.936 always probing, so 5,000 is the lowest that keeps 0.99.

Compressed verification: when the key keeps PQ codes (:mod:`ebr.quantization.product`), a probing
``within`` (one whose candidates name probe clusters) and a probing top-K first score their
candidates by code and verify exactly only the promising ones (:class:`Refine`).  What they
return is still exact; what they may miss are documents the codes misjudge by more than the
margin, the same kind of approximation as probing.  Exact requests (``:exact``, or a
``within`` that does not probe) never use codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap

from ebr.errors import PlanError
from ebr.mappings.schema import Schema
from ebr.planning.query_vectors import Vectors, query_vector
from ebr.planning.rules.expand_nn import probe_split
from ebr.quantization.product import CodedDistances
from ebr.query.nodes import NN, And, Difference, Match, Node, Nothing, Or, Term, Within
from ebr.stores import bm25
from ebr.stores.local.bitmaps import EMPTY, Bits, DocNums, from_array, to_array
from ebr.stores.local.selection import select
from ebr.stores.local.snapshot import Snapshot
from ebr.stores.local.term_rows import TermRows, in_clusters
from ebr.stores.local.vectors import F64, QueryDistances, Rows, VectorTable, slice_rows
from ebr.stores.protocol import ProbeChoice, ProbeRead, TopKChoice, TopKStrategy

#: Admitted documents up to which top-K is exact without considering probing.
EXACT_THRESHOLD = 5_000
#: How far past the radius a code's distance may be and its row still be verified: a few
#: times the typical PQ error at pq_m = d/4 on clustered data.
REFINE_MARGIN = 0.05
#: Top-K verifies exactly this many times ``k`` of the rows the codes rank best.
REFINE_FACTOR = 4
#: ... and at least ``k +`` this many, so that small ``k`` are not left to the codes alone.
REFINE_EXTRA = 32
#: What computing the distance of a row gathered from anywhere costs, in rows scanned in
#: place (a cluster of the layout): 5 to 9 for 16k random rows among 1M at 128 dimensions
#: on a loaded machine; set low, as the bitmap read does less work per row in Python.
#: Checked on ``bench/embedded_peers.py``'s hybrid radius at 1M (nprobe 16, both reads of
#: each query timed in turn): the bitmap read was the faster at every share measured, 0.3x
#: to 0.8x of the scan's time up to the most popular location's 20%, so scanning from a
#: quarter on is on the safe side.
GATHER_COST = 4


@dataclass(frozen=True)
class Refine:
    """How many of the candidates scored by PQ codes go on to exact verification."""

    margin: float = REFINE_MARGIN
    factor: int = REFINE_FACTOR

    def __post_init__(self) -> None:
        if not (self.margin >= 0 and np.isfinite(self.margin)):
            raise ValueError(f"refine_margin must be a finite number >= 0, got {self.margin}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 1:
            raise ValueError(f"refine_factor must be a whole number >= 1, got {self.factor!r}")

    def keep(self, k: int) -> int:
        return max(k * self.factor, k + REFINE_EXTRA)


@dataclass(frozen=True)
class Scanned:
    """A probing clause's clusters read in place: their rows, the rows' float32 distances
    (empty when the key keeps codes), the documents admitted (None: all present ones) and
    how many of the rows the constraint is estimated to admit."""

    rows: Rows
    dist: F64
    allowed: Bits | None
    expected: int


@dataclass(frozen=True)
class TextScores:
    """What a ``match`` node matched: document numbers ascending and their BM25 scores."""

    docs: DocNums
    scores: npt.NDArray[np.float64]


@dataclass(frozen=True)
class VectorMatch:
    """What a ``within`` or top-K ``nn`` node matched: document numbers ascending, their
    distances, and the clusters it probed (nearest first), None when it did not probe."""

    key: str
    docs: DocNums
    distances: npt.NDArray[np.float64]
    probes: tuple[int, ...] | None
    topk: bool


class Execution:
    """One search's evaluation: bitmaps per node, vector matches, and the work counted."""

    def __init__(self, snapshot: Snapshot, schema: Schema, vectors: Vectors,
                 exact_threshold: int = EXACT_THRESHOLD, refine: Refine = Refine(),
                 term_rows: TermRows | None = None) -> None:
        self.snapshot = snapshot
        self.schema = schema
        self.vectors = vectors
        self.exact_threshold = exact_threshold
        self.refine = refine
        self.term_rows = TermRows() if term_rows is None else term_rows
        # By node identity (the plan outlives the execution): hashing a node hashes its
        # whole subtree, which costs more than most bitmap operations here.
        self._bitmaps: dict[int, tuple[Node, Bits]] = {}
        self._matches: dict[int, VectorMatch] = {}
        self._texts: dict[int, TextScores] = {}
        self.topk: list[tuple[Node, TopKStrategy, int, int, int | None]] = []
        self.probes: list[tuple[Node, ProbeRead, int, int]] = []
        self.documents_scanned = 0
        self.verify_seconds = 0.0
        self._distances: dict[str, QueryDistances] = {}
        self._coded: dict[str, CodedDistances] = {}

    @property
    def candidates_verified(self) -> int:
        return sum(d.verified for d in self._distances.values())

    @property
    def candidates_by_codes(self) -> int:
        return sum(d.scored for d in self._coded.values())

    def topk_choices(self, names: dict[int, str]) -> tuple[TopKChoice, ...]:
        """The top-K executions, named by ``names`` (``id(node)`` -> branch name)."""
        return tuple(TopKChoice(names.get(id(node), "?"), strategy, admitted, verified, nprobe)
                     for node, strategy, admitted, verified, nprobe in self.topk)

    def probe_choices(self, names: dict[int, str]) -> tuple[ProbeChoice, ...]:
        """How the probing vector clauses read their clusters, named as :meth:`topk_choices`."""
        return tuple(ProbeChoice(names.get(id(node), "?"), read, rows, expected)
                     for node, read, rows, expected in self.probes)

    def bitmap(self, node: Node) -> Bits:
        """The documents ``node`` matches (evaluated once per node)."""
        found = self._bitmaps.get(id(node))
        if found is None:
            found = (node, self._evaluate(node))
            self._bitmaps[id(node)] = found
        return found[1]

    def match(self, node: NN | Within) -> VectorMatch:
        """What an evaluated vector clause matched, with distances."""
        return self._matches[id(node)]

    def text(self, node: Match) -> TextScores:
        """What an evaluated ``match`` clause matched, with BM25 scores."""
        return self._texts[id(node)]

    def _evaluate(self, node: Node) -> Bits:
        execute = NODE_HANDLERS.get(type(node))
        if execute is None:
            raise PlanError(f"the local store cannot execute {type(node).__name__}")
        return execute(self, node)

    def _term(self, node: Term) -> Bits:
        bm = self.snapshot.term(f"{node.namespace}:{node.value}")
        self.documents_scanned += len(bm)
        return bm

    def _nothing(self, node: Nothing) -> Bits:
        return EMPTY

    def _and(self, node: And) -> Bits:
        parts = sorted((self.bitmap(c) for c in node.operands), key=len)
        return reduce(lambda a, b: a & b, parts[1:], parts[0])

    def _or(self, node: Or) -> Bits:
        return BitMap.union(*(self.bitmap(c) for c in node.operands))

    def _difference(self, node: Difference) -> Bits:
        first, *rest = (self.bitmap(c) for c in node.operands)
        return first - BitMap.union(*rest)

    # -- text clauses -----------------------------------------------------------------------

    def _match(self, node: Match) -> Bits:
        """Documents holding at least ``minimum_should_match`` of the terms, scored by BM25
        (:mod:`ebr.stores.bm25`); in top-K mode the ``k`` best (then lowest ids) of those its
        constraint admits."""
        postings = [self.snapshot.term(f"{node.namespace}:{v}") for v in node.values]
        self.documents_scanned += sum(map(len, postings))
        least = node.minimum_should_match
        if least >= len(postings):
            matched = reduce(lambda a, b: a & b, sorted(postings, key=len))
        else:
            matched = BitMap.union(*postings)
        if node.constraint is not None:
            matched = matched & self.bitmap(node.constraint)
        docs = to_array(matched)
        scores = np.zeros(len(docs), np.float64)
        held = np.zeros(len(docs), np.int32)
        stats = self.snapshot.lengths.get(node.namespace)
        if stats is not None and len(docs):
            for posting in postings:
                if posting:
                    inside = np.searchsorted(docs, to_array(posting & matched))
                    scores[inside] += bm25.idf(len(posting), stats.documents)
                    held[inside] += 1
            scores *= bm25.length_factor(stats.lengths[docs], stats.average)
        if 1 < least < len(postings):
            enough = held >= least
            docs, scores = docs[enough], scores[enough]
        if node.k is not None and len(docs) > node.k:
            ids = self.snapshot.ids
            best = np.sort(select(node.k, [-scores], lambda i: ids[int(docs[i])], len(docs)))
            docs, scores = docs[best], scores[best]
        self._texts[id(node)] = TextScores(docs, scores)
        return from_array(docs)

    # -- vector clauses ---------------------------------------------------------------------

    def _table(self, key: str) -> tuple[VectorTable, QueryDistances]:
        table = self.snapshot.tables.get(key)
        if table is None or self.schema.key(key) is None:
            raise PlanError(f"unknown embedding key {key!r}; the index has: "
                            f"{', '.join(sorted(self.snapshot.tables)) or 'none'}")
        distances = self._distances.get(key)
        if distances is None:
            distances = QueryDistances(table, query_vector(key, self.vectors, self.schema))
            self._distances[key] = distances
        return table, distances

    def _approximate(self, key: str, table: VectorTable, query: QueryDistances,
                     rows: Rows) -> npt.NDArray[np.float32] | None:
        """Distances of ``rows`` by PQ code, or None when the key keeps no codes."""
        product = self.snapshot.products.get(key)
        if product is None or not table.coded:
            return None
        coded = self._coded.get(key)
        if coded is None:
            coded = CodedDistances(product, query.q32)
            self._coded[key] = coded
        return coded.distances(table.codes, table.clusters, table.code_norms, rows)

    def _within(self, node: Within) -> Bits:
        table, distances = self._table(node.key)
        split = probe_split(node.key, node.candidates)
        probes = None if split is None else split[0]
        scan = None
        admitted: Bits | None = None
        if split is not None and table.body:
            # The documents the constraint admits: a row's document is live, so in every
            # posting it is in, and present in the table (no & with ``present`` needed).
            constraint = sorted((self.bitmap(c) for c in split[1]), key=len)
            admitted = reduce(lambda a, b: a & b, constraint[1:], constraint[0]) \
                if constraint else None
            scan = self._scan(node, table, distances, split[0], admitted,
                              node.radius + distances.margin)
        start = time.perf_counter()
        if scan is not None:
            rows, dist = scan.rows, scan.dist
            approx = self._approximate(node.key, table, distances, rows)
            if approx is None:  # scanned exactly: only the rows near the radius came back
                keep = distances.admitted(rows, scan.allowed)
                rows, dist = rows[keep], dist[keep]
            else:
                rows = rows[approx <= node.radius + self.refine.margin]
                rows = rows[distances.admitted(rows, scan.allowed)]
                dist = distances.screen(rows)
            inside, exact = distances.decide(rows, dist, node.radius)
            found = table.docnums[rows[inside]]
            order = np.argsort(found)
            matched, dist = found[order], exact[order]
        else:
            if probes is not None and split is not None and table.body:  # read by bitmap
                rows = self._probed_rows(node.key, table, distances, probes, split[1], admitted)
                docs = table.docnums[rows]
            else:
                allowed = table.present if node.candidates is None else (
                    self.bitmap(node.candidates) & table.present)
                docs = to_array(allowed)
                rows = table.row_of(docs)
            if probes is not None:
                approx = self._approximate(node.key, table, distances, rows)
                if approx is not None:
                    promising = approx <= node.radius + self.refine.margin
                    docs, rows = docs[promising], rows[promising]
            inside, dist = distances.within(rows, node.radius)
            matched = docs[inside]
            if probes is not None:  # the probed rows are in cluster order
                order = np.argsort(matched)
                matched, dist = matched[order], dist[order]
        self._matches[id(node)] = VectorMatch(node.key, matched, dist, probes, topk=False)
        self.verify_seconds += time.perf_counter() - start
        return from_array(matched)

    def _scan(self, node: Within | NN, table: VectorTable, distances: QueryDistances,
              probes: tuple[int, ...], allowed: Bits | None,
              near: float | None = None) -> Scanned | None:
        """The probed clusters' rows, their float32 distances (none when the key keeps
        codes: those decide first) and ``allowed`` (the documents the constraint admits,
        None: every present one), when scanning the clusters is estimated cheaper than gathering
        the rows their posting lists leave after the constraint (recorded either way);
        else None.  ``near``: only the rows whose float32 distance is at most this are kept
        (a radius clause's)."""
        slices, tail = table.probed(probes)
        scanned = sum(b - a for a, b in slices) + len(tail)
        share = 1.0 if allowed is None else (
            allowed.intersection_cardinality(table.present) / max(1, len(table.present)))
        expected = round(share * scanned)
        read: ProbeRead = "scan" if expected * GATHER_COST >= scanned else "bitmap"
        self.probes.append((node, read, scanned, expected))
        if read == "bitmap":
            return None
        self.documents_scanned += scanned  # the clusters' members, read from the layout
        if table.coded:
            rows = np.concatenate([slice_rows(slices), tail])
            return Scanned(rows, np.empty(0), allowed, expected)
        rows, dist = (distances.scan(slices, tail) if near is None
                      else distances.scan_near(slices, tail, near))
        return Scanned(rows, dist, allowed, expected)

    def _probed_rows(self, key: str, table: VectorTable, distances: QueryDistances,
                     probes: tuple[int, ...], constraint: tuple[Node, ...],
                     admitted: Bits | None) -> Rows:
        """The rows of the documents ``admitted`` (the present ones the ``constraint``
        operands all match; None: every present one) in clusters ``probes``: those of the
        constraint's smallest term by its ascending rows (:mod:`ebr.stores.local.term_rows`),
        then checked against the rest of the constraint."""
        terms = [c for c in constraint if type(c) is Term]
        if terms:
            driver = min(terms, key=lambda t: len(self.bitmap(t)))
            rows = in_clusters(table, self._kept_rows(key, table, driver), probes)
            if len(constraint) > 1:
                rows = rows[distances.admitted(rows, admitted)]
        else:
            docs = to_array(table.present if admitted is None else admitted & table.present)
            rows = in_clusters(table, np.sort(table.row_of(docs)), probes)
        self.documents_scanned += len(rows)
        return rows

    def _kept_rows(self, key: str, table: VectorTable, term: Term) -> Rows:
        """The rows of ``term``'s documents in ``table``, ascending (kept between searches)."""
        name = f"{term.namespace}:{term.value}"
        return self.term_rows.rows(key, name, table, self.snapshot.term(name))

    def _top_k(self, node: NN) -> Bits:
        if node.k is None:
            raise PlanError("radius-mode nn must be planned before the store runs it (probe "
                            "clusters chosen): use ebr.plan with the store's quantizers")
        table, distances = self._table(node.key)
        # What the constraint admits (None: every present document); rows are only ever
        # those of present documents, so no & with ``present`` unless listing them.
        admitted = None if node.constraint is None else self.bitmap(node.constraint)
        strategy: TopKStrategy = "exact"
        probes: tuple[int, ...] | None = None
        nprobe: int | None = None
        quantizer = self.snapshot.quantizers.get(node.key)
        start = time.perf_counter()
        verified_before = distances.verified
        ids, docnums = self.snapshot.ids, table.docnums
        id_of = lambda row: ids[int(docnums[row])]  # noqa: E731
        chosen_rows: Rows | None = None
        rows: Rows | None = None  # the probed rows to rank, when read by bitmap
        count = len(table.present) if admitted is None else (  # reported: chosen among
            admitted.intersection_cardinality(table.present))
        if quantizer is not None and not node.exact and count > self.exact_threshold:
            spec = self.schema.key(node.key)
            nprobe = node.nprobe or (spec.quantizer.default_nprobe if spec else 1)
            chosen = tuple(quantizer.probe(distances.q32, nprobe))
            scan = self._scan(node, table, distances, chosen, admitted) if table.body else None
            if scan is not None:
                found = self._scan_top_k(node, table, distances, scan, id_of)
                if found is not None:
                    strategy, probes, (chosen_rows, dist) = "probe", chosen, found
                    count = scan.expected
            else:
                constraint = () if node.constraint is None else (
                    node.constraint.operands if type(node.constraint) is And
                    else (node.constraint,))
                probed = self._probed_rows(node.key, table, distances, chosen, constraint,
                                           admitted)
                if len(probed) >= node.k:
                    strategy, probes, rows, count = "probe", chosen, probed, len(probed)
        if chosen_rows is None:
            if rows is None and type(node.constraint) is Term:
                rows = self._kept_rows(node.key, table, node.constraint)
            elif rows is None:
                rows = table.row_of(to_array(table.present if admitted is None
                                             else admitted & table.present))
            keep = self.refine.keep(node.k)
            if strategy == "probe" and len(rows) > keep:
                approx = self._approximate(node.key, table, distances, rows)
                if approx is not None:
                    rows = rows[np.argpartition(approx, keep - 1)[:keep]]
            chosen_rows, dist = distances.nearest(rows, node.k, id_of)
        found_docs = docnums[chosen_rows]
        order = np.argsort(found_docs, kind="stable")
        chosen_docs, chosen_dist = found_docs[order], dist[order]
        self._matches[id(node)] = VectorMatch(node.key, chosen_docs, chosen_dist, probes, topk=True)
        self.topk.append((node, strategy, count, distances.verified - verified_before,
                          nprobe if strategy == "probe" else None))
        self.verify_seconds += time.perf_counter() - start
        return from_array(chosen_docs)

    def _scan_top_k(self, node: NN, table: VectorTable, distances: QueryDistances,
                    scan: Scanned, id_of: Callable[[int], str]) -> tuple[Rows, F64] | None:
        """The ``k`` nearest admitted rows among the scanned ones, None when fewer than
        ``k`` are admitted (then the search is exact)."""
        assert node.k is not None
        rows, dist, allowed = scan.rows, scan.dist, scan.allowed
        if table.coded:  # the codes choose the rows verified
            keep = self.refine.keep(node.k)
            rows = rows[distances.admitted(rows, allowed)]
            if len(rows) < node.k:
                return None
            approx = self._approximate(node.key, table, distances, rows)
            assert approx is not None
            if len(rows) > keep:
                rows = rows[np.argpartition(approx, keep - 1)[:keep]]
            return distances.nearest(rows, node.k, id_of)
        return distances.nearest_admitted(rows, dist, allowed, node.k, id_of)


#: How each node type executes: (execution, node) -> the documents it matches.
NODE_HANDLERS: dict[type[Node], Callable[[Execution, Any], Bits]] = {
    Term: Execution._term,
    And: Execution._and,
    Or: Execution._or,
    Difference: Execution._difference,
    Nothing: Execution._nothing,
    Within: Execution._within,
    NN: Execution._top_k,
    Match: Execution._match,
}
