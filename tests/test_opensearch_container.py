"""Integration tests against a real OpenSearch (the pinned 2.19 image) in a Docker container.

Every test runs a request ebr compiled and compares what the cluster returns with
:func:`ebr.stores.reference.reference_matches` over the same documents (or, for scores and rescoring, with the
exact cosine computed here).  Without a Docker engine every test skips with the reason
(``EBR_REQUIRE_DOCKER=1`` turns that into a failure); see ``tests/support/container.py``.

Data: seeded documents with terms from two small vocabularies and L2-normalised embeddings
(dimension 8) for two keys drawn around a few topic centres; each embedding's cluster term
comes from a :class:`ebr.CentroidQuantizer`, exactly as ingest assigns it.  One key is a Faiss
HNSW field, the other an IVF-PQ field backed by a model trained here.

Tolerances, and why:

- Radius (``script_score`` + ``min_score``): Painless computes the cosine in float32, the
  reference in float64.  Every radius is moved at least ``RADIUS_MARGIN`` (1e-4) away from
  every document's distance to the query, far beyond float32 error (~1e-6), so the hit sets
  must be *equal*; the plan fixes the probed clusters, so probing is deterministic too.
- Top-K on HNSW: one shard force-merged to one segment (``k`` is per segment), ``ef_search``
  256 over 80 documents, and query vectors whose 5th and 6th nearest admitted documents are
  at least ``TIE_GAP`` apart: the hits must equal the reference top 5, in order.  Scores
  ``(1 + cos) / 2`` within ``SCORE_TOL`` (float32).
- Top-K on IVF-PQ with ``:nprobe`` = nlist: no inverted list is skipped, but PQ codes
  approximate distances, which may swap neighbours across the 5th/6th boundary; at least
  4 of the reference top 5 must come back, and every hit must satisfy the constraint.
  (With filters admitting this few documents the plugin may well search exactly; the test
  does not rely on that.)
- Rescore: cosine order within ``SCORE_TOL`` (script scores are float32).
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

from ebr import (
    CentroidQuantizer,
    Node,
    ReferenceDocument,
    ServerVersion,
    Within,
    compile_rescore,
    compile_search,
    named_branches,
    parse,
    plan,
    reference_matches,
    to_text,
)
from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Hnsw, IvfPq, Namespace, Schema, Space
from ebr.mappings.opensearch_mapping import index_body, train_model_body, training_index_body
from ebr.mappings.schema import cluster_key, cluster_term
from ebr.stores.opensearch.versions import MINIMUM
from ebr.stores.protocol import IndexDocument, search_text
from ebr.stores.reference import cosine_distance
from support.container import (
    IMAGE,
    bulk_load,
    create_index,
    force_merge_to_one_segment,
    matched_names,
    opensearch_client_or_skip,
    search_hits,
    train_model_and_wait,
)

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

pytestmark = pytest.mark.container

Vector = npt.NDArray[np.float32]
Vectors = dict[str, Vector]

SEED = 20_200_823
DIM = 8
HNSW_KEY = "title-hnsw"
IVF_KEY = "title-ivfpq"
KEYS = (HNSW_KEY, IVF_KEY)
MODEL_ID = "ebr-container-ivfpq"
IVF_NLIST = 4  # small, so every list holds plenty of training and corpus vectors
PQ_M = 4  # must divide DIM
CODE_SIZE = 8
TRAINING_VECTORS = 512  # training needs at least max(nlist, 2**code_size) = 256
COARSE_NLIST = 8  # our coarse quantizer (cluster terms); independent of the IVF model's lists
EF_SEARCH = 256  # above the top-K corpus size: the HNSW search is as good as exhaustive
TEXT = ("john", "smith", "smithe", "jane", "doe", "alex")
LOCATIONS = ("seattle", "menlo_park", "boston", "london")
TOPICS = 6
NOISE = 0.45  # spread around a topic centre: clusters overlap, so nprobe matters
MISSING = 0.1  # share of documents without a given key's embedding (guards, `exists`)
RADIUS_MARGIN = 1e-4
TIE_GAP = 1e-3
SCORE_TOL = 1e-4
K = 5

CORPUS_INDEX = "ebr-corpus"
TOPK_INDEX = "ebr-topk"
MAPPING_INDEX = "ebr-mapping"
TRAINING_INDEX = "ebr-training-ivfpq"

# Shared by every corpus and the training set, so the IVF-PQ model fits the data it serves.
TOPIC_CENTRES = np.random.default_rng(SEED).normal(size=(TOPICS, DIM))


def make_schema(index: str) -> Schema:
    quantizer = CoarseQuantizerSpec(nlist=COARSE_NLIST, default_nprobe=2)
    return Schema.create(
        index,
        (Namespace("text"), Namespace("location", "lowercase")),
        (
            EmbeddingKey(HNSW_KEY, DIM, quantizer,
                         Hnsw(m=16, ef_construction=256, ef_search=EF_SEARCH)),
            EmbeddingKey(IVF_KEY, DIM, quantizer,
                         IvfPq(MODEL_ID, nlist=IVF_NLIST, pq_m=PQ_M, code_size=CODE_SIZE,
                               nprobes=IVF_NLIST)),
        ),
    )


# --------------------------------------------------------------------------------------------
# Documents (no Docker needed)


def _unit(x: npt.ArrayLike) -> Vector:
    a = np.asarray(x, np.float64)
    unit: Vector = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return unit


def _near_topic(rng: np.random.Generator, topic: int) -> Vector:
    return _unit(TOPIC_CENTRES[topic] + NOISE * rng.normal(size=DIM))


@dataclass(frozen=True)
class Corpus:
    docs: tuple[ReferenceDocument, ...]
    quantizers: dict[str, CentroidQuantizer]

    def query_vectors(self, rng: np.random.Generator) -> Vectors:
        topic = int(rng.integers(TOPICS))
        return {key: _near_topic(rng, topic) for key in KEYS}

    def distances(self, key: str, vector: Vector, ids: set[str] | None = None) -> dict[str, float]:
        """Exact cosine distance of every document holding ``key`` (among ``ids``)."""
        return {d.id: cosine_distance(vector, d.embeddings[key]) for d in self.docs
                if key in d.embeddings and (ids is None or d.id in ids)}


def make_corpus(seed: int, n: int) -> Corpus:
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, set[str], Vectors]] = []
    for i in range(n):
        topic = int(rng.integers(TOPICS))
        terms = {f"text:{v}" for v in rng.choice(TEXT, int(rng.integers(1, 4)), replace=False)}
        n_locations = int(rng.choice(3, p=[0.1, 0.75, 0.15]))
        terms |= {f"location:{v}" for v in rng.choice(LOCATIONS, n_locations, replace=False)}
        embeddings = {key: _near_topic(rng, topic) for key in KEYS if rng.random() >= MISSING}
        rows.append((f"d{i:03d}", terms, embeddings))
    # Centroids: distinct document embeddings (no empty cluster), as a k-means init would pick.
    quantizers = {}
    for key in KEYS:
        pool = [e[key] for _, _, e in rows if key in e]
        picked = rng.choice(len(pool), COARSE_NLIST, replace=False)
        quantizers[key] = CentroidQuantizer(np.stack([pool[j] for j in picked]))
    docs = []
    for doc_id, terms, embeddings in rows:
        clusters = {cluster_term(key, int(quantizers[key].assign(e[None, :])[0]))
                    for key, e in embeddings.items()}
        docs.append(ReferenceDocument(doc_id, frozenset(terms | clusters), embeddings))
    return Corpus(tuple(docs), quantizers)


@functools.cache
def corpus() -> Corpus:
    """A few hundred documents for the boolean, radius, branch-name and rescore tests."""
    return make_corpus(SEED + 1, 300)


@functools.cache
def topk_corpus() -> Corpus:
    """Few documents for the top-K tests: one segment, ef_search above the corpus size."""
    return make_corpus(SEED + 2, 80)


def training_vectors() -> Vector:
    rng = np.random.default_rng(SEED + 3)
    topics = rng.integers(TOPICS, size=TRAINING_VECTORS)
    # L2-normalised: k-NN training does not normalise for cosinesimil.
    return _unit(TOPIC_CENTRES[topics] + NOISE * rng.normal(size=(TRAINING_VECTORS, DIM)))


def to_source(schema: Schema, doc: ReferenceDocument) -> dict[str, Any]:
    """The ``_source`` ingest writes, with every field name taken from the schema."""
    source: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        parent, _, leaf = path.partition(".")
        source.setdefault(parent, {})[leaf] = value

    grouped: dict[str, list[str]] = {}
    for term in sorted(doc.terms):
        namespace, _, value = term.partition(":")
        grouped.setdefault(namespace, []).append(value)
    for namespace, values in grouped.items():
        # A cluster field holds the one cluster id; a namespace field any number of terms.
        cluster = cluster_key(namespace) is not None
        put(schema.term_field(namespace), values[0] if cluster else values)
    for key, embedding in doc.embeddings.items():
        put(schema.vector_field(key), [float(x) for x in embedding])  # float32 values, exactly
    return source


# --------------------------------------------------------------------------------------------
# Queries and expected answers (no Docker needed)


def safe_radius(target: float, distances: npt.ArrayLike) -> float:
    """A 4-decimal radius near ``target`` and at least RADIUS_MARGIN from every distance, so
    float32 (Painless) and float64 (reference) cannot disagree on which side a document is."""
    d = np.asarray(distances, np.float64)
    for j in range(2000):
        offset = (j + 1) // 2 * (1 if j % 2 else -1) * 3 * RADIUS_MARGIN  # 0, +1, -1, +2, ...
        r = float(f"{min(max(target + offset, 0.0), 2.0):.4f}")
        if not np.any(np.abs(d - r) < RADIUS_MARGIN):
            return r
    raise AssertionError(f"no radius near {target} clear of every document distance")


def radius_text(c: Corpus, key: str, vector: Vector, quantile: float) -> str:
    """A safe radius admitting about ``quantile`` of the documents holding ``key``."""
    d = np.fromiter(c.distances(key, vector).values(), np.float64)
    return f"{safe_radius(float(np.quantile(d, quantile)), d):.4f}"


def absolute_radius_text(c: Corpus, key: str, vector: Vector, radius: float) -> str:
    d = np.fromiter(c.distances(key, vector).values(), np.float64)
    return f"{safe_radius(radius, d):.4f}"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    vectors: Vectors
    family: str = ""  # cases of one family differ only in probing


TERM_QUERIES = (
    "(term text:john)",
    "(term text:nobody)",  # matches nothing: an empty answer must stay empty
    "(and (term text:john) (term location:seattle))",
    "(or (term location:seattle) (term location:menlo_park))",
    "(difference (term text:john) (term location:boston))",
    "(difference (or (term text:jane) (term text:doe)) (term location:london) (term text:alex))",
    "(and (or (term text:john) (term text:jane)) "
    "(difference (term location:seattle) (term text:smith)))",
)


def hand_written_cases(c: Corpus) -> list[Case]:
    rng = np.random.default_rng(SEED + 4)
    first = c.query_vectors(rng)
    cases = [Case(f"terms-{j}", text, first) for j, text in enumerate(TERM_QUERIES)]
    h, i = HNSW_KEY, IVF_KEY
    for v in range(3):
        vectors = first if v == 0 else c.query_vectors(rng)

        def r(key: str, quantile: float, vectors: Vectors = vectors) -> str:
            return radius_text(c, key, vectors[key], quantile)

        def absolute(key: str, radius: float, vectors: Vectors = vectors) -> str:
            return absolute_radius_text(c, key, vectors[key], radius)

        probes = [f"(nn {h} :radius {r(h, 0.15)} :nprobe {n})" for n in (1, 2, 4, COARSE_NLIST)]
        probes.append(f"(nn {h} :radius {r(h, 0.15)} :exact true)")
        cases += [Case(f"v{v}-probe-{j}", t, vectors, f"probe-{v}") for j, t in enumerate(probes)]
        texts = [
            *(f"(nn {i} :radius {r(i, 0.3)} :nprobe {n})" for n in (1, 3)),
            f"(nn {i} :radius {r(i, 0.3)} :exact true)",
            # every document holding the vector (and none without it), then none at all
            f"(nn {h} :radius {absolute(h, 2.0)} :exact true)",
            f"(nn {h} :radius {absolute(h, 0.0)} :exact true)",
            f"(and (term location:seattle) (nn {h} :radius {r(h, 0.3)} :nprobe 2))",
            "(and (or (term location:seattle) (term location:menlo_park)) "
            "(or (and (term text:john) (term text:smithe)) "
            f"(nn {h} :radius {r(h, 0.1)} :nprobe 3)))",
            f"(difference (term text:john) (nn {h} :radius {r(h, 0.4)} :exact true))",
            f"(difference (nn {i} :radius {r(i, 0.4)} :nprobe 2) (term location:boston))",
            f"(or (nn {h} :radius {r(h, 0.05)} :nprobe 2) (nn {i} :radius {r(i, 0.05)} :nprobe 2))",
            f"(and (nn {h} :radius {r(h, 0.5)} :nprobe 4) (nn {i} :radius {r(i, 0.5)} :nprobe 4))",
            f"(and (term text:jane) (or (nn {h} :radius {r(h, 0.3)} :exact true) "
            "(term location:london)))",
        ]
        cases += [Case(f"v{v}-{j:02d}", t, vectors) for j, t in enumerate(texts)]
    return cases


class _RandomQueries:
    """Seeded random query trees: terms, and/or/difference, radius nn on either key."""

    def __init__(self, c: Corpus, seed: int) -> None:
        self.c = c
        self.rnd = random.Random(seed)
        self.rng = np.random.default_rng(seed)

    def case(self, name: str) -> Case:
        vectors = self.c.query_vectors(self.rng)
        return Case(name, self._expr(vectors, 0), vectors)

    def _expr(self, vectors: Vectors, depth: int) -> str:
        if depth >= 3 or (depth > 0 and self.rnd.random() < 0.4):
            return self._leaf(vectors)
        op = self.rnd.choice(("and", "or", "difference"))
        operands = " ".join(self._expr(vectors, depth + 1) for _ in range(self.rnd.randint(2, 3)))
        return f"({op} {operands})"

    def _leaf(self, vectors: Vectors) -> str:
        if self.rnd.random() < 0.6:
            namespace, values = self.rnd.choice((("text", TEXT), ("location", LOCATIONS)))
            return f"(term {namespace}:{self.rnd.choice(values)})"
        key = self.rnd.choice(KEYS)
        radius = radius_text(self.c, key, vectors[key], self.rnd.choice((0.02, 0.1, 0.25, 0.5)))
        if self.rnd.random() < 0.25:
            return f"(nn {key} :radius {radius} :exact true)"
        return f"(nn {key} :radius {radius} :nprobe {self.rnd.randint(1, COARSE_NLIST)})"


def random_cases(c: Corpus, count: int, seed: int) -> list[Case]:
    queries = _RandomQueries(c, seed)
    return [queries.case(f"random-{j:02d}") for j in range(count)]


def planned(schema: Schema, c: Corpus, text: str, vectors: Vectors) -> Node:
    return plan(parse(text, schema), vectors, c.quantizers, schema)


def expected_ids(c: Corpus, node: Node, vectors: Vectors) -> set[str]:
    # path_context=False: how a store that sees one plan node at a time executes it.
    ids: set[str] = reference_matches(node, c.docs, vectors, path_context=False)
    return ids


TOPK_CONSTRAINTS = (
    "(term location:seattle)",
    "(or (term text:john) (term text:jane))",
    "(difference (term location:boston) (term text:alex))",
)


def topk_vectors(c: Corpus, schema: Schema, constraint: str, key: str) -> Vectors:
    """Seeded query vectors whose nearest K+1 admitted documents are pairwise TIE_GAP apart
    (a unique top K in a unique order), with more than K admitted documents."""
    admitted = reference_matches(parse(constraint, schema), c.docs, {})
    rng = np.random.default_rng(SEED + 5 + TOPK_CONSTRAINTS.index(constraint))
    for _ in range(1000):
        vectors = c.query_vectors(rng)
        nearest = sorted(c.distances(key, vectors[key], admitted).values())[: K + 1]
        if len(nearest) > K and min(np.diff(nearest)) >= TIE_GAP:
            return vectors
    raise AssertionError(f"no tie-free query vector for {constraint}")


def _knn_clause(body: dict[str, Any]) -> dict[str, Any]:
    """The single knn clause of a compiled body."""
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "knn" in node:
                found.extend(node["knn"].values())
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(body["query"])
    assert len(found) == 1, body
    return found[0]


# --------------------------------------------------------------------------------------------
# Cluster fixtures


@dataclass(frozen=True)
class LoadedIndex:
    name: str
    schema: Schema
    corpus: Corpus


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OpenSearch]:
    """One container for the session, always stopped; skips with the reason without Docker."""
    yield from opensearch_client_or_skip()


@pytest.fixture(scope="session")
def server_version(opensearch: OpenSearch) -> ServerVersion:
    return ServerVersion.from_info(opensearch.info())


@pytest.fixture(scope="session")
def ivfpq_model(opensearch: OpenSearch) -> str:
    """The IVF-PQ key's model, trained on L2-normalised vectors from the corpus distribution."""
    key = make_schema(TRAINING_INDEX).key(IVF_KEY)
    assert key is not None and isinstance(key.ann, IvfPq)
    vectors = training_vectors()
    assert len(vectors) >= max(key.ann.nlist, 2**key.ann.code_size)
    create_index(opensearch, TRAINING_INDEX, training_index_body(key))
    bulk_load(opensearch, TRAINING_INDEX,
              [(f"t{j:04d}", {"vector": [float(x) for x in v]}) for j, v in enumerate(vectors)])
    model = train_model_and_wait(opensearch, MODEL_ID, train_model_body(key, TRAINING_INDEX))
    assert model.get("dimension") in (None, DIM), model
    return MODEL_ID


