"""The training loop on a tiny synthetic task: it learns, it is reproducible, it resumes exactly.

The task cannot be solved lexically: queries are written in one alphabet ("q07") and documents
in another ("d07"), so character trigrams never match across the towers, and separate towers
at random initialisation retrieve at chance.  A document holds two concepts; its query names
the same two.  Validation queries are unseen pairs of seen concepts.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ebr.encoders.encoder_config import CharTrigramChannel, EncoderConfig, TowerConfig
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.encoders.model.towers import TwoTowerModel
from ebr.encoders.serving.model_files import read_model_info
from ebr.encoders.training.config import TrainConfig
from ebr.encoders.training.data import TrainingData, prepare
from ebr.encoders.training.metrics import knn_recall_at_k
from ebr.encoders.training.pairs import Pair
from ebr.encoders.training.trainer import CHECKPOINT_FILE, train, train_model_directory

CONCEPTS = 30
DOCS = 160
K = 10


def synthetic_pairs(seed: int = 0) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    for i in range(DOCS):
        a, b = rng.sample(range(CONCEPTS), 2)
        doc = {"id": str(i), "title": f"d{a:02d} d{b:02d}"}
        query = {"text": f"q{a:02d} q{b:02d}" if rng.random() < 0.5 else f"q{b:02d} q{a:02d}"}
        pairs.append(Pair(query, doc))
    return pairs


def encoder(sharing: str = "none") -> EncoderConfig:
    return EncoderConfig(
        query=TowerConfig((CharTrigramChannel("trigrams", "text", 2048, 32),), hidden_dim=32),
        doc=TowerConfig((CharTrigramChannel("trigrams", "title", 2048, 32),), hidden_dim=32),
        output_dim=32, weight_sharing=sharing)


def config(**changes: object) -> TrainConfig:
    base = TrainConfig(epochs=12, batch_size=32, learning_rate=0.01, embedding_learning_rate=0.05,
                       validation_fraction=0.25, knn_recall_k=K, patience=12, threads=1)
    return base.replace(**changes)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return prepare(synthetic_pairs(), config())


def validation_recall(model: TwoTowerModel, data: TrainingData) -> float:
    queries, relevant = data.validation_queries()
    enc = model.config
    with torch.no_grad():
        model.eval()
        q = model.encode_query(TowerFeaturizer(enc.query, enc.hash_seed).featurize(queries)).numpy()
        d = model.encode_doc(TowerFeaturizer(enc.doc, enc.hash_seed).featurize(data.corpus)).numpy()
    return knn_recall_at_k(q, relevant, d, K)


def test_training_reaches_a_recall_random_weights_cannot(data: TrainingData, tmp_path: Path) -> None:
    assert len(data.validation_queries()[0]) >= 20
    torch.manual_seed(0)
    untrained = validation_recall(TwoTowerModel(encoder()), data)
    result = train(encoder(), config(), data, tmp_path)
    trained = validation_recall(result.model, data)
    assert untrained < 0.25  # chance is K / DOCS = 0.06
    assert trained > 0.6, f"trained KNN recall@{K} {trained:.3f} (untrained {untrained:.3f})"
    # The trainer's own validation figure is the same measurement, of the best epoch.
    best = next(r for r in result.history if r.epoch == result.best_epoch).validation_knn_recall
    assert best == pytest.approx(trained, abs=1e-6)
    assert len(result.history) == 12 and all(r.stage == 1 for r in result.history)


def test_the_same_seed_gives_the_same_weights(data: TrainingData, tmp_path: Path) -> None:
    first = train(encoder(), config(epochs=2), data, tmp_path / "a").model.state_dict()
    second = train(encoder(), config(epochs=2), data, tmp_path / "b").model.state_dict()
    other = train(encoder(), config(epochs=2, seed=1), data, tmp_path / "c").model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(data: TrainingData, tmp_path: Path) -> None:
    negatives = {"hard_negatives": True, "random_negatives": 4}
    straight = train(encoder(), config(epochs=4, **negatives), data, tmp_path / "a")
    train(encoder(), config(epochs=2, **negatives), data, tmp_path / "b")
    assert (tmp_path / "b" / CHECKPOINT_FILE).is_file()
    resumed = train(encoder(), config(epochs=4, **negatives), data, tmp_path / "b")
    assert resumed.resumed_from == 2
    assert [r.loss for r in resumed.history] == [r.loss for r in straight.history]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_configuration_is_refused(data: TrainingData, tmp_path: Path) -> None:
    train(encoder(), config(epochs=1), data, tmp_path)
    with pytest.raises(EncoderConfigError, match="different encoder or training config"):
        train(encoder(), config(epochs=2, learning_rate=0.5), data, tmp_path)


def test_training_stops_early_when_validation_stops_improving(data: TrainingData, tmp_path: Path) -> None:
    # Learning rates this small leave the recall exactly where it starts.
    frozen = config(epochs=6, patience=2, learning_rate=1e-12, embedding_learning_rate=1e-12)
    messages: list[str] = []
    result = train(encoder(), frozen, data, tmp_path, log=messages.append)
    assert result.stopped_early and result.best_epoch == 1
    assert len(result.history) == 3
    assert any(m.startswith("stopping early") for m in messages)


def test_a_converged_stage_one_moves_on_to_the_curriculum(data: TrainingData, tmp_path: Path) -> None:
    frozen = config(epochs=5, curriculum_epochs=2, patience=1, learning_rate=1e-12,
                    embedding_learning_rate=1e-12)
    messages: list[str] = []
    result = train(encoder(), frozen, data, tmp_path, log=messages.append)
    assert [(r.epoch, r.stage) for r in result.history] == [(1, 1), (2, 1), (6, 2)]
    assert result.stopped_early and result.best_epoch == 1
    assert any(m.startswith("stage 1 has converged") for m in messages)


def test_the_curriculum_runs_at_scaled_learning_rates(data: TrainingData, tmp_path: Path) -> None:
    settings = config(epochs=1, curriculum_epochs=1, curriculum_learning_rate_scale=0.25)
    train(encoder(), settings, data, tmp_path)
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=False)
    rates = [g["lr"] for o in saved["optimizers"] for g in o["param_groups"]]
    assert rates == pytest.approx([0.25 * settings.learning_rate, 0.25 * settings.embedding_learning_rate])


@pytest.mark.parametrize("changes", [
    {"loss": "triplet", "hard_negatives": True, "hard_negative_band": (3, 20)},
    {"loss": "softmax", "random_negatives": 8, "curriculum_epochs": 2},
])
def test_every_loss_and_stage_trains(data: TrainingData, tmp_path: Path, changes: dict[str, object]) -> None:
    result = train(encoder("all"), config(epochs=2, **changes), data, tmp_path)
    stages = [r.stage for r in result.history]
    assert stages == [1, 1] + [2] * int(changes.get("curriculum_epochs", 0))  # type: ignore[call-overload]
    assert all(np.isfinite(r.loss) and r.loss > 0 for r in result.history)
    assert all(r.validation_knn_recall is not None for r in result.history)


def test_pseudo_queries_need_fields_the_towers_read(data: TrainingData, tmp_path: Path) -> None:
    with pytest.raises(EncoderConfigError, match="document field 'body'"):
        train(encoder(), config(pseudo_queries=1.0, pseudo_query_fields=("body", "text")), data, tmp_path)
    with pytest.raises(EncoderConfigError, match="query field 'q'"):
        train(encoder(), config(pseudo_queries=1.0, pseudo_query_fields=("title", "q")), data, tmp_path)


def test_train_model_directory_writes_the_model_and_removes_the_checkpoint(
        data: TrainingData, tmp_path: Path) -> None:
    info, result = train_model_directory(encoder("all"), config(epochs=2), data, tmp_path / "model")
    assert read_model_info(tmp_path / "model") == info
    assert info.training["best_epoch"] == result.best_epoch
    assert len(info.training["history"]) == 2
    assert not (tmp_path / "model.training").exists()
