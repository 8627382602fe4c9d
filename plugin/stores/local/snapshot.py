"""The in-memory state of an index as of one commit, and the copy-on-write edit that makes
the next one.

A :class:`Snapshot` is never modified: a search takes the current one and uses only it, so
it sees one commit whole however many commits land meanwhile.  A write builds the next
snapshot from the current one (:class:`SnapshotEdit`), sharing every posting list it does not
touch and the append-only buffers (ids, ranks, vectors), whose published prefix never
changes; the store publishes it only once the SQLite transaction has committed.

Documents are numbered internally (``docnum``, uint32) in the order they were written:
a replaced document gets a new number and its old one leaves ``live`` and every bitmap.
Numbers are dense again after a reopen that rebuilds from the database; a snapshot file
carries them over, and is saved from a rebuild when more than half of them are dead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from pyroaring import BitMap, FrozenBitMap

from ebr.mappings.schema import cluster_term
from ebr.quantization.coarse import CentroidQuantizer
from ebr.quantization.product import ProductCodes
from ebr.stores.documents import PreparedDocument
from ebr.stores.local.bitmaps import EMPTY, from_array, to_array
from ebr.stores.local.lengths import NamespaceLengths, updated_lengths
from ebr.stores.local.vectors import VectorTable, append, stacked


@dataclass(frozen=True)
class Snapshot:
    """One commit's state.  ``ids`` and ``ranks`` are shared append-only buffers indexed by
    docnum; only ``[:count]`` belongs to this snapshot."""

    version: int
    count: int
    ids: list[str]
    ranks: npt.NDArray[np.float64]
    live: FrozenBitMap
    postings: Mapping[str, FrozenBitMap]
    tables: Mapping[str, VectorTable]
    quantizers: Mapping[str, CentroidQuantizer]
    #: keys whose rows carry PQ codes, and their product quantizers
    products: Mapping[str, ProductCodes] = field(default_factory=dict)
    #: each document's number of terms per namespace, and their totals (BM25)
    lengths: Mapping[str, NamespaceLengths] = field(default_factory=dict)

    def term(self, term: str) -> FrozenBitMap:
        return self.postings.get(term, EMPTY)

    def compacted(self) -> Snapshot:
        """The same commit as a file should hold it: every key's table compacted
        (:meth:`VectorTable.compacted`) and the shared append-only buffers cut to
        ``count`` (a file holds only this snapshot's part of them)."""
        count = self.count
        return replace(
            self, ids=self.ids[:count], ranks=self.ranks[:count],
            lengths={ns: replace(n, lengths=n.lengths[:count]) for ns, n in self.lengths.items()},
            tables={key: table.compacted(self.quantizers[key].nlist if key in self.quantizers
                                         else 0) for key, table in self.tables.items()})

    def with_quantizer(self, key: str, quantizer: CentroidQuantizer,
                       clusters: npt.NDArray[np.int32],
                       coded: tuple[ProductCodes, npt.NDArray[np.uint8],
                                    npt.NDArray[np.float32]] | None = None) -> Snapshot:
        """Every row of ``key`` re-assigned to ``quantizer``'s clusters (``clusters[r]`` for
        row ``r``; the rows are then laid out by cluster) and, given ``coded`` (product
        quantizer, codes, reconstruction norms), to its codes (else the key keeps none); the
        key's cluster postings rebuilt from the live rows."""
        products = {k: p for k, p in self.products.items() if k != key}
        if coded is None:
            table = self.tables[key].with_clusters(clusters, quantizer.nlist)
        else:
            products[key] = coded[0]
            table = self.tables[key].with_clusters(clusters, quantizer.nlist, coded[1],
                                                   coded[2])
        previous = self.quantizers.get(key)  # its cluster terms go
        old = {cluster_term(key, c) for c in range(previous.nlist)} if previous else set()
        postings = {t: b for t, b in self.postings.items() if t not in old}
        postings.update(cluster_postings(key, table))
        return replace(self, version=self.version + 1, postings=postings,
                       tables={**self.tables, key: table},
                       quantizers={**self.quantizers, key: quantizer}, products=products)


def cluster_postings(key: str, table: VectorTable) -> dict[str, FrozenBitMap]:
    """The cluster terms of ``key`` over the table's live rows."""
    rows = table.row_of(to_array(table.present))
    assigned = table.clusters[rows]
    rows = rows[assigned >= 0]
    assigned = assigned[assigned >= 0]
    if not len(rows):
        return {}
    order = np.argsort(assigned, kind="stable")
    members, assigned = table.docnums[rows[order]], assigned[order]
    values, starts = np.unique(assigned, return_index=True)
    return {cluster_term(key, int(v)): FrozenBitMap(from_array(docs))
            for v, docs in zip(values, np.split(members, starts[1:]), strict=True)}


class SnapshotEdit:
    """The next snapshot, built from the current one by the single writer."""

    def __init__(self, base: Snapshot) -> None:
        self.base = base
        self.ids = base.ids
        del self.ids[base.count:]  # left by a write that failed before publishing
        self.new_ranks: list[float] = []
        self.new_lengths: defaultdict[str, list[int]] = defaultdict(list)
        self.added: defaultdict[str, list[int]] = defaultdict(list)
        self.removed: defaultdict[str, list[int]] = defaultdict(list)
        self.removed_docs: list[int] = []
        self.new_rows: defaultdict[str, list[tuple[int, npt.NDArray[np.float32], int]]] = (
            defaultdict(list))
        self.new_codes: defaultdict[str, list[tuple[npt.NDArray[np.uint8], float]]] = (
            defaultdict(list))

    def remove(self, docnum: int, terms: Iterable[str]) -> None:
        """Take an existing document out (its terms, cluster terms included)."""
        self.removed_docs.append(docnum)
        for t in terms:
            self.removed[t].append(docnum)

    def add(self, doc: PreparedDocument, clusters: Mapping[str, int],
            codes: Mapping[str, tuple[npt.NDArray[np.uint8], float]] | None = None) -> int:
        """Put a document in under a new number; ``clusters`` holds its cluster per key
        (keys without a trained quantizer are absent), ``codes`` its PQ code and the
        reconstruction's length per key that keeps codes."""
        docnum = self.base.count + len(self.new_ranks)
        self.ids.append(doc.id)
        self.new_ranks.append(doc.rank)
        position = len(self.new_ranks) - 1
        for t in doc.terms:
            self.added[t].append(docnum)
            counts = self.new_lengths[t.partition(":")[0]]
            counts.extend([0] * (position + 1 - len(counts)))
            counts[position] += 1
        for key, vector in doc.vectors.items():
            cluster = clusters.get(key, -1)
            if cluster >= 0:
                self.added[cluster_term(key, cluster)].append(docnum)
            self.new_rows[key].append((docnum, vector, cluster))
            if codes and key in codes:
                self.new_codes[key].append(codes[key])
        return docnum

    def build(self) -> Snapshot:
        base = self.base
        count = base.count + len(self.new_ranks)
        ranks = append(base.ranks, base.count, np.asarray(self.new_ranks, np.float64))
        gone = from_array(self.removed_docs)
        born = BitMap(range(base.count, count))
        live = FrozenBitMap((base.live - gone) | born)

        postings = dict(base.postings)
        for term in self.added.keys() | self.removed.keys():
            bm = BitMap(postings.get(term, EMPTY))
            if term in self.removed:
                bm -= from_array(self.removed[term])
            if term in self.added:
                bm |= from_array(self.added[term])
            if bm:
                postings[term] = FrozenBitMap(bm)
            else:
                postings.pop(term, None)

        tables = dict(base.tables)
        for key, table in base.tables.items():
            table = table.without(gone)
            rows = self.new_rows.get(key)
            if rows:
                coded = self.new_codes.get(key)
                table = table.appended(np.array([r[0] for r in rows], np.uint32),
                                       stacked([r[1] for r in rows]),
                                       np.array([r[2] for r in rows], np.int32),
                                       stacked([c for c, _ in coded]) if coded else None,
                                       np.array([n for _, n in coded], np.float32)
                                       if coded else None)
            tables[key] = table
        new = len(self.new_ranks)
        added = {ns: counts + [0] * (new - len(counts)) for ns, counts in self.new_lengths.items()}
        lengths = updated_lengths(base.lengths, base.count, added, self.removed_docs, count)
        return replace(base, version=base.version + 1, count=count, ranks=ranks,
                       live=live, postings=postings, tables=tables, lengths=lengths)