def _load(client: OpenSearch, name: str, c: Corpus, version: ServerVersion) -> LoadedIndex:
    schema = make_schema(name)
    create_index(client, name, index_body(schema, version=version))
    bulk_load(client, name, [(d.id, to_source(schema, d)) for d in c.docs])
    return LoadedIndex(name, schema, c)


@pytest.fixture(scope="session")
def corpus_index(opensearch: OpenSearch, ivfpq_model: str,
                 server_version: ServerVersion) -> LoadedIndex:
    return _load(opensearch, CORPUS_INDEX, corpus(), server_version)


@pytest.fixture(scope="session")
def topk_index(opensearch: OpenSearch, ivfpq_model: str,
               server_version: ServerVersion) -> LoadedIndex:
    loaded = _load(opensearch, TOPK_INDEX, topk_corpus(), server_version)
    force_merge_to_one_segment(opensearch, TOPK_INDEX)
    return loaded


# --------------------------------------------------------------------------------------------
# Tests


def test_mapping_is_accepted_carries_the_schema_and_is_strict(
    opensearch: OpenSearch, ivfpq_model: str, server_version: ServerVersion
) -> None:
    from opensearchpy.exceptions import RequestError

    schema = make_schema(MAPPING_INDEX)
    create_index(opensearch, MAPPING_INDEX, index_body(schema, version=server_version))

    mapping = opensearch.indices.get_mapping(index=MAPPING_INDEX)[MAPPING_INDEX]["mappings"]
    assert mapping["_meta"]["ebr_schema"] == schema.to_dict()
    assert Schema.from_dict(mapping["_meta"]["ebr_schema"]) == schema  # any client can compile
    assert mapping["dynamic"] == "strict"
    vector_fields = mapping["properties"]["vectors"]["properties"]
    assert vector_fields[IVF_KEY]["model_id"] == ivfpq_model
    assert vector_fields[HNSW_KEY]["method"]["engine"] == "faiss"
    settings = opensearch.indices.get_settings(index=MAPPING_INDEX)
    assert settings[MAPPING_INDEX]["settings"]["index"]["knn"] == "true"

    # Positive control: a document as ingest writes it (both vectors) is accepted ...
    doc = next(d for d in corpus().docs if set(d.embeddings) == set(KEYS))
    good = to_source(schema, doc)
    opensearch.index(index=MAPPING_INDEX, id=doc.id, body=good, refresh=True)
    assert opensearch.count(index=MAPPING_INDEX)["count"] == 1

    # ... and any undeclared field, at the top or inside an object, is rejected.
    extra_top = {**copy.deepcopy(good), "unexpected": 1}
    extra_namespace = copy.deepcopy(good)
    extra_namespace["terms"]["undeclared"] = ["x"]
    extra_cluster = copy.deepcopy(good)
    extra_cluster["clusters"]["no-such-key"] = "0"
    for j, bad in enumerate((extra_top, extra_namespace, extra_cluster)):
        with pytest.raises(RequestError) as raised:
            opensearch.index(index=MAPPING_INDEX, id=f"bad-{j}", body=bad, refresh=True)
        assert raised.value.status_code == 400
        assert "strict_dynamic_mapping_exception" in f"{raised.value.error} {raised.value.info}"
    assert opensearch.count(index=MAPPING_INDEX)["count"] == 1


