"""The store interface both stores implement, and the plain data it exchanges.

A store holds one index described by a :class:`~ebr.mappings.schema.Schema`.  Each store
has its own constructors, since where an index lives differs (the local store:
``LocalStore.create(path, schema)`` / ``LocalStore.open(path)`` in :mod:`ebr.stores.local`; the
OpenSearch store: a client and an index name); once open, every store answers the
:class:`Store` protocol.

Documents go in as :class:`IndexDocument`:

- ``terms``: exact term values per namespace, stored as given (``{"location": ["seattle"]}``
  becomes the term ``location:seattle``);
- ``text``: free text per namespace, turned into term values by the namespace's analyzer
  (:data:`ebr.mappings.text_analysis.ANALYZERS`), the same analyzer ``(match ns "...")`` uses; the
  terms of ``text`` and ``terms`` are united.  The text itself is not kept: put what you
  want back in ``source``;
- ``embeddings``: one vector per embedding key, stored as float32; the store assigns the
  cluster term ``<key>.cluster:<id>`` from the key's coarse quantizer (a namespace users may
  not write to);
- ``rank``: the static rank (higher is better), ``source``: any JSON object.

Writes are batches.  ``add`` inserts or replaces: writing an id again
replaces the whole stored document (re-running an ingest is idempotent); ``delete`` removes
ids (unknown ids are ignored).  A batch is atomic: once the call returns, all of it is
visible to the next search and durable; if it raises, none of it was written.

Every document of a batch is checked before anything is written (:mod:`ebr.stores.documents`
says what is refused, and with which error); a batch the caller prepared with
:func:`~ebr.stores.documents.prepare_batch` (the ingest pipeline does) is not checked twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import Schema
from ebr.planning.planner import plan
from ebr.planning.query_vectors import Vectors
from ebr.quantization.coarse import CoarseQuantizer
from ebr.query.nodes import Node
from ebr.query.parser import parse

if TYPE_CHECKING:
    from ebr.stores.documents import PreparedDocument

FloatArray = npt.NDArray[np.float32]

# -- documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexDocument:
    """A document as given to :meth:`Store.add` (see the module docstring for each field)."""

    id: str
    terms: Mapping[str, Sequence[str]] = field(default_factory=dict)
    text: Mapping[str, str] = field(default_factory=dict)
    embeddings: Mapping[str, npt.ArrayLike] = field(default_factory=dict)
    rank: float = 0.0
    source: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    """A document as a store holds it: its terms per namespace (analysed text included, and
    the cluster namespaces the store assigned), float32 embeddings, rank and source."""

    id: str
    terms: Mapping[str, tuple[str, ...]]
    embeddings: Mapping[str, FloatArray]
    rank: float
    source: Mapping[str, Any]


@dataclass(frozen=True)
class WriteResult:
    """What one batch did: documents new to the index, replaced, and deleted."""

    added: int = 0
    replaced: int = 0
    deleted: int = 0


# -- search results -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClauseMatch:
    """How a hit satisfied one ``nn``/``within`` clause of the plan.

    ``branch`` is the clause's name (:func:`ebr.query.nodes.named_branches`), ``distance`` its
    cosine distance ``1 - cos`` to the query, ``probe_rank`` the position of the document's
    coarse cluster among the clusters the clause probed (0 = the nearest to the query), or
    None when the clause did not probe (exact).
    """

    branch: str
    key: str
    distance: float
    probe_rank: int | None = None


@dataclass(frozen=True)
class TextMatch:
    """How a hit satisfied one ``match`` clause of the plan: the clause's ``branch`` name, its
    ``namespace`` and the document's BM25 score for the clause's terms (Lucene's formula,
    k1 = 1.2, b = 0.75, over the namespace's terms; see :mod:`ebr.stores.bm25`)."""

    branch: str
    namespace: str
    score: float


@dataclass(frozen=True)
class Hit:
    """One document the plan matched, with why: ``branches`` are the names of every branch
    of the plan the document satisfies (the same names as the OpenSearch compiler's
    ``_name``), ``clauses`` the vector clauses among them with their distances, ``texts`` the
    ``match`` clauses among them that score (not under a subtracted operand of
    ``difference``) with their BM25, ``score`` the first-stage score (the
    sum of the matched scoring clauses' scores, as OpenSearch sums them; see the store's
    ordering)."""

    id: str
    score: float
    rank: float
    branches: tuple[str, ...]
    clauses: tuple[ClauseMatch, ...] = ()
    texts: tuple[TextMatch, ...] = ()


TopKStrategy = Literal["exact", "probe"]


@dataclass(frozen=True)
class TopKChoice:
    """How a top-K ``nn`` clause was executed: ``exact`` over every admitted document, or
    ``probe`` over the admitted documents in the ``nprobe`` clusters nearest the query;
    ``admitted``: how many documents it chose among (when its clusters were scanned in
    place, :class:`ProbeChoice`, the estimate of how many of their rows are admitted)."""

    branch: str
    strategy: TopKStrategy
    admitted: int
    verified: int
    nprobe: int | None = None


ProbeRead = Literal["bitmap", "scan"]


@dataclass(frozen=True)
class ProbeChoice:
    """How a probing vector clause (a radius ``within`` over probe clusters, or a top-K
    ``nn`` that probes) read its clusters, the cheaper way by estimate: ``bitmap``
    intersects the clusters' posting lists with the constraint and verifies the survivors
    (cheap when the constraint is tight), ``scan`` computes the distance of every row of
    the probed clusters where it lies and checks the constraint only on the near ones
    (cheap when it is weak or absent).  ``rows``: rows in the probed clusters;
    ``expected``: how many of them the constraint is estimated to admit."""

    branch: str
    read: ProbeRead
    rows: int
    expected: int


@dataclass(frozen=True)
class SearchStats:
    """Per-query figures.

    ``total``: documents the plan matched (``hits`` holds at most ``size`` of them);
    ``documents_scanned``: entries of the posting lists read (a probing clause adds the
    rows of its probed clusters it reads: every one when scanned, the constraint's when
    read by bitmap);
    ``candidates_verified``: exact cosine distances computed; ``seconds``: time per phase
    (``match`` boolean algebra, ``verify`` vector distances, ``order`` scoring and sorting
    the hits, whose explanations the local store builds when they are first read);
    ``candidates_by_codes``: approximate distances computed from PQ
    codes to choose which candidates to verify (0 for keys without codes); ``probes``: how
    each probing vector clause read its clusters (stores that decide it).
    """

    total: int
    documents_scanned: int
    candidates_verified: int
    topk: tuple[TopKChoice, ...] = ()
    seconds: Mapping[str, float] = field(default_factory=dict)
    candidates_by_codes: int = 0
    probes: tuple[ProbeChoice, ...] = ()


class LazyHits(Sequence[Hit]):
    """Hits in order whose ids are known and whose :class:`Hit` objects (explanations
    included) are built on first access: a caller that wants only :attr:`ids` pays for no
    objects (for a radius query of hundreds of hits, most of its time).  Equal to, and
    hashing as, the tuple of its hits."""

    __slots__ = ("_build", "_hits", "ids")

    def __init__(self, ids: list[str], build: Callable[[], tuple[Hit, ...]]) -> None:
        self.ids = ids
        self._build: Callable[[], tuple[Hit, ...]] | None = build
        self._hits: tuple[Hit, ...] | None = None

    def _all(self) -> tuple[Hit, ...]:
        build = self._build
        if build is not None:  # two threads may both build: the same hits, one kept
            self._hits = build()
            self._build = None  # after the hits are set; what it held can go
        assert self._hits is not None
        return self._hits

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Hit: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Hit, ...]: ...

    def __getitem__(self, index: int | slice) -> Hit | tuple[Hit, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyHits):
            other = other._all()
        return isinstance(other, tuple) and self._all() == other

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return repr(self._all())

    def __reduce__(self) -> tuple[type[tuple[Hit, ...]], tuple[tuple[Hit, ...]]]:
        return tuple, (self._all(),)


