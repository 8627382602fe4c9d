"""The index schema: term namespaces, embedding keys, static rank; JSON in and out.

A schema is the single description of an index that both stores, the query parser and the
OpenSearch compiler read.  Field names in OpenSearch are derived here and nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebr.config_files import ConfigReader, load_json_object, parse_json_object
from ebr.errors import SchemaError
from ebr.mappings.space import Space
from ebr.mappings.text_analysis import ANALYZERS

SCHEMA_FORMAT = 1
_CLUSTER_SUFFIX = ".cluster"
DEFAULT_NPROBE = 16
#: Top-level mapping objects the schema's own fields live in; the rank field may not take them.
RESERVED_FIELDS = frozenset({"terms", "clusters", "vectors", "id", "source"})

_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_\-]{0,63}\Z")
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,127}\Z")
NAMESPACE_SYNTAX = "lowercase letters, digits, '_' or '-' (at most 64)"
KEY_SYNTAX = "letters, digits, '_' or '-' (at most 128)"


# -- cluster terms: Unicorn's nn as terms (the only place they are spelled) --------------------



#: The sub-field of each ``terms.<ns>`` keyword field that OpenSearch scores by BM25.
SCORED_SUBFIELD = "scored"

def cluster_namespace(key: str) -> str:
    """The namespace of ``key``'s cluster terms: ``model-1`` -> ``model-1.cluster``."""
    return key + _CLUSTER_SUFFIX


def cluster_key(namespace: str) -> str | None:
    """The embedding key whose cluster namespace ``namespace`` is, or None."""
    key = namespace.removesuffix(_CLUSTER_SUFFIX)
    return key if key != namespace else None


def cluster_term(key: str, cluster: int) -> str:
    """The term a document in coarse cluster ``cluster`` of ``key`` holds: ``model-1.cluster:17``."""
    return f"{key}{_CLUSTER_SUFFIX}:{cluster}"


def is_namespace_name(name: str) -> bool:
    """Namespace syntax, shared by the schema and the query language."""
    return bool(_NAMESPACE.match(name))


def is_key_name(name: str) -> bool:
    """Embedding-key syntax, shared by the schema and the query language."""
    return bool(_KEY.match(name))


@dataclass(frozen=True, slots=True)
class Namespace:
    """A family of terms (``location:seattle`` is in namespace ``location``)."""

    name: str
    analyzer: str = "standard"


@dataclass(frozen=True, slots=True)
class CoarseQuantizerSpec:
    """The coarse quantizer whose cluster ids become ``<key>.cluster:<id>`` terms.

    The trained centroids live with the index (the store keeps them), not in the schema.
    ``pq_m`` > 0 also keeps 8-bit product-quantization codes of each vector's residual
    (``pq_m`` sub-vectors; it must divide the dimension; EBR §4.1 suggests about d/4 bytes)
    for compressed verification before the exact one; ``opq`` learns a rotation before PQ
    (so it needs ``pq_m``).
    """

    nlist: int = 1024
    opq: bool = False
    pq_m: int = 0
    default_nprobe: int = DEFAULT_NPROBE


@dataclass(frozen=True, slots=True)
class Hnsw:
    """A native Faiss HNSW ``knn_vector`` field (top-K mode)."""

    m: int = 16
    ef_construction: int = 128
    ef_search: int = 100

    kind = "hnsw"


@dataclass(frozen=True, slots=True)
class IvfPq:
    """A native Faiss IVF-PQ ``knn_vector`` field backed by a trained k-NN model."""

    model_id: str
    nlist: int = 1024
    pq_m: int = 8
    code_size: int = 8
    nprobes: int = DEFAULT_NPROBE

    kind = "ivfpq"


AnnMethod = Hnsw | IvfPq


@dataclass(frozen=True, slots=True)
class EmbeddingKey:
    """An embedding every document may carry, named as in ``(nn <key> ...)``."""

    name: str
    dimension: int
    quantizer: CoarseQuantizerSpec = field(default_factory=CoarseQuantizerSpec)
    ann: AnnMethod = field(default_factory=Hnsw)
    space: Space = Space.COSINE

    @property
    def cluster_namespace(self) -> str:
        return cluster_namespace(self.name)