def test_boolean_and_radius_queries_match_the_reference(
    opensearch: OpenSearch, corpus_index: LoadedIndex, server_version: ServerVersion
) -> None:
    c, schema = corpus_index.corpus, corpus_index.schema
    cases = hand_written_cases(c) + random_cases(c, 40, SEED + 6)
    failures: list[str] = []
    answers: dict[str, set[str]] = {}
    for case in cases:
        executable = planned(schema, c, case.text, case.vectors)
        expected = answers[case.name] = expected_ids(c, executable, case.vectors)
        body = compile_search(executable, schema, case.vectors, size=len(c.docs),
                              version=server_version).body
        got = {h["_id"] for h in search_hits(opensearch, corpus_index.name, body)}
        if got != expected:
            failures.append(f"{case.name}: {case.text}\n    plan: {to_text(executable)}\n"
                            f"    missing: {sorted(expected - got)}\n"
                            f"    unexpected: {sorted(got - expected)}")
    assert not failures, f"{len(failures)} of {len(cases)} queries differ:\n" + "\n".join(failures)

    # The data must make the comparison discriminating: most answers are neither empty nor
    # everything, and probing fewer clusters loses documents in at least one family.
    nonempty = [a for a in answers.values() if a and len(a) < len(c.docs)]
    assert len(nonempty) >= len(cases) // 2
    families = {case.family for case in cases if case.family}
    assert any(len({frozenset(answers[case.name]) for case in cases if case.family == f}) > 1
               for f in families)