@dataclass(frozen=True)
class Fetch:
    """What a reranker reads of each hit, asked of a search so that a store for which reading
    it afterwards is a round trip (OpenSearch) returns it with the hits instead: the cosine of
    each hit's embedding to ``vectors[key]`` per key, and the hit's terms in ``namespaces``."""

    vectors: Mapping[str, FloatArray]
    namespaces: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Fetched:
    """What a search returned of its hits for a :class:`Fetch`: ``cosines[key][id]`` (None
    for a hit without a ``key`` embedding) against the query embedding ``vectors[key]``, and
    ``terms[id]`` the hit's terms in ``namespaces`` (as :meth:`Store.get_terms` gives them)."""

    vectors: Mapping[str, FloatArray]
    cosines: Mapping[str, Mapping[str, float | None]]
    namespaces: frozenset[str]
    terms: Mapping[str, Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True)
class SearchResult:
    """A search's first hits in order (a tuple, or :class:`LazyHits`) and how it went;
    ``fetched``: what the store returned of them for the search's :class:`Fetch`, if it did."""

    hits: Sequence[Hit]
    stats: SearchStats
    fetched: Fetched | None = None

    @property
    def ids(self) -> list[str]:
        if isinstance(self.hits, LazyHits):
            return list(self.hits.ids)
        return [h.id for h in self.hits]


