"""TrainConfig: defaults, range checks naming the setting, JSON, replace and load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.training.config import LOSSES, TrainConfig


def test_defaults_construct() -> None:
    config = TrainConfig()
    assert config.epochs == 8 and config.batch_size == 512 and config.loss == "symmetric_softmax"
    assert config.hard_negative_band == (101, 500)
    assert config.pseudo_query_fields == ("title", "text")
    assert config.total_epochs == 8
    assert TrainConfig(epochs=3, curriculum_epochs=2).total_epochs == 5
    assert LOSSES == ("softmax", "symmetric_softmax", "triplet")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer in [1, 10000], got 0"),
        ({"epochs": 2.0}, "epochs must be an integer in [1, 10000], got 2.0"),
        ({"epochs": True}, "epochs must be an integer in [1, 10000], got True"),
        ({"batch_size": 1}, "batch_size must be an integer in [2, 1048576], got 1"),
        ({"learning_rate": 0.0}, "learning_rate must be a number in (0, 10], got 0.0"),
        ({"learning_rate": 11}, "learning_rate must be a number in (0, 10], got 11"),
        ({"learning_rate": float("nan")}, "learning_rate must be a number in (0, 10], got nan"),
        ({"learning_rate": "0.1"}, "learning_rate must be a number in (0, 10], got '0.1'"),
        ({"embedding_learning_rate": -1e-3},
         "embedding_learning_rate must be a number in (0, 10], got -0.001"),
        ({"loss": "hinge"}, "loss must be one of softmax, symmetric_softmax, triplet, got 'hinge'"),
        ({"scale": 0.0}, "scale must be a number in (0, 1000], got 0.0"),
        ({"scale": float("inf")}, "scale must be a number in (0, 1000], got inf"),
        ({"margin": 2.5}, "margin must be a number in [0, 2], got 2.5"),
        ({"margin": -0.1}, "margin must be a number in [0, 2], got -0.1"),
        ({"random_negatives": -1}, "random_negatives must be an integer in [0, 1048576], got -1"),
        ({"hard_negative_band": (0, 10)},
         "hard_negative_band must be two ranks 1 <= low <= high, got [0, 10]"),
        ({"hard_negative_band": (20, 10)},
         "hard_negative_band must be two ranks 1 <= low <= high, got [20, 10]"),
        ({"hard_negative_band": (1.0, 10)}, "hard_negative_band must be two integers, got (1.0, 10)"),
        ({"hard_negative_band": (1, 2, 3)}, "hard_negative_band must be two integers, got (1, 2, 3)"),
        ({"hard_negative_band": [1, 2]}, "hard_negative_band must be two integers, got [1, 2]"),
        ({"hard_negative_band": (True, 2)}, "hard_negative_band must be two integers, got (True, 2)"),
        ({"easy_hard_ratio": -1.0}, "easy_hard_ratio must be a number in [0, 1e+06], got -1.0"),
        ({"curriculum_epochs": -1}, "curriculum_epochs must be an integer in [0, 10000], got -1"),
        ({"curriculum_margin": 3}, "curriculum_margin must be a number in [0, 2], got 3"),
        ({"positive_threshold": float("-inf")},
         "positive_threshold must be a number in [-1e+09, 1e+09], got -inf"),
        ({"pseudo_queries": 101}, "pseudo_queries must be a number in [0, 100], got 101"),
        ({"pseudo_query_fields": ("title",)}, "pseudo_query_fields must be [doc field, query field], two "
                                              "non-empty strings, got ('title',)"),
        ({"pseudo_query_fields": ("title", "")}, "pseudo_query_fields must be [doc field, query field]"),
        ({"pseudo_query_fields": ["title", "text"]}, "pseudo_query_fields must be [doc field, query field]"),
        ({"pseudo_query_fields": ("title", 3)}, "pseudo_query_fields must be [doc field, query field]"),
        ({"validation_fraction": 0.95}, "validation_fraction must be a number in [0, 0.9], got 0.95"),
        ({"recall_k": 0}, "recall_k must be an integer in [1, 1048576], got 0"),
        ({"knn_recall_k": 0}, "knn_recall_k must be an integer in [1, 1048576], got 0"),
        ({"patience": 0}, "patience must be an integer in [1, 10000], got 0"),
        ({"seed": -1}, "seed must be an integer in [0, 4294967295], got -1"),
        ({"seed": 2**32}, "seed must be an integer in [0, 4294967295], got 4294967296"),
        ({"threads": 0}, "threads must be an integer in [1, 1024], got 0"),
        ({"loss": "triplet", "random_negatives": 4},
         "random_negatives mixes corpus negatives into a softmax loss; the triplet loss draws its own"),
    ],
)
def test_bad_values_name_the_setting(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EncoderConfigError) as caught:
        TrainConfig(**changes)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 1}, {"epochs": 10_000}, {"batch_size": 2}, {"learning_rate": 10.0}, {"learning_rate": 1},
        {"margin": 0.0}, {"margin": 2}, {"hard_negative_band": (1, 1)}, {"easy_hard_ratio": 0.0},
        {"validation_fraction": 0.0}, {"validation_fraction": 0.9}, {"seed": 2**32 - 1},
        {"loss": "triplet", "hard_negatives": True}, {"loss": "softmax", "random_negatives": 64},
        {"positive_threshold": -3},
    ],
)
def test_bounds_are_inclusive_where_they_say(changes: dict[str, Any]) -> None:
    config = TrainConfig(**changes)
    for name, value in changes.items():
        assert getattr(config, name) == value


# -- JSON ---------------------------------------------------------------------------------------

def test_json_round_trip() -> None:
    config = TrainConfig(epochs=3, loss="softmax", random_negatives=16, hard_negatives=True,
                         hard_negative_band=(11, 50), pseudo_query_fields=("name", "q"),
                         easy_hard_ratio=100.0)
    data = json.loads(config.to_json())
    assert data["hard_negative_band"] == [11, 50] and data["pseudo_query_fields"] == ["name", "q"]
    assert set(data) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig.from_dict(data) == config
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()
    assert config.to_json().endswith("}\n")


def test_from_dict_coerces_ints_and_lists() -> None:
    config = TrainConfig.from_dict({"learning_rate": 1, "scale": 15, "hard_negative_band": [5, 9],
                                    "pseudo_query_fields": ["title", "text"], "epochs": 2})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.scale == 15.0 and isinstance(config.scale, float)
    assert config.hard_negative_band == (5, 9)
    assert config.pseudo_query_fields == ("title", "text")
    assert config.epochs == 2 and isinstance(config.epochs, int)


def test_from_dict_does_not_coerce_floats_to_ints_or_bools_to_floats() -> None:
    with pytest.raises(EncoderConfigError,
                       match=r"^train config: epochs must be an integer in \[1, 10000\], got 2.0$"):
        TrainConfig.from_dict({"epochs": 2.0})
    with pytest.raises(EncoderConfigError,
                       match=r"^train config: scale must be a number in \(0, 1000\], got True$"):
        TrainConfig.from_dict({"scale": True})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"epoch": 3, "zzz": 1}, "my.json: unknown key 'epoch'; known: batch_size, curriculum_epochs,"),
        ({"zzz": 1, "hard_negative_band": 3}, "my.json: unknown key 'zzz'; known: batch_size,"),
        ({"hard_negative_band": 100}, "my.json.hard_negative_band: expected a list of two values, got 100"),
        ({"hard_negative_band": [1, 2, 3]},
         "my.json.hard_negative_band: expected a list of two values, got [1, 2, 3]"),
        ({"pseudo_query_fields": "title"},
         "my.json.pseudo_query_fields: expected a list of two values, got 'title'"),
        ({"patience": 0}, "my.json: patience must be an integer in [1, 10000], got 0"),
        ({"loss": "triplet", "random_negatives": 1}, "my.json: random_negatives mixes corpus negatives"),
    ],
)
def test_from_dict_errors_say_where(data: dict[str, Any], message: str) -> None:
    with pytest.raises(EncoderConfigError) as caught:
        TrainConfig.from_dict(data, "my.json")
    assert str(caught.value).startswith(message)


def test_from_dict_unknown_key_lists_every_known_key() -> None:
    with pytest.raises(EncoderConfigError) as caught:
        TrainConfig.from_dict({"epoch": 3})
    known = ", ".join(sorted(f.name for f in dataclasses.fields(TrainConfig)))
    assert str(caught.value) == f"train config: unknown key 'epoch'; known: {known}"


def test_from_dict_wants_an_object() -> None:
    with pytest.raises(EncoderConfigError, match=r"^train config: expected an object, got list$"):
        TrainConfig.from_dict([("epochs", 3)])  # type: ignore[arg-type]


# -- replace ------------------------------------------------------------------------------------

def test_replace_ignores_none_and_validates() -> None:
    base = TrainConfig(epochs=3)
    assert base.replace(epochs=None, batch_size=None) == base
    changed = base.replace(batch_size=64, loss=None, seed=9)
    assert (changed.epochs, changed.batch_size, changed.loss, changed.seed) == (3, 64, "symmetric_softmax", 9)
    assert base.batch_size == 512  # frozen: the original is untouched
    with pytest.raises(EncoderConfigError, match=r"^batch_size must be an integer in \[2, 1048576\], got 1$"):
        base.replace(batch_size=1)
    with pytest.raises(EncoderConfigError, match=r"^unknown training setting 'batchsize'$"):
        base.replace(batchsize=64)
    with pytest.raises(EncoderConfigError, match="random_negatives mixes"):
        TrainConfig(random_negatives=8).replace(loss="triplet")
    assert base.replace(hard_negatives=False) == base  # False is a value, not "not given"


# -- load ---------------------------------------------------------------------------------------

def test_load(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"epochs": 4, "hard_negative_band": [2, 3]}), encoding="utf-8")
    assert TrainConfig.load(path) == TrainConfig(epochs=4, hard_negative_band=(2, 3))
    path.write_text(TrainConfig(loss="softmax").to_json(), encoding="utf-8")
    assert TrainConfig.load(path) == TrainConfig(loss="softmax")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "train config {path} is not valid JSON: Expecting property name enclosed in double "
                       "quotes: line 1 column 2"),
        (b"[1, 2]", "train config {path}: expected a JSON object, got list"),
        (b'{"epochs": 0}', "train config {path}: epochs must be an integer in [1, 10000], got 0"),
        (b'{"lr": 0.1}', "train config {path}: unknown key 'lr'"),
        (b'{"epochs": "\xff"}', "cannot read train config {path}: not UTF-8"),
    ],
)
def test_load_bad_file_is_a_clean_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "train.json"
    path.write_bytes(content)
    with pytest.raises(EncoderConfigError) as caught:
        TrainConfig.load(path)
    assert str(caught.value).startswith(message.format(path=path))


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(EncoderConfigError) as caught:
        TrainConfig.load(path)
    assert str(caught.value) == f"cannot read train config {path}: No such file or directory"