def test_matched_queries_name_the_branches_each_hit_satisfies(
    opensearch: OpenSearch, corpus_index: LoadedIndex, server_version: ServerVersion
) -> None:
    """The paper's hybrid query (EBR §4.2.1): every hit reports exactly the named branches
    the reference says it satisfies, so a hit explains whether terms or nn found it."""
    c, schema = corpus_index.corpus, corpus_index.schema
    rng = np.random.default_rng(SEED + 7)
    via_nn_only: set[str] = set()
    via_terms_only: set[str] = set()
    for quantile in (0.05, 0.15, 0.3):
        vectors = c.query_vectors(rng)
        text = ("(and (or (term location:seattle) (term location:menlo_park)) "
                "(or (and (term text:john) (term text:smithe)) "
                f"(nn {HNSW_KEY} :radius {radius_text(c, HNSW_KEY, vectors[HNSW_KEY], quantile)}"
                " :nprobe 3)))")
        executable = planned(schema, c, text, vectors)
        branches = named_branches(executable)
        satisfied = {name: expected_ids(c, node, vectors) for name, node in branches.items()}
        body = compile_search(executable, schema, vectors, size=len(c.docs),
                              version=server_version).body
        hits = search_hits(opensearch, corpus_index.name, body)
        assert {h["_id"] for h in hits} == satisfied["q"], text
        for hit in hits:
            should = {name for name, ids in satisfied.items() if hit["_id"] in ids}
            assert matched_names(hit) == should, (hit["_id"], text)
        # q.1 = (or terms nn): q.1.0 is the john+smithe branch, q.1.1 the radius check.
        assert isinstance(branches["q.1.1"], Within)
        via_nn_only |= satisfied["q"] & (satisfied["q.1.1"] - satisfied["q.1.0"])
        via_terms_only |= satisfied["q"] & (satisfied["q.1.0"] - satisfied["q.1.1"])
    assert via_nn_only and via_terms_only  # both explanations occur, so names discriminate


