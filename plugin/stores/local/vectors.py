"""The embeddings of one key in memory, and exact cosine distances over them.

Rows are the vectors as stored (float32, not normalised) with their float64 lengths, so a
distance is computed with the reference evaluator's formula
``1 - (q . d) / (|q| |d|)`` in float64 (:func:`ebr.stores.reference.cosine_distance`): a radius
or a top-K cut-off that falls exactly on a distance (common with small integer-like
vectors) decides the same way in both.  Doing all of it in float64 would double the memory
read, so each search screens in float32 first — one pass of inner products over the rows —
and decides with the reference's own function only the rows whose float32 distance lies
within a proven error bound of the cut-off (a handful, unless vectors repeat).

The float32 error bound: a dot product of ``d`` terms accumulated in float32 is off by at
most ``d * u * sum |q_i d_i| <= d * u * |q| |d|`` (``u = 2**-24``, any summation order), so
the float32 distance is within ``(d + 2) * u`` of the float64 one; :data:`margin` doubles it.

Layout: the rows ``[0, body)`` are sorted by coarse cluster (then document number), cluster
``c`` at ``[starts[c], starts[c + 1])``, so probing a cluster is a sequential scan of one
slice (Faiss's own inner-product kernel, as IVFFlat scans its inverted lists) rather than a
gather of scattered rows; rows appended since (``[body, rows)``, the tail) are in document
order and scanned by their cluster column.  The body is sorted when the table is rebuilt
from the database (a reopen without a usable snapshot file), when its clusters are
re-assigned (training) and when the snapshot file is saved (:meth:`VectorTable.compacted`),
each time into new arrays.

Buffers grow by appending only: rows ``[0, rows)`` of a table never change, so an older
table (held by a search running on an older snapshot) stays valid while a writer appends
rows past its end into the same buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypeVar, cast

import faiss
import numpy as np
import numpy.typing as npt
from pyroaring import BitMap, FrozenBitMap

from ebr.stores.local.bitmaps import EMPTY, Bits, DocNums, from_array, to_array
from ebr.stores.reference import cosine_distance

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
Rows = npt.NDArray[np.int64]
Buffer = TypeVar("Buffer", bound=npt.NDArray[Any])
I32 = npt.NDArray[np.int32]

_U32 = 2.0 ** -24
#: Rows per block in the float32 screen: bounds the gathered copy to a few MB.
BLOCK = 16384
#: Gathered rows from which :meth:`QueryDistances.within` and :meth:`QueryDistances.nearest`
#: screen only those past :meth:`QueryDistances._near_bound`: below it the bound's own NumPy
#: steps cost more than screening every row.
NEAR_BOUND_ROWS = 1024


def margin(dimension: int) -> float:
    """How far a float32 distance may be from the float64 one (twice the proven bound)."""
    return 2.0 * (dimension + 2) * _U32


def append(buffer: Buffer, used: int, new: npt.NDArray[Any]) -> Buffer:
    """``buffer[:used]`` followed by ``new``: written in place past ``used`` when it fits
    (nobody reads past their own ``used``), else into a new buffer twice as large; a
    read-only buffer (mapped from the snapshot file) is always copied first."""
    end = used + len(new)
    if end > len(buffer) or not buffer.flags.writeable:
        grown = np.empty((max(2 * len(buffer), end, 1024), *buffer.shape[1:]), buffer.dtype)
        grown[:used] = buffer[:used]
        buffer = cast(Buffer, grown)
    buffer[used:end] = new
    return buffer


def stacked(rows: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """Equal-length rows (a batch's vectors or codes) as one matrix: ``np.stack`` checks
    each row's shape in Python, four times slower for a batch of ten thousand."""
    return np.concatenate(rows).reshape(len(rows), -1)


@dataclass(frozen=True)
class VectorTable:
    """One key's embeddings: ``rows`` rows in use of append-only buffers.

    ``docnums[r]`` is row ``r``'s document number (ascending in the tail: documents are
    numbered and appended in the same order), ``clusters[r]`` its coarse cluster (-1 before
    training), ``codes[r]`` its PQ code and ``code_norms[r]`` the length of the code's reconstruction
    (:mod:`ebr.quantization.product`; ``codes`` has no columns when the key keeps no codes),
    ``row_by_doc[n]`` the row of document ``n`` (-1 for none; ``span`` entries in use),
    ``present`` the documents whose row is live (a replaced or deleted document's row stays,
    outside ``present``, until the table is compacted or rebuilt); rows ``[0, body)`` are sorted by
    cluster, cluster ``c`` at rows ``[starts[c], starts[c + 1])`` (``starts`` empty when
    there is no body).
    """

    dimension: int
    rows: int
    matrix: F32
    norms: F64
    docnums: DocNums
    clusters: npt.NDArray[np.int32]
    span: int
    row_by_doc: npt.NDArray[np.int32]
    present: FrozenBitMap
    codes: U8 = field(default_factory=lambda: np.empty((0, 0), np.uint8))
    code_norms: F32 = field(default_factory=lambda: np.empty(0, np.float32))
    body: int = 0
    starts: Rows = field(default_factory=lambda: np.empty(0, np.int64))

    @classmethod
    def empty(cls, dimension: int, code_width: int = 0) -> VectorTable:
        return cls(dimension, 0, np.empty((0, dimension), np.float32), np.empty(0),
                   np.empty(0, np.uint32), np.empty(0, np.int32), 0, np.empty(0, np.int32),
                   EMPTY, np.empty((0, code_width), np.uint8), np.empty(0, np.float32))

    @classmethod
    def load(cls, dimension: int, docnums: DocNums, matrix: F32, clusters: I32,
             codes: U8 | None = None, code_norms: F32 | None = None,
             nlist: int = 0) -> VectorTable:
        """The table of these rows (any order), its body sorted by cluster when the key
        has a quantizer of ``nlist`` clusters."""
        width = 0 if codes is None else codes.shape[1]
        table = cls.empty(dimension, width)
        if not len(docnums):
            return table
        if codes is None or code_norms is None:
            codes = np.empty((len(docnums), width), np.uint8)
            code_norms = np.empty(len(docnums), np.float32)
        span = int(docnums.max()) + 1
        return replace(table, rows=len(docnums), span=span,
                       present=FrozenBitMap(from_array(np.sort(docnums))),
                       row_by_doc=np.full(span, -1, np.int32)).laid_out(
            docnums, matrix, clusters, codes, code_norms, nlist)

    def laid_out(self, docnums: DocNums, matrix: F32, clusters: I32, codes: U8,
                 code_norms: F32, nlist: int, norms: F64 | None = None) -> VectorTable:
        """This table with all its rows replaced by these (in new arrays: older tables keep
        theirs), sorted by (cluster, document number) when ``nlist``, else by document
        number; ``present`` and ``span`` stay.  ``norms``: the rows' lengths if known
        (moved with their rows rather than computed again over the whole matrix)."""
        order = (np.lexsort((docnums, clusters)) if nlist
                 else np.argsort(docnums, kind="stable"))
        docnums, clusters = docnums[order], np.ascontiguousarray(clusters[order], np.int32)
        matrix = np.ascontiguousarray(matrix[order], np.float32)
        norms = _norms(matrix) if norms is None else np.ascontiguousarray(norms[order])
        row_by_doc = np.full(self.span, -1, np.int32)
        row_by_doc[docnums] = np.arange(len(docnums), dtype=np.int32)
        starts = (np.searchsorted(clusters, np.arange(nlist + 1)).astype(np.int64) if nlist
                  else np.empty(0, np.int64))
        return replace(self, rows=len(docnums), matrix=matrix, norms=norms,
                       docnums=np.ascontiguousarray(docnums, np.uint32), clusters=clusters,
                       row_by_doc=row_by_doc,
                       codes=np.ascontiguousarray(codes[order], np.uint8),
                       code_norms=np.ascontiguousarray(code_norms[order], np.float32),
                       body=len(docnums) if nlist else 0, starts=starts)

    @cached_property
    def norm_range(self) -> tuple[float, float]:
        """The smallest and largest length of the table's rows (1, 1 when it has none):
        worked out once per table, whose rows never change."""
        norms = self.norms[:self.rows]
        return (float(norms.min()), float(norms.max())) if len(norms) else (1.0, 1.0)

    @property
    def coded(self) -> bool:
        """Whether rows carry PQ codes."""
        return bool(self.codes.shape[1] > 0)

    def appended(self, docnums: DocNums, matrix: F32, clusters: npt.NDArray[np.int32],
                 codes: U8 | None = None, code_norms: F32 | None = None) -> VectorTable:
        """This table with rows added for new documents (ascending numbers, above every
        document the table has seen); ``codes`` and their norms are required when the
        table is :attr:`coded`."""
        if not len(docnums):
            return self
        n = self.rows
        if codes is None or code_norms is None:
            codes = np.empty((len(docnums), self.codes.shape[1]), np.uint8)
            code_norms = np.empty(len(docnums), np.float32)
            if self.coded:
                raise ValueError("a coded table needs codes for its new rows")
        span = int(docnums[-1]) + 1
        index = np.full(span - self.span, -1, np.int32)
        index[docnums.astype(np.int64) - self.span] = np.arange(n, n + len(docnums))
        return replace(
            self, rows=n + len(docnums),
            matrix=append(self.matrix, n, matrix),
            norms=append(self.norms, n, _norms(matrix)),
            docnums=append(self.docnums, n, docnums),
            clusters=append(self.clusters, n, clusters),
            span=span, row_by_doc=append(self.row_by_doc, self.span, index),
            present=FrozenBitMap(self.present | from_array(docnums)),
            codes=append(self.codes, n, codes),
            code_norms=append(self.code_norms, n, code_norms))

    def without(self, docnums: BitMap) -> VectorTable:
        removed = self.present & docnums
        return self if not removed else replace(self, present=FrozenBitMap(self.present - removed))

    def with_clusters(self, clusters: I32, nlist: int, codes: U8 | None = None,
                      code_norms: F32 | None = None) -> VectorTable:
        """This table with every row's cluster (``clusters[r]`` for row ``r``, of
        ``nlist``) and code replaced and its rows sorted by cluster; no ``codes``: the rows
        keep none."""
        n = self.rows
        if codes is None or code_norms is None:
            codes, code_norms = np.empty((n, 0), np.uint8), np.empty(n, np.float32)
        return self.laid_out(self.docnums[:n], self.matrix[:n], clusters, codes, code_norms,
                             nlist, self.norms[:n])

    def compacted(self, nlist: int) -> VectorTable:
        """This table as a reopen that rebuilds would lay it out: the tail sorted into the
        body, the rows of deleted or replaced documents dropped, and the buffers cut to the
        rows in use (views when nothing else changes)."""
        n = self.rows
        if (n == self.body or not nlist) and len(self.present) == n:
            return replace(self, matrix=self.matrix[:n], norms=self.norms[:n],
                           docnums=self.docnums[:n], clusters=self.clusters[:n],
                           row_by_doc=self.row_by_doc[:self.span], codes=self.codes[:n],
                           code_norms=self.code_norms[:n])
        rows = self.row_of(to_array(self.present))
        return self.laid_out(self.docnums[:n][rows], self.matrix[:n][rows],
                             self.clusters[:n][rows], self.codes[:n][rows],
                             self.code_norms[:n][rows], nlist, self.norms[:n][rows])

    def probed(self, probes: tuple[int, ...]) -> tuple[list[tuple[int, int]], Rows]:
        """Where the rows of clusters ``probes`` lie: slices of the body, and tail rows."""
        wanted = known_clusters(self, probes)
        starts, ends = self.starts[wanted].tolist(), self.starts[wanted + 1].tolist()
        tail = np.empty(0, np.int64)
        if self.rows > self.body:
            found = np.isin(self.clusters[self.body:self.rows], probes)
            tail = np.flatnonzero(found).astype(np.int64) + self.body
        return [(a, b) for a, b in zip(starts, ends, strict=True) if b > a], tail

    def row_of(self, docnums: DocNums) -> Rows:
        """The rows of documents known to be ``present``."""
        return self.row_by_doc[docnums].astype(np.int64)


class QueryDistances:
    """Cosine distances from one query vector to rows of a table."""

    def __init__(self, table: VectorTable, query: F32) -> None:
        self.table = table
        self.q32 = np.ascontiguousarray(query, dtype=np.float32)
        self.q64 = self.q32.astype(np.float64)
        self.qnorm = math.sqrt(self.q64.dot(self.q64))  # np.linalg.norm's steps, fewer calls
        self.margin = margin(table.dimension)
        self.verified = 0  # distances computed so far (the query's "candidates verified")

    def screen(self, rows: Rows) -> F64:
        """Float32 distances (within :attr:`margin` of the float64 ones), a block of rows
        at a time: gathered, then Faiss's inner-product kernel (:meth:`_dots`)."""
        return 1.0 - self._gathered_dots(rows) / (self.qnorm * self.table.norms[rows])

    def _gathered_dots(self, rows: Rows) -> F32:
        """The query's float32 inner products with ``rows``, gathered a block at a time."""
        self.verified += len(rows)
        dots = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), BLOCK):
            self._dots(dots[start:], self.table.matrix.take(rows[start:start + BLOCK], axis=0))
        return dots

    def _near_bound(self, limit: float) -> np.float32:
        """A float32 bound below which a row's float32 inner product puts its screen distance
        past ``limit``: a row's screen distance ``1 - dot / (|q| |d|)`` is at most ``limit``
        only if ``dot`` is at least ``(1 - limit) |q| |d|``, so only if it is at least
        ``(1 - limit) |q|`` times the smallest row length in the table (the largest when
        ``1 - limit`` is negative); lowered by 1e-6 in cosine, far more than the roundings of
        the screen's float64 steps, and rounded down to float32 (what it is compared in)."""
        shortest, longest = self.table.norm_range
        cosine = 1.0 - limit - 1e-6
        bound = cosine * self.qnorm * (shortest if cosine >= 0 else longest)
        below: np.float32 = np.nextafter(np.float32(bound), np.float32(-np.inf))
        return below

    def _dots(self, out: F32, matrix: F32) -> None:
        """``out[:len(matrix)]`` = the query's inner products with the rows of contiguous
        ``matrix``, by Faiss's SIMD kernel on this thread (no OpenMP; a BLAS product would
        start BLAS's thread pool, which on a loaded two-core machine waits whole scheduler
        ticks for its threads; any summation order is within the bound)."""
        faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]
            faiss.swig_ptr(out), faiss.swig_ptr(self.q32), faiss.swig_ptr(matrix),
            self.table.dimension, len(matrix))

    def exact(self, rows: Rows) -> F64:
        """Float64 distances, vectorised: the reference's values to an ulp or two (the
        summation order differs), what hits report."""
        t = self.table
        # float32 rows x float64 query accumulate in float64, without BLAS (see _dots)
        dots = np.einsum("ij,j->i", t.matrix[rows], self.q64)
        return 1.0 - dots / (self.qnorm * t.norms[rows])  # type: ignore[no-any-return]

    def reference(self, rows: Rows) -> F64:
        """The reference evaluator's own function, row by row: bit for bit its decision,
        for the few rows whose side of a cut-off the faster paths cannot tell."""
        m = self.table.matrix
        return np.array([cosine_distance(self.q32, m[r]) for r in rows.tolist()], np.float64)

    def scan(self, slices: list[tuple[int, int]], tail: Rows) -> tuple[Rows, F64]:
        """The rows of body ``slices`` and ``tail`` rows (:meth:`VectorTable.probed`) and
        their float32 distances, as :meth:`screen`'s: each slice read in place by Faiss's
        inner-product kernel."""
        return np.concatenate([slice_rows(slices), tail]), self._scanned(slices, tail)

    def scan_near(self, slices: list[tuple[int, int]], tail: Rows,
                  limit: float) -> tuple[Rows, F64]:
        """:meth:`scan`'s rows and distances, only those at most ``limit``: worked out, by
        :meth:`screen`'s formula, only for the rows past :meth:`_near_bound` (the same rows
        and values as screening them all)."""
        dots = self._scanned_dots(slices, tail)
        at = np.flatnonzero(dots >= self._near_bound(limit))
        rows = slice_positions(slices, tail, at)
        dist = 1.0 - dots[at] / (self.qnorm * self.table.norms[rows])
        keep = dist <= limit
        return rows[keep], dist[keep]

    def _scanned(self, slices: list[tuple[int, int]], tail: Rows) -> F64:
        t = self.table
        dots = self._scanned_dots(slices, tail)
        norms = np.concatenate([*(t.norms[a:b] for a, b in slices), t.norms[tail]])
        return 1.0 - dots / (self.qnorm * norms)

    def _scanned_dots(self, slices: list[tuple[int, int]], tail: Rows) -> F32:
        """The query's float32 inner products with the rows of ``slices``, then ``tail``."""
        t = self.table
        dots = np.empty(sum(b - a for a, b in slices) + len(tail), np.float32)
        at = 0
        for a, b in slices:
            self._dots(dots[at:], t.matrix[a:b])
            at += b - a
        if len(tail):
            self._dots(dots[at:], t.matrix.take(tail, axis=0))
        self.verified += len(dots)
        return dots

    def within(self, rows: Rows, radius: float) -> tuple[npt.NDArray[np.bool_], F64]:
        """Which ``rows`` lie within ``radius``, and the distances of those that do: decided
        (:meth:`decide`) among the rows past :meth:`_near_bound` of the radius plus the
        margin alone (the rest are neither within nor close to it), from
        :data:`NEAR_BOUND_ROWS` rows."""
        if len(rows) < NEAR_BOUND_ROWS:
            return self.decide(rows, self.screen(rows), radius)
        dots = self._gathered_dots(rows)
        at = np.flatnonzero(dots >= self._near_bound(radius + self.margin))
        near = rows[at]
        inside, exact = self.decide(near, 1.0 - dots[at] / (self.qnorm * self.table.norms[near]),
                                    radius)
        found = np.zeros(len(rows), np.bool_)
        found[at[inside]] = True
        return found, exact

    def decide(self, rows: Rows, dist: F64, radius: float) -> tuple[npt.NDArray[np.bool_], F64]:
        """:meth:`within` given the rows' float32 distances ``dist``."""
        inside = dist <= radius
        close = np.abs(dist - radius) <= self.margin
        if close.any():
            inside[close] = self.reference(rows[close]) <= radius
        return inside, self.exact(rows[inside])

    def nearest(self, rows: Rows, k: int, id_of: Callable[[int], str]) -> tuple[Rows, F64]:
        """The ``k`` rows nearest by (distance, id) — the reference's order — and their
        distances.  ``id_of`` gives a row's document id.

        From :data:`NEAR_BOUND_ROWS` rows, only those that may rank get the float64 screen:
        the ``k`` rows of the largest float32 inner products are within ``1 - D / (|q| |d|)``
        of the query, ``D`` the ``k``-th largest (``|d|`` the table's longest row length, its
        shortest when ``D`` is negative), so the ``k``-th distance is at most that, and a row
        further than it plus twice the margin cannot rank (:meth:`rank`): those past
        :meth:`_near_bound` of it are all the rows :meth:`rank` would look at, and it decides
        as over every row."""
        dots = self._gathered_dots(rows)
        if len(rows) > max(k, NEAR_BOUND_ROWS - 1):
            kth = float(np.partition(dots, len(dots) - k)[len(dots) - k])  # k-th largest
            shortest, longest = self.table.norm_range
            farthest = 1.0 - kth / (self.qnorm * (longest if kth >= 0 else shortest))
            at = np.flatnonzero(dots >= self._near_bound(farthest + 2 * self.margin))
            rows, dots = rows[at], dots[at]
        return self.rank(rows, 1.0 - dots / (self.qnorm * self.table.norms[rows]), k, id_of)

    def rank(self, rows: Rows, dist: F64, k: int,
             id_of: Callable[[int], str]) -> tuple[Rows, F64]:
        """:meth:`nearest` given the rows' float32 distances ``dist``."""
        if len(rows) > k:
            kth = float(np.partition(dist, k - 1)[k - 1])
            # The k-th exact distance is within margin of kth, each row's within margin of
            # its screen value: rows below kth - 2 margin are surely in, above kth + 2
            # margin surely out; the rest are ordered exactly.
            surely = dist < kth - 2 * self.margin
            edge = rows[~surely & (dist <= kth + 2 * self.margin)]
            wanted = k - int(surely.sum())
            if len(edge) > wanted:  # else every edge row is in, whatever their order
                ranked = sorted(zip(self.reference(edge).tolist(), map(id_of, edge.tolist()),
                                    edge.tolist(), strict=True))
                edge = np.array([r for _, _, r in ranked[:wanted]], np.int64)
            rows = np.concatenate([rows[surely], edge])
        return rows, self.exact(rows)

    def nearest_admitted(self, rows: Rows, dist: F64, admitted: Bits | None, k: int,
                         id_of: Callable[[int], str]) -> tuple[Rows, F64] | None:
        """:meth:`rank` over those of scanned ``rows`` whose document ``admitted`` holds
        (None: all), None when fewer than ``k`` are.  Admission is checked nearest first,
        on ever more rows (4k, 16k, ...) until the rows looked at hold ``k`` admitted ones
        and every row that could still rank (within twice the margin of the k-th) is among
        them: a weak constraint costs a few bitmap look-ups, not one per row scanned."""
        look = min(len(rows), 4 * k)
        while True:
            if look < len(rows):
                cut = float(np.partition(dist, look - 1)[look - 1])
                near = dist <= cut
                seen, seen_dist = rows[near], dist[near]
            else:
                cut, seen, seen_dist = np.inf, rows, dist
            keep = self.admitted(seen, admitted)
            seen, seen_dist = seen[keep], seen_dist[keep]
            if len(seen) >= k:
                kth = float(np.partition(seen_dist, k - 1)[k - 1])
                if kth + 2 * self.margin < cut:
                    return self.rank(seen, seen_dist, k, id_of)
            elif look >= len(rows):
                return None
            look = min(len(rows), 4 * look)

    def admitted(self, rows: Rows, admitted: Bits | None) -> npt.NDArray[np.bool_]:
        """Which ``rows`` hold a document ``admitted`` holds (None: every present one)."""
        t = self.table
        allowed = t.present if admitted is None else admitted
        if admitted is None and len(t.present) == t.rows:  # no replaced or deleted rows
            return np.ones(len(rows), np.bool_)
        docs = t.docnums[rows]
        return np.isin(docs, to_array(from_array(docs) & allowed))


