"""How to train a two-tower encoder: loss, negatives, curriculum, schedule, validation.

A :class:`TrainConfig` is read from JSON (``ebr train --train-config``) and overridden by CLI
flags; like :class:`~ebr.encoders.encoder_config.EncoderConfig` it validates on construction and
names the offending key.  The defaults are the configuration that trains well on short product
queries (see the closing figures of the Home Depot benchmark in ``bench/``).

Negatives, per the papers:

- ``loss = "softmax"`` / ``"symmetric_softmax"``: the batch's other documents (Que2Search Eq. 2/3);
- ``random_negatives > 0`` adds that many random corpus documents to every batch's candidates
  (mixed negatives), for any softmax loss;
- ``loss = "triplet"``: one negative per query — a random corpus document, or an offline hard
  negative when ``hard_negatives`` is on (EBR §2, §6);
- ``hard_negatives``: each epoch after the first, every training query's negatives are mined
  with an ANN index over the current document embeddings from ranks
  ``hard_negative_band`` (default 101-500, EBR §6.2) and mixed with random documents at
  ``easy_hard_ratio`` easy per hard one (EBR found 100:1 best for mixing);
- ``curriculum_epochs > 0``: Que2Search §3.3 — after the softmax stage, that many epochs of the
  in-batch hardest-negative margin-rank loss (``curriculum_margin``, sum reduction), from stage
  1's best weights, at ``curriculum_learning_rate_scale`` times the learning rates (a sum over a
  large batch makes steps that undo stage 1 at the full rates).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebr.config_files import ConfigReader, load_json_object
from ebr.encoders.errors import EncoderConfigError
from ebr.encoders.setting_checks import check_int, check_number

LOSSES = ("softmax", "symmetric_softmax", "triplet")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters of :func:`ebr.encoders.training.trainer.train` (all have working defaults)."""

    epochs: int = 8
    batch_size: int = 512
    learning_rate: float = 1e-3
    embedding_learning_rate: float = 3e-3
    loss: str = "symmetric_softmax"
    scale: float = 20.0
    margin: float = 0.2
    random_negatives: int = 0
    hard_negatives: bool = False
    hard_negative_band: tuple[int, int] = (101, 500)
    easy_hard_ratio: float = 1.0
    curriculum_epochs: int = 0
    curriculum_margin: float = 0.1
    curriculum_learning_rate_scale: float = 0.1
    positive_threshold: float = 0.0
    pseudo_queries: float = 0.0
    pseudo_query_fields: tuple[str, str] = ("title", "text")
    validation_fraction: float = 0.1
    recall_k: int = 10
    knn_recall_k: int = 100
    patience: int = 2
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, 10_000)
        check_int("batch_size", self.batch_size, 2, 1 << 20)
        check_number("learning_rate", self.learning_rate, 0.0, 10.0, open_low=True)
        check_number("embedding_learning_rate", self.embedding_learning_rate, 0.0, 10.0, open_low=True)
        if self.loss not in LOSSES:
            raise EncoderConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_number("scale", self.scale, 0.0, 1000.0, open_low=True)
        check_number("margin", self.margin, 0.0, 2.0)
        check_int("random_negatives", self.random_negatives, 0, 1 << 20)
        low, high = _pair_of_ints("hard_negative_band", self.hard_negative_band)
        if not 1 <= low <= high:
            raise EncoderConfigError(f"hard_negative_band must be two ranks 1 <= low <= high, got "
                                     f"{list(self.hard_negative_band)}")
        check_number("easy_hard_ratio", self.easy_hard_ratio, 0.0, 1e6)
        check_int("curriculum_epochs", self.curriculum_epochs, 0, 10_000)
        check_number("curriculum_margin", self.curriculum_margin, 0.0, 2.0)
        check_number("curriculum_learning_rate_scale", self.curriculum_learning_rate_scale, 0.0, 1.0,
                   open_low=True)
        check_number("positive_threshold", self.positive_threshold, -1e9, 1e9)
        check_number("pseudo_queries", self.pseudo_queries, 0.0, 100.0)
        fields = self.pseudo_query_fields
        two_names = isinstance(fields, tuple) and len(fields) == 2 \
            and all(isinstance(f, str) and f for f in fields)
        if not two_names:
            raise EncoderConfigError("pseudo_query_fields must be [doc field, query field], two "
                                     f"non-empty strings, got {fields!r}")
        check_number("validation_fraction", self.validation_fraction, 0.0, 0.9)
        check_int("recall_k", self.recall_k, 1, 1 << 20)
        check_int("knn_recall_k", self.knn_recall_k, 1, 1 << 20)
        check_int("patience", self.patience, 1, 10_000)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_int("threads", self.threads, 1, 1024)
        if self.loss == "triplet" and self.random_negatives:
            raise EncoderConfigError("random_negatives mixes corpus negatives into a softmax loss; "
                                     "the triplet loss draws its own (set one or the other)")

    @property
    def total_epochs(self) -> int:
        """Stage-1 epochs plus curriculum epochs."""
        return self.epochs + self.curriculum_epochs

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` (validated); ``None`` values are ignored, so CLI flags that
        were not given can be passed straight through."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise EncoderConfigError(f"unknown training setting {unknown[0]!r}")
        return dataclasses.replace(self, **given)

    # -- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "train config") -> TrainConfig:
        r = ConfigReader(data, where, EncoderConfigError)
        r.only(*(f.name for f in dataclasses.fields(cls)))
        # Unchecked: __post_init__ names a wrong value, in the words replace() uses too.
        settings = r.fields(cls, check=False)
        try:
            return cls(**settings)
        except EncoderConfigError as e:
            raise EncoderConfigError(f"{where}: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        data = load_json_object(path, "train config", EncoderConfigError)
        return cls.from_dict(data, f"train config {path}")


def _pair_of_ints(name: str, value: Any) -> tuple[int, int]:
    if not (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise EncoderConfigError(f"{name} must be two integers, got {value!r}")
    return value[0], value[1]