@pytest.mark.parametrize("constraint", TOPK_CONSTRAINTS)
def test_hnsw_top_k_with_a_pushed_down_constraint(
    opensearch: OpenSearch, topk_index: LoadedIndex, server_version: ServerVersion,
    constraint: str,
) -> None:
    c, schema = topk_index.corpus, topk_index.schema
    vectors = topk_vectors(c, schema, constraint, HNSW_KEY)
    executable = planned(schema, c, f"(and {constraint} (nn {HNSW_KEY} :k {K}))", vectors)
    expected = expected_ids(c, executable, vectors)
    # Push-down put the constraint into the nn node: the per-node answer is the path answer.
    assert expected == reference_matches(executable, c.docs, vectors, path_context=True)
    assert len(expected) == K

    body = compile_search(executable, schema, vectors, size=4 * K, version=server_version).body
    assert _knn_clause(body)["method_parameters"] == {"ef_search": EF_SEARCH}
    hits = search_hits(opensearch, topk_index.name, body, exact_total=False)
    ids = [h["_id"] for h in hits]
    admitted = reference_matches(parse(constraint, schema), c.docs, {})
    assert set(ids) <= admitted, sorted(set(ids) - admitted)
    assert set(ids) == expected
    distance = c.distances(HNSW_KEY, vectors[HNSW_KEY])
    assert ids == sorted(expected, key=distance.__getitem__)  # TIE_GAP makes the order unique
    for hit in hits:  # filters add nothing: the score is the knn score (1 + cos) / 2
        got = Space.knn_score_to_distance(hit["_score"])
        assert got == pytest.approx(distance[hit["_id"]], abs=2 * SCORE_TOL), hit["_id"]