@dataclass(frozen=True, slots=True)
class Schema:
    """What an index holds; it validates itself on construction (:meth:`validate`)."""

    index: str
    namespaces: tuple[Namespace, ...] = ()
    keys: tuple[EmbeddingKey, ...] = ()
    rank_field: str = "rank"
    # Lookup tables derived once from the fields above (the schema is immutable), so the
    # parser and the compiler look names up in O(1) on every request.
    _namespace_table: dict[str, Namespace] = field(init=False, repr=False, compare=False)
    _key_table: dict[str, EmbeddingKey] = field(init=False, repr=False, compare=False)
    # Term namespace -> keyword field, for the compiler's every term; a key's cluster
    # namespace takes precedence over a declared namespace of the same name.
    _term_field_table: dict[str, str] = field(init=False, repr=False, compare=False)
    #: The term namespaces a query may name (declared, or an embedding key's cluster
    #: namespace), for the parser's common case.
    query_term_namespaces: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespaces", tuple(self.namespaces))
        object.__setattr__(self, "keys", tuple(self.keys))
        self.validate()
        object.__setattr__(self, "_namespace_table", {n.name: n for n in self.namespaces})
        object.__setattr__(self, "_key_table", {k.name: k for k in self.keys})
        object.__setattr__(self, "_term_field_table", {
            **{n.name: "terms." + n.name for n in self.namespaces},
            **{k.cluster_namespace: "clusters." + k.name for k in self.keys}})
        object.__setattr__(self, "query_term_namespaces", frozenset(
            [n.name for n in self.namespaces] + [k.cluster_namespace for k in self.keys]))

    @classmethod
    def create(
        cls,
        index: str,
        namespaces: tuple[Namespace, ...] = (),
        keys: tuple[EmbeddingKey, ...] = (),
        rank_field: str = "rank",
    ) -> Schema:
        """The same as the constructor (kept for callers written before it validated)."""
        return cls(index, tuple(namespaces), tuple(keys), rank_field)

    # -- lookups --------------------------------------------------------------------------

    def namespace(self, name: str) -> Namespace | None:
        return self._namespace_table.get(name)

    def key(self, name: str) -> EmbeddingKey | None:
        return self._key_table.get(name)

    def is_term_namespace(self, name: str) -> bool:
        """A declared namespace or an embedding key's cluster namespace."""
        if self.namespace(name) is not None:
            return True
        key = cluster_key(name)
        return key is not None and self.key(key) is not None

    # -- OpenSearch field names (the only place they are derived) --------------------------

    def term_field(self, namespace: str) -> str:
        try:
            return self._term_field_table[namespace]
        except KeyError:  # not in the schema (the parser refuses it; a hand-built plan may not)
            return "terms." + namespace

    def scored_field(self, namespace: str) -> str:
        """The namespace's terms again as a ``text`` field, one token per term, which
        OpenSearch scores by BM25 (``match`` clauses; the keyword field does not score on 3.x)."""
        return self.term_field(namespace) + "." + SCORED_SUBFIELD

    @staticmethod
    def vector_field(key: str) -> str:
        return "vectors." + key

    # -- validation and JSON ----------------------------------------------------------------

    def validate(self) -> None:
        _check(bool(re.fullmatch(r"[a-z0-9][a-z0-9_\-.]{0,200}", self.index)), "index",
               f"index name {self.index!r} must be lowercase letters, digits, '_', '-' or '.'")
        seen: set[str] = set()
        for i, ns in enumerate(self.namespaces):
            where = f"namespaces[{i}]"
            _check(is_namespace_name(ns.name), where,
                   f"namespace {ns.name!r} must be {NAMESPACE_SYNTAX}")
            _check(ns.name not in seen, where, f"namespace {ns.name!r} declared twice")
            _check(ns.analyzer in ANALYZERS, where + ".analyzer",
                   f"unknown analyzer {ns.analyzer!r}; known: {', '.join(sorted(ANALYZERS))}")
            seen.add(ns.name)
        keys: set[str] = set()
        for i, key in enumerate(self.keys):
            where = f"keys[{i}]"
            _check(is_key_name(key.name), where, f"embedding key {key.name!r} must be {KEY_SYNTAX}")
            _check(key.name not in keys, where, f"embedding key {key.name!r} declared twice")
            _check(1 <= key.dimension <= 16000, where + ".dimension",
                   f"dimension must be between 1 and 16000, got {key.dimension}")
            q = key.quantizer
            _range(q.nlist, 1, 1 << 20, where + ".quantizer.nlist")
            _range(q.default_nprobe, 1, 1 << 20, where + ".quantizer.default_nprobe")
            _range(q.pq_m, 0, key.dimension, where + ".quantizer.pq_m")
            _check(q.pq_m == 0 or key.dimension % q.pq_m == 0, where + ".quantizer.pq_m",
                   f"pq_m ({q.pq_m}) must divide the dimension ({key.dimension})")
            _check(not q.opq or q.pq_m > 0, where + ".quantizer.opq",
                   "an OPQ rotation only serves PQ codes: set pq_m > 0 too, or opq to false")
            ann = key.ann
            if isinstance(ann, Hnsw):
                _range(ann.m, 2, 512, where + ".ann.m")
                _range(ann.ef_construction, 1, 1 << 16, where + ".ann.ef_construction")
                _range(ann.ef_search, 1, 1 << 16, where + ".ann.ef_search")
            else:
                _check(bool(ann.model_id), where + ".ann.model_id", "IVF-PQ needs a model_id")
                _range(ann.nlist, 1, 1 << 20, where + ".ann.nlist")
                _range(ann.nprobes, 1, 1 << 20, where + ".ann.nprobes")
                _range(ann.code_size, 1, 16, where + ".ann.code_size")
                _range(ann.pq_m, 1, key.dimension, where + ".ann.pq_m")
                _check(key.dimension % ann.pq_m == 0, where + ".ann.pq_m",
                       f"pq_m ({ann.pq_m}) must divide the dimension ({key.dimension})")
            keys.add(key.name)
        _check(is_namespace_name(self.rank_field), "rank_field",
               f"rank field {self.rank_field!r} must be {NAMESPACE_SYNTAX}")
        _check(self.rank_field not in RESERVED_FIELDS, "rank_field",
               f"rank field {self.rank_field!r} is reserved for the schema's own fields")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "index": self.index,
            "namespaces": [{"name": n.name, "analyzer": n.analyzer} for n in self.namespaces],
            "keys": [_key_to_dict(k) for k in self.keys],
            "rank_field": self.rank_field,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        r = ConfigReader(data, "schema", SchemaError)
        fmt = r.integer("format", SCHEMA_FORMAT)
        if fmt != SCHEMA_FORMAT:
            raise SchemaError(f"schema.format: unsupported schema format {fmt} "
                              f"(this ebr reads format {SCHEMA_FORMAT})")
        namespaces = []
        for n in r.items("namespaces", []):
            namespaces.append(Namespace(**n.fields(Namespace)))
            n.done()
        keys = tuple(_key_from(k) for k in r.items("keys", []))
        index, rank_field = r.text("index"), r.text("rank_field", "rank")
        r.done()
        return cls(index, tuple(namespaces), keys, rank_field)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Schema:
        return cls.from_dict(parse_json_object(text, "schema", SchemaError))

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        return cls.from_dict(load_json_object(path, "schema", SchemaError))


