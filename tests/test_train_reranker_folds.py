"""``ebr train-reranker --fold``: a reranker cross-fitted on fold indexes of encoders that never
trained on the fold's queries, fitted for the served index's features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ebr.cli.main import cli
from ebr.errors import RerankerError
from ebr.evaluation.judgments import read_judgments
from ebr.evaluation.reranker_training import fold_groups
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.ranking.feature_set import FeatureSet, cosine_feature
from ebr.ranking.features import compute_features
from ebr.request import Searcher
from ebr.stores.local import LocalStore
from support.request_corpus import KEY, SCHEMA, TITLES, build

pytest.importorskip("torch", reason="a fold's encoder is a model directory: pip install 'ebr[encoders]'")
pytest.importorskip("lightgbm", reason="the reranker is LightGBM's: pip install 'ebr[rerank]'")

TEMPLATE = "(or (match title $q) (nn $key :k 6 :nprobe 4))"
#: Each fold judges the queries its encoder never trained on.
FOLD_JUDGED = ("query\tdoc_id\tgrade\ndeck paint\tp05\t3\ndeck paint\tp06\t2\n"
               "deck paint\tp07\t1\n",
               "query\tdoc_id\tgrade\nwood screws\tp08\t3\nwood screws\tp09\t2\n"
               "claw hammer\tp04\t3\nclaw hammer\tp03\t1\n")


def _model(path: Path, seed: int, dim: int = 8) -> Path:
    """An (untrained) model directory whose key is its own: what `ebr train` writes."""
    import torch

    from ebr.encoders.encoder_config import CharTrigramChannel, EncoderConfig, TowerConfig
    from ebr.encoders.model.towers import TwoTowerModel
    from ebr.encoders.serving.model_directory import save_model_directory

    config = EncoderConfig(query=TowerConfig((CharTrigramChannel("trigrams", "text", 997, 8),),
                                             hidden_dim=8),
                           doc=TowerConfig((CharTrigramChannel("trigrams", "title", 997, 8),),
                                           hidden_dim=8), output_dim=dim)
    torch.manual_seed(seed)
    save_model_directory(path, TwoTowerModel(config).eval(), None, {})
    return path


def _fold_index(tmp: Path, model: Path, namespaces: tuple[tuple[str, str], ...]
                = (("title", "standard"), ("country", "keyword"))) -> Path:
    """The corpus under ``model``'s key, ingested with its document tower by ``ebr ingest``."""
    from ebr.encoders.serving.model_files import read_model_info

    info = read_model_info(model)
    schema = Schema.create("fold", tuple(Namespace(n, a) for n, a in namespaces),
                           (EmbeddingKey(info.key, info.output_dim, CoarseQuantizerSpec(nlist=1)),))
    (tmp / "schema.json").write_text(schema.to_json(), encoding="utf-8")
    with (tmp / "docs.jsonl").open("w", encoding="utf-8") as out:
        for uid, title, country in TITLES:
            out.write(json.dumps({"id": uid, "title": title, "country": country}) + "\n")
    index = tmp / "index"
    ingested = CliRunner().invoke(cli, ["ingest", str(tmp / "docs.jsonl"), "--store",
                                        f"local:{index}", "--schema", str(tmp / "schema.json"),
                                        "--model", str(model), "--quiet"])
    assert ingested.exit_code == 0, ingested.output
    return index


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path, Path]]:
    """Two folds: (index, model, judged file)."""
    made = []
    for n, judged in enumerate(FOLD_JUDGED):
        tmp = tmp_path_factory.mktemp(f"fold{n}")
        model = _model(tmp / "model", seed=n)
        (tmp / "judged.tsv").write_text(judged, encoding="utf-8")
        made.append((_fold_index(tmp, model), model, tmp / "judged.tsv"))
    return made


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served") / "index"
    build(path).close()
    return path


def _train(*args: object) -> Result:
    return CliRunner().invoke(cli, ["train-reranker", *map(str, args), "--path", TEMPLATE,
                                    "--quiet"])