def known_clusters(table: VectorTable, probes: tuple[int, ...]) -> Rows:
    """``probes`` as an array, without any cluster the table's layout does not have (a plan
    made with another quantizer): ``starts[c]`` and ``starts[c + 1]`` bound each one's rows."""
    wanted = np.array(probes, np.int64)
    limit = len(table.starts) - 1
    if probes and (min(probes) < 0 or max(probes) >= limit):
        wanted = wanted[(wanted >= 0) & (wanted < limit)]
    return wanted


def slice_positions(slices: list[tuple[int, int]], tail: Rows, at: Rows) -> Rows:
    """The rows at positions ``at`` (ascending) of ``slices`` followed by ``tail``, as
    :meth:`QueryDistances.scan` lists them, worked out for those positions alone."""
    if not len(at):
        return np.empty(0, np.int64)
    bounds = np.array(slices, np.int64).reshape(-1, 2)
    ends = np.cumsum(bounds[:, 1] - bounds[:, 0])
    which = np.searchsorted(ends, at, side="right")  # the slice, len(slices): the tail
    rows = np.empty(len(at), np.int64)
    body = which < len(bounds)
    shift = bounds[:, 0] - (ends - (bounds[:, 1] - bounds[:, 0]))  # slice start - offset
    rows[body] = at[body] + shift[which[body]]
    if not body.all():
        rows[~body] = tail[at[~body] - (int(ends[-1]) if len(ends) else 0)]
    return rows


def slice_rows(slices: list[tuple[int, int]]) -> Rows:
    """The rows of ``slices`` (``[a, b)`` ranges), in order, in a few NumPy calls."""
    if not slices:
        return np.empty(0, np.int64)
    bounds = np.array(slices, np.int64)
    lengths = bounds[:, 1] - bounds[:, 0]
    shift = bounds[:, 0] - (np.cumsum(lengths) - lengths)  # each slice's start minus its offset
    rows: Rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(shift, lengths)
    return rows


def _norms(matrix: F32) -> F64:
    # float64 accumulation, cast in einsum's buffers: no float64 copy of the whole matrix
    squares: F64 = np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)
    return np.sqrt(squares)