def _check(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise SchemaError(f"schema.{where}: {message}")


def _range(value: int, low: int, high: int, where: str) -> None:
    _check(low <= value <= high, where, f"must be between {low} and {high}, got {value}")


def _key_to_dict(k: EmbeddingKey) -> dict[str, Any]:
    q = k.quantizer
    ann: dict[str, Any]
    if isinstance(k.ann, Hnsw):
        ann = {"kind": "hnsw", "m": k.ann.m, "ef_construction": k.ann.ef_construction,
               "ef_search": k.ann.ef_search}
    else:
        ann = {"kind": "ivfpq", "model_id": k.ann.model_id, "nlist": k.ann.nlist,
               "pq_m": k.ann.pq_m, "code_size": k.ann.code_size, "nprobes": k.ann.nprobes}
    return {
        "name": k.name,
        "dimension": k.dimension,
        "space": k.space.value,
        "quantizer": {"nlist": q.nlist, "opq": q.opq, "default_nprobe": q.default_nprobe,
                      "pq_m": q.pq_m},
        "ann": ann,
    }


def _key_from(r: ConfigReader) -> EmbeddingKey:
    q = r.obj("quantizer", {})
    q.value("centroids", str, "")  # written by earlier versions, never read: accepted, ignored
    quantizer = CoarseQuantizerSpec(**q.fields(CoarseQuantizerSpec))
    q.done()
    a = r.obj("ann", {})
    kind = a.text("kind", Hnsw.kind)
    methods: dict[str, type[Hnsw] | type[IvfPq]] = {Hnsw.kind: Hnsw, IvfPq.kind: IvfPq}
    if kind not in methods:
        raise SchemaError(f"{a.where}.kind: unknown ANN method {kind!r}; use hnsw or ivfpq")
    ann = methods[kind](**a.fields(methods[kind]))
    a.done()
    space = r.text("space", Space.COSINE.value)
    if space != Space.COSINE.value:
        raise SchemaError(f"{r.where}.space: unsupported space {space!r}; only cosine is supported")
    key = EmbeddingKey(r.text("name"), r.integer("dimension"), quantizer, ann, Space(space))
    r.done()
    return key
