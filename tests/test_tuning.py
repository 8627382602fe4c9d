"""``ebr tune`` (:mod:`ebr.tuning`): recall figures on hand-computed cases, the sweep and its
recommendation against a brute-force evaluation of every setting, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from ebr.cli.main import cli
from ebr.errors import TuningError
from ebr.evaluation.metrics import recall_at_k
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Schema
from ebr.quantization.coarse import CentroidQuantizer, assign, unit_rows
from ebr.quantization.kmeans import train_centroids
from ebr.quantization.product import CodedDistances, train_product
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument
from ebr.tuning.neighbours import count_within, exact_neighbours, one_recall_at, recall_at
from ebr.tuning.recommend import cheapest, recommend
from ebr.tuning.sources import given_queries, hold_out, read_ground_truth, read_matrix
from ebr.tuning.sweep import Codes, SweepSettings, sweep

DIM = 16


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """Faiss's OpenMP threads spin against each other on a loaded 2-core machine (PQ/OPQ
    training runs several times slower); the sweep's results do not depend on it."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def clustered(rows: int, seed: int, centres: int = 24) -> np.ndarray:
    """Unit vectors scattered around random centres (the shape real embeddings have)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM))
    v = c[rng.integers(0, centres, rows)] + 0.5 * rng.standard_normal((rows, DIM))
    return unit_rows(v.astype(np.float32))


# -- recall on hand-computed cases ----------------------------------------------------------

def test_one_recall_counts_queries_whose_nearest_is_in_the_first_k() -> None:
    found = np.array([[4, 2, 7], [1, 3, -1], [5, 6, 0]])
    nearest = np.array([7, 3, 9])
    assert one_recall_at(found, nearest, 3) == pytest.approx(2 / 3)  # query 2 misses 9
    assert one_recall_at(found, nearest, 2) == pytest.approx(1 / 3)  # 7 is third for query 0
    assert one_recall_at(found, nearest, 1) == 0.0


def test_recall_is_the_overlap_of_the_first_k_over_k() -> None:
    found = np.array([[0, 1, 2, 3], [9, 8, -1, -1]])
    truth = np.array([[3, 2, 11, 12], [8, 7, 6, 5]])
    # query 0: {2, 3} of 4; query 1: {8} of 4 (padding matches nothing, even a -1 in truth)
    assert recall_at(found, truth, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert recall_at(found, truth, 2) == pytest.approx((0 / 2 + 1 / 2) / 2)
    padded_truth = np.array([[-1, -1], [-1, -1]])
    assert recall_at(np.array([[-1, 0], [-1, -1]]), padded_truth, 2) == 0.0


def test_recall_agrees_with_the_retrieval_metric() -> None:
    rng = np.random.default_rng(3)
    found = np.stack([rng.permutation(50)[:20] for _ in range(30)])
    truth = np.stack([rng.permutation(50)[:20] for _ in range(30)])
    expected = np.mean([recall_at_k(list(f), set(t), 20) for f, t in zip(found, truth, strict=True)])
    assert recall_at(found, truth, 20) == pytest.approx(expected)


def test_exact_neighbours_and_radius_counts_by_hand() -> None:
    units = np.array([[1, 0], [0, 1], [-1, 0], [0.6, 0.8]], np.float32)
    query = np.array([[1, 0]], np.float32)
    ids, dist = exact_neighbours(units, query, 3)
    assert ids.tolist() == [[0, 3, 1]]
    assert dist[0].tolist() == pytest.approx([0.0, 0.4, 1.0])
    # distances 0, 1, 2, 0.4 from the query
    assert count_within(units, query, (0.0, 0.5, 1.0, 2.0)).tolist() == [[1, 2, 3, 4]]


# -- the sweep and its recommendation against brute force ----------------------------------

BASE, QUERIES = clustered(1200, 0), clustered(40, 1)
SETTINGS = SweepSettings(nlists=(8, 32), nprobes=(1, 2, 4, 8), radii=(0.2, 0.35),
                         codes=(Codes(), Codes(4), Codes(4, opq=True)), opq_iterations=4)


@pytest.fixture(scope="module")
def swept():
    return sweep(given_queries(BASE, QUERIES), SETTINGS)


def brute_force(result) -> dict[tuple[int, str, int], tuple[float, float, float]]:
    """Every setting evaluated on its own with plain loops: (nlist, codes, nprobe) ->
    (mean scanned, 1-recall@10, recall@100).  Flat settings run through Faiss's own
    IndexIVFFlat (its probing and its count of distances computed); coded ones score every
    row of the probed clusters with the codes, one query at a time."""
    exact = [list(np.argsort(1 - BASE @ q, kind="stable")[:100]) for q in QUERIES]
    out = {}
    for nlist in SETTINGS.nlists:
        centroids = result.centroids[nlist]
        quantizer = CentroidQuantizer(centroids)
        clusters = assign(quantizer, BASE)
        coarse = faiss.IndexFlatL2(DIM)
        coarse.add(centroids)
        ivf = faiss.IndexIVFFlat(coarse, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.is_trained = True
        ivf.add(BASE)  # Faiss's own assignment to the nearest centroid
        _, sample = train_centroids("tune", BASE, nlist, sample_size=None, seed=0, niter=20)
        for codes in SETTINGS.codes:
            for nprobe in [n for n in SETTINGS.nprobes if n <= nlist]:
                if not codes.pq_bytes:
                    faiss.cvar.indexIVF_stats.reset()
                    ivf.nprobe = nprobe
                    _, ids = ivf.search(QUERIES, 100)
                    scanned = faiss.cvar.indexIVF_stats.ndis / len(QUERIES)
                    lists = [[i for i in row if i >= 0] for row in ids]
                else:
                    product = train_product("tune", BASE[sample], clusters[sample], centroids,
                                            codes.pq_bytes, opq=codes.opq, seed=0,
                                            opq_iterations=SETTINGS.opq_iterations)
                    coded, norms = product.encode(BASE, clusters)
                    lists, total = [], 0
                    for q in QUERIES:
                        probes = set(quantizer.probe(q, nprobe))
                        rows = np.array([r for r in range(len(BASE)) if clusters[r] in probes])
                        total += len(rows)
                        d = CodedDistances(product, q).distances(coded, clusters, norms, rows)
                        lists.append(list(rows[np.argsort(d, kind="stable")[:100]]))
                    scanned = total / len(QUERIES)
                one = np.mean([recall_at_k(f, {e[0]}, 10) for f, e in zip(lists, exact, strict=True)])
                full = np.mean([recall_at_k(f, set(e), 100) for f, e in zip(lists, exact, strict=True)])
                out[(nlist, codes.name, nprobe)] = (scanned, one, full)
    return out


def test_every_setting_matches_its_brute_force_evaluation(swept) -> None:
    expected = brute_force(swept)
    measured = {(p.nlist, p.codes, p.nprobe): (p.scanned, p.one_recall_at_10, p.recall_at_100)
                for p in swept.topk}
    assert measured.keys() == expected.keys()
    for setting, figures in expected.items():
        assert measured[setting] == pytest.approx(figures, abs=0.011), setting


def test_the_recommendation_is_the_cheapest_setting_found_by_brute_force(swept) -> None:
    expected = brute_force(swept)
    bytes_of = {c.name: c.bytes_per_vector(DIM) for c in SETTINGS.codes}
    points = recommend(swept, (0.5, 0.8, 0.9, 0.95))
    checked = 0
    for op in points:
        column = {"1-recall@10": 1, "recall@100": 2}.get(op.metric)
        if column is None:
            continue
        eligible = [s for s, f in expected.items() if f[column] >= op.required]
        best = min(eligible, key=lambda s: (expected[s][0], bytes_of[s[1]], s[0], s[2]),
                   default=None)
        got = None if op.topk is None else (op.topk.nlist, op.topk.codes, op.topk.nprobe)
        assert got == best, (op.metric, op.target)
        checked += best is not None
    assert checked >= 6  # the targets are reachable, so the comparison means something
    # the cheapest is not always the most expensive setting
    assert {op.topk.nprobe for op in points if op.topk} != {8}


def test_radius_points_match_exact_verification_of_the_probed_clusters(swept) -> None:
    quantizer = CentroidQuantizer(swept.centroids[32])
    clusters = assign(quantizer, BASE)
    for radius in SETTINGS.radii:
        exact = [(1 - BASE @ q <= radius) for q in QUERIES]
        for nprobe in (1, 4):
            found = [m & np.isin(clusters, quantizer.probe(q, nprobe))
                     for m, q in zip(exact, QUERIES, strict=True)]
            recall = np.mean([f.sum() / m.sum() for f, m in zip(found, exact, strict=True) if m.any()])
            point = next(p for p in swept.radius
                         if (p.radius, p.nlist, p.nprobe) == (radius, 32, nprobe))
            assert point.exact_matched == pytest.approx(np.mean([m.sum() for m in exact]))
            assert point.matched == pytest.approx(np.mean([f.sum() for f in found]))
            assert point.recall == pytest.approx(recall)


def test_cheapest_prefers_fewer_scanned_then_fewer_bytes(swept) -> None:
    flat = [p for p in swept.topk if p.codes == "Flat"]
    assert cheapest(flat, lambda p: p.one_recall_at_10, 2.0) is None
    every = cheapest(swept.topk, lambda p: p.one_recall_at_10, 0.0)
    assert every is not None and every.scanned == min(p.scanned for p in swept.topk)
    assert every.code_bytes == 4  # PQ4 and OPQ4 scan as much as Flat at the same nlist/nprobe


def test_a_given_ground_truth_is_reported_beside_exact_search() -> None:
    truth = np.stack([np.argsort(1 - BASE @ q)[:100] for q in QUERIES])
    truth[:, :50] = truth[:, 50:]  # a reference that agrees on half of the top 100
    result = sweep(given_queries(BASE, QUERIES, truth),
                   SweepSettings(nlists=(8,), nprobes=(8,)))
    assert result.exact_vs_truth["recall@100"] == pytest.approx(0.5)
    (point,) = result.topk
    assert point.recall_at_100 == 1.0 and point.truth_recall_at_100 == pytest.approx(0.5)


@pytest.mark.parametrize(("settings", "message"), [
    (SweepSettings(nlists=(5000,), nprobes=(1,)), "nlist 5000 must be between 1 and the 1200"),
    (SweepSettings(nlists=(8,), nprobes=(0,)), "nprobe must be >= 1"),
    (SweepSettings(nlists=(8,), nprobes=(1,), codes=(Codes(5),)), "5 PQ bytes must divide the dimension 16"),
    (SweepSettings(nlists=(8,), nprobes=(1,), radii=(2.5,)), "radius must be in (0, 2]"),
    (SweepSettings(nlists=(), nprobes=(1,)), "nothing to sweep"),
])
def test_settings_the_data_cannot_support(settings: SweepSettings, message: str) -> None:
    with pytest.raises(TuningError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sweep(given_queries(BASE, QUERIES), settings)


def test_pq_needs_enough_rows_to_train() -> None:
    with pytest.raises(TuningError, match="at least 256 vectors"):
        sweep(given_queries(BASE[:100], QUERIES), SweepSettings((4,), (1,), (Codes(4),)))


def test_default_grids() -> None:
    full = SweepSettings.default(10_000, 128)
    assert full.nlists == (32, 128, 512) and full.nprobes[-1] == 256
    assert [c.name for c in full.codes][:3] == ["Flat", "PQ8", "OPQ8,PQ8"]
    quick = SweepSettings.default(10_000, 128, quick=True, opq=False)
    assert quick.nlists == (128,) and [c.name for c in quick.codes] == ["Flat", "PQ32"]
    assert SweepSettings.default(100, 8).nlists == (2, 6)  # at least 16 rows per cluster


# -- reading the inputs ------------------------------------------------------------------------

@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(5, np.float32), "must be a matrix"),
    (np.array([[1.0, np.nan], [1.0, 0.0]]), "row 0 is zero or not finite"),
    (np.array([[1.0, 1.0], [0.0, 0.0]]), "row 1 is zero or not finite"),
    (np.array([["a", "b"]]), "must be numbers"),
])
def test_bad_vector_files(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "v.npy", array)
    with pytest.raises(TuningError, match=message):
        read_matrix(tmp_path / "v.npy")


def test_vector_file_kinds(tmp_path: Path) -> None:
    np.savez(tmp_path / "encoded.npz", ids=np.array(["a", "b"]), vectors=np.eye(2), key=np.array("k"))
    assert read_matrix(tmp_path / "encoded.npz").tolist() == [[1, 0], [0, 1]]
    np.savez(tmp_path / "two.npz", a=np.eye(2), b=np.eye(2))
    with pytest.raises(TuningError, match="no 'vectors' array among"):
        read_matrix(tmp_path / "two.npz")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(TuningError, match="cannot read vectors"):
        read_matrix(tmp_path / "broken.npy")
    with pytest.raises(TuningError, match="must be an .npy or .npz"):
        read_matrix(tmp_path / "v.csv")


def test_ground_truth_and_held_out_queries(tmp_path: Path) -> None:
    np.save(tmp_path / "gt.npy", np.array([[0, 5], [1, 2]]))
    with pytest.raises(TuningError, match="ids must be base rows 0..4"):
        read_ground_truth(tmp_path / "gt.npy", 2, 5)
    with pytest.raises(TuningError, match="one row per query \\(3\\)"):
        read_ground_truth(tmp_path / "gt.npy", 3, 10)
    data = hold_out(BASE, 40, seed=1)
    assert data.base.shape == (1160, DIM) and data.queries.shape == (40, DIM)
    assert not (data.queries[:, None, :] == data.base[None, :, :]).all(axis=2).any()
    with pytest.raises(TuningError, match="cannot hold out 1200 queries"):
        hold_out(BASE, 1200, seed=1)
    with pytest.raises(TuningError, match="queries have dimension 3"):
        given_queries(BASE, np.ones((2, 3), np.float32))


# -- the command ------------------------------------------------------------------------------

def tune(*args: str) -> object:
    return CliRunner().invoke(cli, ["tune", *args, "--quiet"])


def test_command_writes_table_json_and_png(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", BASE)
    out = tmp_path / "out"
    result = tune(str(tmp_path / "v.npy"), "--nlist", "8,32", "--nprobe", "1,4", "--pq-bytes", "4",
                  "--no-opq", "--num-queries", "30", "--target", "0.9", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "1,170 documents x 16-d, 30 queries, cosine" in result.output
    assert "    32         PQ4     4      4       163" in result.output
    assert "1-recall@10 >= 0.900 (0.9 of exact): nlist" in result.output
    report = json.loads((out / "tune.json").read_text())
    assert report["settings"]["codes"] == ["Flat", "PQ4"]
    assert len(report["topk"]) == 2 * 2 * 2 and len(report["radius"]) == 2 * 2 * 2
    assert {r["metric"] for r in report["recommendations"]} >= {"1-recall@10", "recall@100"}
    png = (out / "tune.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.image

    assert matplotlib.image.imread(out / "tune.png").shape[:2] == (500, 1800)


def test_command_reads_a_local_index(tmp_path: Path) -> None:
    schema = Schema.create("t", (), (EmbeddingKey("emb", DIM, CoarseQuantizerSpec(nlist=4)),
                                     EmbeddingKey("other", 2, CoarseQuantizerSpec(nlist=1))))
    with LocalStore.create(tmp_path / "index", schema) as store:
        store.add(IndexDocument(f"d{i:03d}", embeddings={"emb": v}) for i, v in enumerate(BASE[:300]))
    np.save(tmp_path / "v.npy", BASE[:300])
    args = ["--nlist", "4", "--nprobe", "1,2", "--pq-bytes", "4", "--num-queries", "20"]
    from_index = tune(str(tmp_path / "index"), "--key", "emb", *args, "--output", str(tmp_path / "a"))
    from_file = tune(str(tmp_path / "v.npy"), *args, "--output", str(tmp_path / "b"))
    assert from_index.exit_code == 0, from_index.output
    assert from_file.exit_code == 0, from_file.output
    a, b = (json.loads((tmp_path / d / "tune.json").read_text()) for d in "ab")
    assert a["topk"] == b["topk"] and a["radius"] == b["radius"]
    assert a["source"] == {"index": str(tmp_path / "index"), "key": "emb"}
    no_key = tune(str(tmp_path / "index"), "--output", str(tmp_path / "c"))
    assert no_key.exit_code == 2
    assert "name the embedding key with --key: the index has emb, other" in no_key.output
    wrong = tune(str(tmp_path / "index"), "--key", "nope", "--output", str(tmp_path / "c"))
    assert wrong.exit_code == 2 and "'nope' is not an embedding key" in wrong.output


@pytest.mark.parametrize(("args", "message"), [
    (["missing.npy"], "missing.npy does not exist"),
    (["v.npy", "--target", "1.5"], "targets are shares of exact recall"),
    (["v.npy", "--nlist", "8,x"], "expected comma-separated ints"),
    (["v.npy", "--ground-truth", "v.npy"], "--ground-truth needs --queries"),
    (["v.npy", "--nlist", "99999"], "nlist 99999 must be between 1 and the"),
    (["v.npy", "--queries", "q.npy"], "the queries have dimension 3, the vectors 16"),
    (["v.npy", "--queries", "v.npy", "--ground-truth", "q.npy"], "ground truth must be an integer"),
    (["v.txt"], "must be an .npy or .npz file"),
])
def test_command_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    np.save("v.npy", BASE)
    np.save("q.npy", np.ones((4, 3), np.float32))
    Path("v.txt").write_text("1 2\n")
    result = tune(*args, "--output", "out")
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit)