def _fold_args(folds: list[tuple[Path, Path, Path]]) -> list[object]:
    return [a for fold in folds for a in ("--fold", *fold)]


def test_a_reranker_is_fitted_on_the_folds_candidates_for_the_served_features(
        served: Path, folds: list[tuple[Path, Path, Path]], tmp_path: Path) -> None:
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.ranking.lambdarank import fit_lambdarank, load_reranker
    from ebr.request import ModelEmbedder

    output = tmp_path / "reranker.json"
    result = _train(served, *_fold_args(folds), "--candidates", 5, "--output", output)
    assert result.exit_code == 0, result.output
    assert "trained on 3 queries" in result.output and "2 folds" in result.output
    target = FeatureSet.for_schema(SCHEMA)
    reranker = load_reranker(output, SCHEMA)  # refused unless fitted for the served features

    # The same fit from the library: each fold's queries retrieved on the fold with its encoder.
    groups = []
    for index, model, judged in folds:
        with LocalStore.open(index, readonly=True) as store:
            encoder = QueryEncoder(model)
            searcher = Searcher(store, [ModelEmbedder(encoder)])
            fold = list(fold_groups(searcher, TEMPLATE, read_judgments(judged).qrels, target, KEY,
                                    candidates=5))
            groups.extend(fold)
            # The fold's cosine fills the served key's column: its own encoder's cosine.
            text = next(iter(read_judgments(judged).qrels))
            found = searcher.retrieve(TEMPLATE, text=text, size=5)
            own = compute_features(found.request, found.hits, store)
            vectors = store.get_vectors([h.id for h in found.hits], encoder.key)
            query = encoder.encode({"text": text})
            cosines = [float(vectors[h.id] @ query / np.linalg.norm(vectors[h.id])
                             / np.linalg.norm(query)) for h in found.hits]
            assert np.allclose(own.values[:, own.feature_set.columns[cosine_feature(encoder.key)]],
                               cosines)
            assert np.array_equal(own.values, fold[0].values)
    assert len(groups) == 3 and sum(len(g.grades) for g in groups) > 3
    assert fit_lambdarank(groups, target).model == reranker.model


def test_folds_add_to_the_served_index_judged_queries(
        served: Path, folds: list[tuple[Path, Path, Path]], tmp_path: Path) -> None:
    judged = tmp_path / "judged.tsv"
    judged.write_text("query\tdoc_id\tgrade\nled light\tp12\t3\nled light\tp13\t1\n",
                      encoding="utf-8")
    result = _train(served, judged, *_fold_args(folds), "--output", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "trained on 4 queries" in result.output


def test_a_fold_of_other_features_is_refused(served: Path, folds: list[tuple[Path, Path, Path]],
                                             tmp_path: Path) -> None:
    _, model, judged = folds[0]
    other = _fold_index(tmp_path, model, (("title", "standard"),))  # no country namespace
    with LocalStore.open(other, readonly=True) as store, pytest.raises(RerankerError,
                                                                       match="same namespaces"):
        from ebr.encoders.serving.query_encoder import QueryEncoder
        from ebr.request import ModelEmbedder

        searcher = Searcher(store, [ModelEmbedder(QueryEncoder(model))])
        list(fold_groups(searcher, TEMPLATE, read_judgments(judged).qrels,
                         FeatureSet.for_schema(SCHEMA), KEY, candidates=5))
    result = _train(served, "--fold", other, model, judged, "--output", tmp_path / "r.json")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "same namespaces" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "message"), [
    ([], "give JUDGED"),
    (["--fold", "http://localhost:9200", "MODEL", "JUDGED"], "must be a local index"),
])
def test_bad_fold_arguments_are_one_line_errors(served: Path, folds: list[tuple[Path, Path, Path]],
                                                tmp_path: Path, args: list[str], message: str) -> None:
    _, model, judged = folds[0]
    args = [{"MODEL": str(model), "JUDGED": str(judged)}.get(a, a) for a in args]
    result = _train(served, *args, "--output", tmp_path / "r.json")
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "r.json").exists()
