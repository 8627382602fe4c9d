"""PQ codes for compressed verification: schema, training (with and without OPQ),
persistence, codes for later documents, and that results stay exact for what they return
with high recall on clustered data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ebr import SchemaError, parse, plan
from ebr.errors import StoreError
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Schema
from ebr.quantization.coarse import unit_rows
from ebr.quantization.product import CodedDistances
from ebr.stores.local import LocalStore
from ebr.stores.local.database import DB_FILE
from ebr.stores.protocol import IndexDocument, SearchResult

DIM, CENTRES, DOCS = 32, 20, 3000
RADIUS = 0.3


def schema(pq_m: int = 8, opq: bool = False, nlist: int = 16) -> Schema:
    return Schema.create("pq", keys=(EmbeddingKey("e", DIM, CoarseQuantizerSpec(
        nlist=nlist, opq=opq, pq_m=pq_m, default_nprobe=4)),))


def clustered(n: int, seed: int = 0, start: int = 0) -> tuple[np.ndarray, list[IndexDocument]]:
    """Unit vectors around fixed random centres (the benchmark's shape, smaller)."""
    centres = np.random.default_rng(99).standard_normal((CENTRES, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    v = centres[rng.integers(0, CENTRES, n)] / np.sqrt(DIM) + 0.6 / np.sqrt(DIM) * (
        rng.standard_normal((n, DIM)).astype(np.float32))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return v, [IndexDocument(f"d{start + i}", embeddings={"e": v[i]}) for i in range(n)]


def queries(vectors: np.ndarray, n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    q = vectors[rng.integers(0, len(vectors), n)] + 0.2 / np.sqrt(DIM) * rng.standard_normal(
        (n, DIM)).astype(np.float32)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def run(store: LocalStore, text: str, q: np.ndarray, size: int = 10_000) -> SearchResult:
    vectors = {"e": q}
    return store.search(plan(parse(text, store.schema), vectors, store.quantizers,
                             store.schema), vectors, size)


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, list[IndexDocument]]:
    return clustered(DOCS)


def build(path: Path, docs: list[IndexDocument], **spec: bool | int) -> LocalStore:
    store = LocalStore.create(path, schema(**spec), synchronous="NORMAL")  # type: ignore[arg-type]
    store.add(docs)
    store.train_quantizers(seed=1)
    return store


def test_schema_validates_pq_m_and_opq() -> None:
    assert Schema.from_json(schema(8, True).to_json()) == schema(8, True)
    with pytest.raises(SchemaError, match=r"quantizer.pq_m: pq_m \(5\) must divide"):
        schema(5)
    with pytest.raises(SchemaError, match="quantizer.opq: an OPQ rotation only serves PQ"):
        schema(0, True)


@pytest.mark.parametrize("opq", [False, True])
def test_training_keeps_a_code_per_row(tmp_path: Path, opq: bool,
                                       corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    with build(tmp_path / "i", docs[:1000], opq=opq) as store:
        product = store._snapshot.products["e"]
        table = store._snapshot.tables["e"]
        assert product.codebooks.shape == (8, 256, DIM // 8)
        assert (product.rotation is not None) == opq
        if product.rotation is not None:  # OPQ's rotation is orthonormal
            np.testing.assert_allclose(product.rotation @ product.rotation.T, np.eye(DIM),
                                       atol=1e-4)
        assert table.codes[: table.rows].shape == (1000, 8)
        rows = table.row_of(np.arange(1000, dtype=np.uint32))  # laid out by cluster
        codes, norms = product.encode(unit_rows(vectors[:1000]), table.clusters[rows])
        np.testing.assert_array_equal(table.codes[rows], codes)
        np.testing.assert_allclose(table.code_norms[rows], norms, rtol=1e-6)
        assert abs(float(np.median(norms)) - 1) < 0.1  # reconstructions of unit vectors


def test_results_are_exact_subsets_with_high_recall(
        tmp_path: Path, corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    plain = build(tmp_path / "plain", docs, pq_m=0)
    coded = build(tmp_path / "coded", docs)
    found = truth = 0
    coded_verified = plain_verified = by_codes = 0
    text = f"(nn e :radius {RADIUS} :nprobe 16)"  # every cluster: only the codes can miss
    for q in queries(vectors, 20):
        exact = run(plain, f"(nn e :radius {RADIUS} :exact true)", q)
        without = run(plain, text, q)
        got = run(coded, text, q)
        assert got.stats.candidates_by_codes == DOCS and without.stats.candidates_by_codes == 0
        assert set(without.ids) == set(exact.ids)
        assert set(got.ids) <= set(exact.ids)
        want = {h.id: h.clauses[0].distance for h in exact.hits}
        for hit in got.hits:  # reported distances are the exact ones
            assert hit.clauses[0].distance == pytest.approx(want[hit.id], abs=1e-12)
        found, truth = found + len(got.ids), truth + len(exact.ids)
        coded_verified += got.stats.candidates_verified
        plain_verified += without.stats.candidates_verified
        by_codes += got.stats.candidates_by_codes
    assert truth > 500 and found / truth >= 0.95
    assert coded_verified < plain_verified / 2 and by_codes > 0
    # exact requests never use codes
    assert run(coded, f"(nn e :radius {RADIUS} :exact true)", vectors[0]).stats \
        .candidates_by_codes == 0
    coded.close()
    plain.close()


def test_probed_top_k_refines_by_codes(tmp_path: Path,
                                       corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    store = build(tmp_path / "i", docs)
    hits = total = 0
    for q in queries(vectors, 10):
        store.exact_threshold = DOCS  # exact over every document
        exact = run(store, "(nn e :k 10)", q, 10)
        assert exact.stats.topk[0].strategy == "exact"
        store.exact_threshold = 0  # probe even this small index
        got = run(store, "(nn e :k 10 :nprobe 16)", q, 10)
        assert got.stats.topk[0].strategy == "probe"
        assert got.stats.candidates_by_codes == DOCS
        assert got.stats.candidates_verified < DOCS / 4
        hits += len(set(got.ids) & set(exact.ids))
        total += len(exact.ids)
    assert hits / total >= 0.95
    store.close()


def test_codes_persist_and_reopen_gives_the_same_results(
        tmp_path: Path, corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    text = f"(nn e :radius {RADIUS} :nprobe 4)"
    qs = queries(vectors, 5)
    with build(tmp_path / "i", docs[:1500], opq=True) as store:
        before = [run(store, text, q) for q in qs]
        codes = codes_by_id(store)
    with LocalStore.open(tmp_path / "i", readonly=True) as store:
        after = [run(store, text, q) for q in qs]
        assert codes_by_id(store) == codes  # rows are renumbered in id order on open
    for a, b in zip(before, after, strict=True):
        assert a.ids == b.ids and a.stats.candidates_by_codes == b.stats.candidates_by_codes
        assert a.stats.candidates_verified == b.stats.candidates_verified


def codes_by_id(store: LocalStore) -> dict[str, bytes]:
    snap = store._snapshot
    table = snap.tables["e"]
    return {snap.ids[int(table.docnums[r])]: table.codes[r].tobytes() for r in range(table.rows)}


def test_documents_added_after_training_get_codes(
        tmp_path: Path, corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    _, docs = corpus
    later, new = clustered(50, seed=5, start=DOCS)
    with build(tmp_path / "i", docs[:1000]) as store:
        store.add(new)
        snap = store._snapshot
        table, product = snap.tables["e"], snap.products["e"]
        rows = table.row_of(np.arange(1000, 1050, dtype=np.uint32))
        codes, _ = product.encode(unit_rows(later), table.clusters[rows])
        np.testing.assert_array_equal(table.codes[rows], codes)
        got = run(store, "(nn e :radius 0.001 :nprobe 16)", later[3])
        assert got.ids == [f"d{DOCS + 3}"] and got.stats.candidates_by_codes > 0
    with sqlite3.connect(tmp_path / "i" / DB_FILE) as conn:
        (embeddings,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
        (coded,) = conn.execute(
            "SELECT count(*) FROM assignments WHERE code IS NOT NULL").fetchone()
    assert coded == embeddings == 1050


def test_too_few_vectors_for_pq_is_a_clear_error(tmp_path: Path) -> None:
    _, docs = clustered(200)
    with LocalStore.create(tmp_path / "i", schema(nlist=4)) as store:
        store.add(docs)
        with pytest.raises(StoreError, match="a sample of 200 vectors; 8-bit codes need at "
                                             "least 256"):
            store.train_quantizers()
        assert dict(store.quantizers) == {}  # nothing half-installed


def test_set_quantizer_drops_codes_of_old_residuals(
        tmp_path: Path, corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    with build(tmp_path / "i", docs[:1000]) as store:
        store.set_quantizer("e", store.quantizers["e"].centroids[:8])
        assert "e" not in store._snapshot.products
        assert run(store, f"(nn e :radius {RADIUS})", vectors[0]).stats.candidates_by_codes == 0
    with LocalStore.open(tmp_path / "i") as store:  # and so after reopening
        assert "e" not in store._snapshot.products


def test_refine_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refine_margin"):
        LocalStore.create(tmp_path / "a", schema(), refine_margin=-1.0)
    with pytest.raises(ValueError, match="refine_factor"):
        LocalStore.create(tmp_path / "b", schema(), refine_factor=0)


@pytest.mark.parametrize("opq", [False, True])
def test_coded_distances_are_those_of_the_reconstructions(
        tmp_path: Path, opq: bool, corpus: tuple[np.ndarray, list[IndexDocument]]) -> None:
    vectors, docs = corpus
    n = 1000 if opq else DOCS  # OPQ training is the slow part; 3000 rows reach both paths
    with build(tmp_path / "i", docs[:n], opq=opq) as store:
        table, product = store._snapshot.tables["e"], store._snapshot.products["e"]
        codes, clusters = table.codes[: table.rows], table.clusters[: table.rows]
        decoded = product.codebooks[np.arange(product.m), codes].reshape(len(codes), DIM)
        if product.rotation is not None:
            decoded = decoded @ product.rotation
        recon = product.centroids[clusters] + decoded
        q = queries(vectors, 1)[0] * 3  # the query's length does not matter
        want = 1 - recon @ q / (np.linalg.norm(recon, axis=1) * np.linalg.norm(q))
        for rows in (np.arange(100, dtype=np.int64), np.arange(n, dtype=np.int64)):
            got = CodedDistances(product, q).distances(codes, clusters, table.code_norms, rows)
            np.testing.assert_allclose(got, want[rows], atol=1e-5)  # one gather, then columns