@pytest.mark.parametrize("constraint", TOPK_CONSTRAINTS)
def test_ivfpq_top_k_probing_every_list(
    opensearch: OpenSearch, topk_index: LoadedIndex, server_version: ServerVersion,
    constraint: str,
) -> None:
    c, schema = topk_index.corpus, topk_index.schema
    vectors = topk_vectors(c, schema, constraint, IVF_KEY)
    text = f"(and {constraint} (nn {IVF_KEY} :k {K} :nprobe {IVF_NLIST}))"
    executable = planned(schema, c, text, vectors)
    expected = expected_ids(c, executable, vectors)
    assert len(expected) == K

    body = compile_search(executable, schema, vectors, size=4 * K, version=server_version).body
    assert _knn_clause(body)["method_parameters"] == {"nprobes": IVF_NLIST}
    hits = search_hits(opensearch, topk_index.name, body, exact_total=False)
    ids = {h["_id"] for h in hits}
    admitted = reference_matches(parse(constraint, schema), c.docs, {})
    assert ids <= admitted, sorted(ids - admitted)
    assert len(hits) == K  # one segment; every list probed, so K admitted vectors are reachable
    # PQ distances are approximate: one neighbour may swap across the K-th boundary.
    assert len(ids & expected) >= K - 1, (sorted(ids), sorted(expected))


