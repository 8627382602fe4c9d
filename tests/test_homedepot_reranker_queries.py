"""bench/homedepot_eval.py trains the reranker on exactly the train queries the encoder held out:
the queries ``prepare`` put in validation when ``homedepot_train.py`` trained the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import homedepot_eval  # noqa: E402
import homedepot_train  # noqa: E402
from homedepot_data import HomeDepot, is_validation  # noqa: E402

from ebr.encoders.training.data import prepare  # noqa: E402


def _data(queries: int = 300) -> HomeDepot:
    ids = tuple(str(1000 + i) for i in range(20))
    titles = tuple(f"title {i} drill bit {i % 3}" for i in range(20))
    judgments = {f"query {q} drill": {ids[q % 20]: 3.0, ids[(q + 1) % 20]: 1.0}
                 for q in range(queries)}
    return HomeDepot(ids, titles, judgments)


def _model(tmp_path: Path, fraction: float) -> Path:
    training = {"config": {"validation_fraction": fraction}}
    (tmp_path / "model.json").write_text(json.dumps(
        {"format": 2, "key": "model-1", "fingerprint": "0", "output_dim": 8, "training": training}))
    return tmp_path


@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_the_reranker_gets_the_train_queries_the_encoder_held_out(tmp_path: Path,
                                                                   fraction: float) -> None:
    data = _data()
    config = homedepot_train.train_config("default", 1, 1, {"validation_fraction": fraction})
    held_out = {e.query["text"] for e in prepare(homedepot_train.pairs(data, "train"), config).validation}
    chosen = homedepot_eval.reranker_queries(data, _model(tmp_path, fraction))
    assert set(chosen) == held_out
    assert 0 < len(held_out) < len(data.qrels("train"))
    assert not any(is_validation(q) for q in chosen)
    assert all(chosen[q] == data.judgments[q] for q in chosen)


def test_a_model_trained_on_every_train_query_leaves_none(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no query is left to train the reranker on"):
        homedepot_eval.reranker_queries(_data(), _model(tmp_path, 0.0))
