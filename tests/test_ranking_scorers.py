"""The scorers: the linear default, LightGBM LambdaRank trained on a synthetic task with a
known signal, the reranker file (round trip and refusals) and concurrent use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ebr import parse, plan
from ebr.errors import RerankerError
from ebr.evaluation.metrics import ndcg_at_k
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.ranking import (
    DEFAULT_WEIGHTS,
    FeatureSet,
    JudgedSearch,
    LambdaRankReranker,
    LinearReranker,
    Reranker,
    RerankRequest,
    compute_features,
    load_reranker,
    train_lambdarank,
)
from ebr.ranking.lambdarank import BIAS, GradedFeatures, LambdaRankSettings, fit_lambdarank, graded_features
from ebr.stores.local import LocalStore
from ebr.stores.protocol import Hit, IndexDocument

DIM = 8
COUNTRIES = ("us", "fr", "de", "jp")
SCHEMA = Schema.create("synthetic", (Namespace("title"), Namespace("country", "keyword")),
                       (EmbeddingKey("m", DIM, CoarseQuantizerSpec(nlist=1)),))
QUERY = "(nn m :k 30)"


def documents(n: int = 300) -> list[IndexDocument]:
    rng = np.random.default_rng(1)
    return [IndexDocument(f"d{i:03d}", {"country": [str(rng.choice(COUNTRIES))]},
                          {"title": "thing"}, {"m": rng.standard_normal(DIM)},
                          rank=float(rng.integers(0, 10))) for i in range(n)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    s = LocalStore.create(Path(tmp_path_factory.mktemp("scorers")) / "index", SCHEMA,
                          synchronous="OFF")
    s.set_quantizer("m", np.ones((1, DIM), np.float32))
    s.add(documents())
    yield s
    s.close()


def judged(store: LocalStore, seed: int) -> JudgedSearch:
    """A search whose relevance the default underweights: the searcher's country decides
    (grade 2), a high static rank adds 1; the cosine, which the default trusts, says nothing."""
    rng = np.random.default_rng(seed)
    vectors = {"m": rng.standard_normal(DIM).astype(np.float32)}
    executable = plan(parse(QUERY, SCHEMA), vectors, store.quantizers, SCHEMA)
    hits = store.search(executable, vectors, size=30).hits
    country = str(rng.choice(COUNTRIES))
    documents = store.get_documents([h.id for h in hits])
    grades = {d.id: 2.0 * (d.terms["country"] == (country,)) + (d.rank >= 7)
              for d in documents if d is not None}
    return JudgedSearch(RerankRequest(vectors, context={"country": country}, plan=executable),
                        hits, grades)


def mean_ndcg(reranker: Reranker, searches: list[JudgedSearch], store: LocalStore) -> float:
    return float(np.mean([ndcg_at_k([r.hit.id for r in reranker.rerank(s.request, s.hits, store)],
                                    s.grades, 10) for s in searches]))


@pytest.fixture(scope="module")
def trained(store: LocalStore) -> LambdaRankReranker:
    return train_lambdarank([judged(store, seed) for seed in range(60)], store)


def test_linear_scores_are_the_weighted_sum_and_explain_every_hit(store: LocalStore) -> None:
    search = judged(store, 1000)
    ranked = LinearReranker().rerank(search.request, search.hits, store)
    assert sorted(r.hit.id for r in ranked) == sorted(h.id for h in search.hits)
    for r in ranked:
        for name, value in r.features.items():
            weight = DEFAULT_WEIGHTS[name.partition(":")[0]]
            assert r.contributions[name] == pytest.approx(weight * value, abs=1e-15)
        assert r.score == pytest.approx(sum(r.contributions.values()), abs=1e-12)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_linear_weights_by_name_override_their_family(store: LocalStore) -> None:
    search = judged(store, 1001)
    ranked = LinearReranker({"cosine": 0.0, "context_match": 5.0}).rerank(
        search.request, search.hits, store)
    assert all(r.contributions["cosine:m"] == 0 for r in ranked)
    # the whole score is now the country (5), then the rank and term evidence (< 1)
    first = [r.features["context_match"] for r in ranked]
    assert first == sorted(first, reverse=True)
    only_m = LinearReranker({"cosine": 0.0, "cosine:m": 2.0}).weight_vector(FeatureSet.for_schema(SCHEMA))
    assert only_m[0] == 2.0


@pytest.mark.parametrize("weights, message", [
    ({"cosine:other": 1.0}, "weights for features this index does not have: cosine:other"),
    ({"bm25": float("nan")}, "the weight of 'bm25' must be a finite number"),
])
def test_bad_linear_weights_are_refused(store: LocalStore, weights: dict[str, float],
                                        message: str) -> None:
    search = judged(store, 1002)
    with pytest.raises(RerankerError, match=message):
        LinearReranker(weights).rerank(search.request, search.hits, store)


def test_the_trained_scorer_learns_the_signal_the_default_underweights(
        store: LocalStore, trained: LambdaRankReranker) -> None:
    held_out = [judged(store, seed) for seed in range(500, 530)]
    linear, learned = mean_ndcg(LinearReranker(), held_out, store), mean_ndcg(trained, held_out, store)
    ideal = float(np.mean([ndcg_at_k(sorted(s.grades, key=lambda i: -s.grades[i]), s.grades, 10)
                           for s in held_out]))
    assert ideal == 1.0
    assert learned > 0.95, (learned, linear)
    assert learned > linear + 0.2, (learned, linear)


def test_trained_contributions_are_shap_values_summing_to_the_score(
        store: LocalStore, trained: LambdaRankReranker) -> None:
    search = judged(store, 1003)
    ranked = trained.rerank(search.request, search.hits, store)
    features = compute_features(search.request, [r.hit for r in ranked], store)
    raw = trained._booster.predict(features.values)
    for r, expected in zip(ranked, raw, strict=True):
        assert set(r.contributions) == {*FeatureSet.for_schema(SCHEMA).names, BIAS}
        assert r.score == pytest.approx(sum(r.contributions.values()), abs=1e-9)
        assert r.score == pytest.approx(float(expected), abs=1e-9)
    assert any(abs(r.contributions["context_match"]) > 0.1 for r in ranked)
    assert all(r.contributions["bm25:title"] == 0 for r in ranked)  # constant: never split on


def test_saved_and_loaded_it_scores_the_same(store: LocalStore, trained: LambdaRankReranker,
                                             tmp_path: Path) -> None:
    path = tmp_path / "reranker.json"
    trained.save(path)
    body = json.loads(path.read_text())
    assert body["features"] == list(FeatureSet.for_schema(SCHEMA).names)
    assert body["fingerprint"] == FeatureSet.for_schema(SCHEMA).fingerprint
    loaded = load_reranker(path, SCHEMA)
    search = judged(store, 1004)
    assert loaded.rerank(search.request, search.hits, store) == trained.rerank(
        search.request, search.hits, store)


OTHER = Schema.create("other", (Namespace("title"), Namespace("country", "keyword"),
                                Namespace("brand", "keyword")),
                      (EmbeddingKey("m", DIM, CoarseQuantizerSpec(nlist=1)),))


def test_a_reranker_trained_for_other_features_is_refused(
        store: LocalStore, trained: LambdaRankReranker, tmp_path: Path) -> None:
    path = tmp_path / "reranker.json"
    trained.save(path)
    with pytest.raises(RerankerError, match="new bm25:brand") as err:
        load_reranker(path, OTHER)
    assert "train it again" in str(err.value) and "\n" not in str(err.value)
    other = LocalStore.create(tmp_path / "other", OTHER, synchronous="OFF")
    try:
        with pytest.raises(RerankerError, match="this reranker was trained for features"):
            trained.rerank(RerankRequest(), [], other)
    finally:
        other.close()


def _edit(path: Path, **changes: object) -> None:
    body = json.loads(path.read_text())
    body.update(changes)
    path.write_text(json.dumps(body))


@pytest.mark.parametrize("corrupt, message", [
    (lambda p: p.write_text("{not json"), "is not a reranker file"),
    (lambda p: p.write_text("[]"), "is not an ebr reranker file"),
    (lambda p: _edit(p, version=7), "reranker file of version 7"),
    (lambda p: _edit(p, features=["cosine:m", "static_rank"]), "another definition of its features"),
    (lambda p: _edit(p, scorer="linear"), "holds a 'linear' scorer"),
    (lambda p: _edit(p, model="tree\nnonsense"), "not a LightGBM model"),
    (lambda p: p.unlink(), "cannot read reranker"),
])
def test_bad_reranker_files_get_one_line_errors(trained: LambdaRankReranker, tmp_path: Path,
                                                corrupt: object, message: str) -> None:
    path = tmp_path / "reranker.json"
    trained.save(path)
    corrupt(path)  # type: ignore[operator]
    with pytest.raises(RerankerError, match=message) as err:
        load_reranker(path)
    assert "\n" not in str(err.value)


def test_judgments_with_nothing_to_learn_are_refused(store: LocalStore) -> None:
    search = judged(store, 1005)
    with pytest.raises(RerankerError, match="nothing to learn from"):
        train_lambdarank([replace(search, grades={})], store)
    with pytest.raises(RerankerError, match=r"search 1: the grade of 'd\d+' must be a number >= 0"):
        train_lambdarank([replace(search, grades={search.hits[0].id: -1.0})], store)


def test_training_is_repeatable(store: LocalStore, trained: LambdaRankReranker) -> None:
    again = train_lambdarank([judged(store, seed) for seed in range(60)], store, LambdaRankSettings())
    assert again.model == trained.model


def test_concurrent_reranks_agree(store: LocalStore, trained: LambdaRankReranker) -> None:
    searches = [judged(store, seed) for seed in range(700, 716)]
    alone = [trained.rerank(s.request, s.hits, store) for s in searches]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda s: trained.rerank(s.request, s.hits, store), searches * 4))
    assert together == alone * 4


def test_hits_are_never_lost_or_duplicated(store: LocalStore, trained: LambdaRankReranker) -> None:
    search = judged(store, 1006)
    hits: list[Hit] = list(search.hits)
    for reranker in (LinearReranker(), trained):
        assert sorted(r.hit.id for r in reranker.rerank(search.request, hits, store)) == sorted(
            h.id for h in hits)


def test_features_of_another_models_index_train_the_same_scorer_once_renamed(
        store: LocalStore, tmp_path: Path) -> None:
    """Cross-fitting: the same vectors under another key (another model's index) give the
    same features, which, renamed to this index's key, fit the very scorer this index trains."""
    other_schema = Schema.create("other", SCHEMA.namespaces,
                                 (EmbeddingKey("m2", DIM, CoarseQuantizerSpec(nlist=1)),))
    other = LocalStore.create(tmp_path / "other", other_schema, synchronous="OFF")
    other.set_quantizer("m2", np.ones((1, DIM), np.float32))
    other.add([replace(d, embeddings={"m2": d.embeddings["m"]}) for d in documents()])
    searches = [judged(store, seed) for seed in range(60)]
    moved = []
    for s in searches:
        vectors = {"m2": s.request.vectors["m"]}
        executable = plan(parse("(nn m2 :k 30)", other_schema), vectors, other.quantizers, other_schema)
        moved.append(JudgedSearch(replace(s.request, vectors=vectors, plan=executable),
                                  other.search(executable, vectors, size=30).hits, s.grades))
    target = FeatureSet.for_schema(SCHEMA)
    theirs = FeatureSet.for_schema(other_schema)
    assert theirs != target and theirs.with_keys({"m2": "m"}) == target
    assert theirs.with_keys({"m2": "m"}).fingerprint == target.fingerprint
    fitted = fit_lambdarank(graded_features(moved, other, theirs), target)
    assert fitted.model == train_lambdarank(searches, store).model
    assert fitted.feature_set == target
    other.close()


def test_fitting_refuses_rows_of_another_width(store: LocalStore) -> None:
    groups = list(graded_features([judged(store, 1007)], store))
    narrow = [GradedFeatures(g.values[:, :-1], g.grades) for g in groups]
    with pytest.raises(RerankerError, match=r"training group 1: feature rows of shape \(30, \d+\) "
                                            r"for grades of shape \(30,\); expected a list of "
                                            r"grades and a row of \d+ features"):
        fit_lambdarank(narrow, FeatureSet.for_schema(SCHEMA))


@pytest.mark.parametrize(("values", "grades", "problem"), [
    (lambda g: g.values[:, 0], lambda g: g.grades, r"feature rows of shape \(30,\)"),
    (lambda g: g.values, lambda g: g.grades[:, None], r"grades of shape \(30, 1\)"),
    (lambda g: g.values, lambda g: np.where(np.arange(30) == 3, np.nan, g.grades),
     "every grade must be a number >= 0; got nan"),
    (lambda g: g.values, lambda g: g.grades - 1.0, "every grade must be a number >= 0; got -1.0"),
    (lambda g: g.values, lambda g: ["good"] * 30, "features and grades must be numbers"),
    (lambda g: g.values, lambda g: 1.0, r"grades of shape \(\)"),
])
def test_fitting_refuses_groups_it_cannot_read_with_a_clear_error(
        store: LocalStore, values: Any, grades: Any, problem: str) -> None:
    """``fit_lambdarank`` takes groups from anywhere (a cache, several stores): a group of the
    wrong shape or with a grade that is not a number >= 0 is a RerankerError, never an
    IndexError or a model fitted to nonsense."""
    groups = list(graded_features([judged(store, 1007), judged(store, 1008)], store))
    bad = [groups[0], GradedFeatures(values(groups[1]), grades(groups[1]))]
    with pytest.raises(RerankerError, match=f"training group 2: .*{problem}"):
        fit_lambdarank(bad, FeatureSet.for_schema(SCHEMA))