def test_rescore_puts_the_highest_cosine_first(
    opensearch: OpenSearch, corpus_index: LoadedIndex, server_version: ServerVersion
) -> None:
    c, schema = corpus_index.corpus, corpus_index.schema
    executable = planned(schema, c, "(term location:seattle)", {})
    matching = expected_ids(c, executable, {})
    with_vector = [d for d in c.docs if d.id in matching and HNSW_KEY in d.embeddings]
    # The last such document in index order: first-stage scores tie (keyword, no norms), so
    # without rescoring it comes after the others; the query vector is close to it.
    target = with_vector[-1]
    rng = np.random.default_rng(SEED + 8)
    vector = _unit(target.embeddings[HNSW_KEY] + 0.05 * rng.normal(size=DIM))
    cosine = {d.id: 1.0 - cosine_distance(vector, d.embeddings[HNSW_KEY]) for d in with_vector}
    ranked = sorted(cosine, key=cosine.__getitem__, reverse=True)
    assert ranked[0] == target.id and cosine[ranked[0]] - cosine[ranked[1]] >= TIE_GAP
    assert min(cosine.values()) > -1.0 + TIE_GAP  # 1 + cos > 0: rescored docs rise above others

    size = len(matching)
    plain = compile_search(executable, schema, {}, size=size, version=server_version).body
    baseline = search_hits(opensearch, corpus_index.name, plain)
    assert {h["_id"] for h in baseline} == matching
    assert baseline[0]["_id"] != target.id  # so it is the rescore that changes the order
    first_stage = {h["_id"]: h["_score"] for h in baseline}

    rescore = compile_rescore(schema, HNSW_KEY, vector, window_size=size)
    body = compile_search(executable, schema, {}, size=size, version=server_version,
                          rescore=[rescore]).body
    hits = search_hits(opensearch, corpus_index.name, body)
    ids = [h["_id"] for h in hits]
    assert set(ids) == matching
    assert ids[0] == target.id
    n = len(with_vector)
    assert set(ids[:n]) == set(cosine)  # documents without the vector keep the bare score
    order = [cosine[i] for i in ids[:n]]
    assert all(a >= b - SCORE_TOL for a, b in zip(order, order[1:], strict=False)), order
    for hit in hits:  # score_mode total: first stage + (1 + cos) where the vector exists
        bonus = 1.0 + cosine[hit["_id"]] if hit["_id"] in cosine else 0.0
        assert hit["_score"] == pytest.approx(first_stage[hit["_id"]] + bonus, abs=SCORE_TOL)