@dataclass(frozen=True)
class IndexStats:
    """What an index holds: live documents, embeddings per key, distinct terms (cluster
    terms included), the ``nlist`` of each key's coarse quantizer (None until trained) and
    the bytes it takes on disk (None when the store cannot tell)."""

    documents: int
    embeddings: Mapping[str, int]
    terms: int
    quantizers: Mapping[str, int | None]
    disk_bytes: int | None = None


# -- the protocol ---------------------------------------------------------------------------


class Store(Protocol):
    """An open index.  Searches may run from many threads while one writer writes."""

    @property
    def schema(self) -> Schema: ...

    @property
    def quantizers(self) -> Mapping[str, CoarseQuantizer]:
        """The trained coarse quantizer of each key (pass to :func:`ebr.plan`)."""
        ...

    def add(self, documents: Iterable[IndexDocument | PreparedDocument]) -> WriteResult:
        """Insert or replace one batch of documents, atomically.  Documents already checked
        (:func:`ebr.stores.documents.prepare_batch`) are not checked again."""
        ...

    def batched_writes(self) -> AbstractContextManager[None]:
        """Writes within may become visible only when it ends (one refresh for many batches,
        in OpenSearch); outside, each write is visible to the next search when it returns."""
        ...

    def delete(self, ids: Iterable[str]) -> WriteResult:
        """Delete one batch of ids, atomically; ids not in the index are ignored."""
        ...

    def search(self, plan: Node, vectors: Vectors, size: int = 10, *,
               fetch: Fetch | None = None) -> SearchResult:
        """Execute a plan from :func:`ebr.plan` (made with this store's quantizers) and
        return its first ``size`` hits in first-stage order.  ``fetch``: what the reranker
        will read of the hits, which a store may return with them (``SearchResult.fetched``)
        when that saves it a round trip; a store that reads them as fast later ignores it."""
        ...

    def get_documents(self, ids: Sequence[str]) -> list[StoredDocument | None]:
        """The stored documents, in the order asked, None for an id not in the index."""
        ...

    def get_terms(self, ids: Sequence[str], namespaces: Iterable[str]
                  ) -> list[dict[str, tuple[str, ...]]]:
        """Each id's terms in ``namespaces`` (sorted, as :meth:`get_documents` gives them; a
        namespace the document holds nothing in, or an id not in the index, is absent), in
        the order asked: what the reranker's term features read, without the rest of the
        document."""
        ...

    def get_vectors(self, ids: Sequence[str], key: str) -> dict[str, FloatArray]:
        """The stored ``key`` embedding of each id that has one."""
        ...

    def all_vectors(self, key: str) -> tuple[list[str], FloatArray]:
        """The id and ``key`` embedding of every document that has one (``(n, d)``), in a
        fixed order: what quantizer training and ``ebr tune`` read."""
        ...

    def stats(self) -> IndexStats: ...

    def sample_terms(self, namespace: str, limit: int) -> list[str]:
        """Up to ``limit`` values of ``namespace`` held by documents, the most frequent first
        (what a console offers to complete a term with)."""
        ...

    def close(self) -> None: ...


def search_text(store: Store, text: str, vectors: Vectors, size: int = 10) -> SearchResult:
    """Parse ``text`` against the store's schema, plan it with the store's quantizers and
    search: the one-call path for a query string."""
    return store.search(plan(parse(text, store.schema), vectors, store.quantizers, store.schema),
                        vectors, size)