def test_server_version_is_supported(opensearch: OpenSearch) -> None:
    info = opensearch.info()
    version = ServerVersion.from_info(info)
    assert version >= MINIMUM
    assert str(version) == IMAGE.rsplit(":", 1)[1]  # the pinned image is what answered


# --------------------------------------------------------------------------------------------
# The OpenSearch store's IVF-PQ keys: training through the k-NN plugin (needs the native
# libraries, so here and not on the shared node; tests/test_opensearch_models.py covers
# everything before `_train` on the real node)


def _store_schema(model_id: str) -> Schema:
    return Schema.create("ivfstore", (Namespace("location", "keyword"),), (EmbeddingKey(
        IVF_KEY, DIM, CoarseQuantizerSpec(nlist=IVF_NLIST),
        IvfPq(model_id, nlist=IVF_NLIST, pq_m=PQ_M, code_size=CODE_SIZE, nprobes=IVF_NLIST)),))


def _store_docs() -> list[IndexDocument]:
    c = topk_corpus()
    docs = []
    for d in c.docs:
        if IVF_KEY in d.embeddings:
            places = sorted(t.split(":", 1)[1] for t in d.terms if t.startswith("location:"))
            docs.append(IndexDocument(d.id, {"location": places} if places else {},
                                      embeddings={IVF_KEY: d.embeddings[IVF_KEY]}))
    return docs


def test_the_store_trains_its_ivfpq_model_and_drop_deletes_it(opensearch: OpenSearch) -> None:
    from ebr.stores.opensearch.models import model_state, training_index
    from ebr.stores.opensearch.store import OpenSearchStore

    index, model_id = "ebr-store-ivf", "ebr-store-ivf-model"
    with OpenSearchStore.create(opensearch, index, _store_schema(model_id), engine="faiss",
                                training={IVF_KEY: training_vectors()}) as store:
        assert store.knn_models == {IVF_KEY: model_id} and not store.untrained_models
        assert (model_state(opensearch, model_id) or {}).get("state") == "created"
        assert not opensearch.indices.exists(index=training_index(index, IVF_KEY))
        docs = _store_docs()
        assert store.add(docs).added == len(docs)
        query = np.asarray(docs[0].embeddings[IVF_KEY], np.float32)
        result = search_text(store, f"(nn {IVF_KEY} :k 3)", {IVF_KEY: query}, 10)
        assert docs[0].id in result.ids and len(result.ids) == 3  # PQ distances find it
    OpenSearchStore.drop(opensearch, index)
    assert model_state(opensearch, model_id) is None


def test_a_key_trained_after_create_gets_its_field(opensearch: OpenSearch) -> None:
    from ebr.stores.opensearch.store import OpenSearchStore

    index, model_id = "ebr-store-ivf-later", "ebr-store-ivf-later-model"
    with OpenSearchStore.create(opensearch, index, _store_schema(model_id),
                                engine="faiss") as store:
        docs = _store_docs()
        with pytest.raises(StoreError, match="is not trained"):
            store.add(docs[:1])
        store.train_model(IVF_KEY, training_vectors())
        assert store.add(docs).added == len(docs)
    with OpenSearchStore.open(opensearch, index) as store:
        assert store.knn_models == {IVF_KEY: model_id}
    OpenSearchStore.drop(opensearch, index)


def test_a_failed_training_names_the_clusters_error(opensearch: OpenSearch) -> None:
    """More inverted lists than training vectors: Faiss refuses, the model turns ``failed``;
    the store's wait reports the plugin's error and deletes the failed model."""
    from ebr.stores.opensearch.models import model_state, wait_for_model, write_training_index

    key = EmbeddingKey(IVF_KEY, DIM, ann=IvfPq("ebr-failing", nlist=1024, pq_m=PQ_M,
                                               code_size=CODE_SIZE))
    write_training_index(opensearch, "ebr-failing-training", key, training_vectors())
    try:
        opensearch.plugins.knn.train_model(model_id="ebr-failing", body=train_model_body(
            key, "ebr-failing-training"))
        with pytest.raises(StoreError, match="training k-NN model 'ebr-failing' .* failed: "):
            wait_for_model(opensearch, "ebr-failing", timeout=120, poll=0.5)
        assert model_state(opensearch, "ebr-failing") is None
    finally:
        opensearch.indices.delete(index="ebr-failing-training", ignore_unavailable=True)
