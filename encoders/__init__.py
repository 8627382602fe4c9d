"""ebr.encoders: featurizers, two-tower models, losses, training, export and ensembles.

Featurizers turn texts and categorical values into tensors (:class:`BagBatch` for
``EmbeddingBag`` channels, :class:`TokenBatch` for the text transformer); a
:class:`TowerFeaturizer` does it for every channel an :class:`EncoderConfig` declares; a
:class:`TwoTowerModel` maps the batches to unit-norm embeddings with ``encode_query`` /
``encode_doc``; the losses train it; a :class:`WeightedConcatEnsemble` serves several
models as one embedding.  :func:`train` (behind ``ebr train``) fits a model on query–document
pairs; a model directory holds the result, which :class:`EncoderModel` loads for batched
document encoding and :class:`QueryEncoder` serves one query at a time from its TorchScript
query tower.

Names resolve lazily (PEP 562): ``from ebr.encoders import hash_bucket`` or ``import
ebr.encoders.char_trigrams`` imports only the submodule it needs, so the torch-free parts
(featurizers, hashing, :mod:`ebr.encoders.trigram_projection`) work without torch installed.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers; at run time __getattr__ resolves them
    from ebr.encoders.attention_fusion import AttentionFusion
    from ebr.encoders.bag_channel import BagChannel
    from ebr.encoders.categorical import CategoricalFeaturizer, CategoricalValue
    from ebr.encoders.char_trigrams import CharTrigramFeaturizer, char_trigrams
    from ebr.encoders.encoder_config import (
        CategoricalChannel,
        ChannelConfig,
        CharTrigramChannel,
        EncoderConfig,
        TextTransformerChannel,
        TowerConfig,
        WordNgramChannel,
    )
    from ebr.encoders.ensemble import WeightedConcatEnsemble
    from ebr.encoders.errors import EncoderConfigError, EncoderError, EncoderInputError
    from ebr.encoders.feature_batches import BagBatch, FeatureBatch, TokenBatch
    from ebr.encoders.hard_negatives import HardNegatives
    from ebr.encoders.hashing import DEFAULT_HASH_SEED, hash_bucket
    from ebr.encoders.losses import (
        HardestNegativeMarginLoss,
        InBatchSoftmaxLoss,
        MixedNegativesSoftmaxLoss,
        SymmetricInBatchSoftmaxLoss,
        TripletLoss,
        cosine_matrix,
    )
    from ebr.encoders.model_directory import EncoderModel, save_model_directory
    from ebr.encoders.model_files import ModelInfo, read_model_info
    from ebr.encoders.query_encoder import QueryEncoder
    from ebr.encoders.record_files import read_records
    from ebr.encoders.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
    from ebr.encoders.text_transformer import TextTransformer
    from ebr.encoders.text_words import normalize_text, split_words
    from ebr.encoders.tower_featurizer import RecordChecker, TowerFeaturizer
    from ebr.encoders.towers import DocumentTower, QueryTower, Tower, TowerOutput, TwoTowerModel
    from ebr.encoders.trainer import EpochReport, TrainResult, train, train_model_directory
    from ebr.encoders.training_config import TrainConfig
    from ebr.encoders.training_data import TrainingData, prepare
    from ebr.encoders.training_metrics import batch_recall_at_k, knn_recall_at_k, roc_auc
    from ebr.encoders.training_pairs import Pair, read_pairs
    from ebr.encoders.trigram_projection import TrigramProjection
    from ebr.encoders.word_ngrams import WordNgramFeaturizer, word_ngrams

#: Public name -> the submodule defining it.
_SUBMODULES: dict[str, str] = {
    "DEFAULT_HASH_SEED": "hashing",
    "AttentionFusion": "attention_fusion",
    "BagBatch": "feature_batches",
    "BagChannel": "bag_channel",
    "CategoricalChannel": "encoder_config",
    "CategoricalFeaturizer": "categorical",
    "CategoricalValue": "categorical",
    "ChannelConfig": "encoder_config",
    "CharTrigramChannel": "encoder_config",
    "CharTrigramFeaturizer": "char_trigrams",
    "DocumentTower": "towers",
    "EncoderConfig": "encoder_config",
    "EncoderConfigError": "errors",
    "EncoderError": "errors",
    "EncoderInputError": "errors",
    "EncoderModel": "model_directory",
    "EpochReport": "trainer",
    "FeatureBatch": "feature_batches",
    "HardNegatives": "hard_negatives",
    "HardestNegativeMarginLoss": "losses",
    "InBatchSoftmaxLoss": "losses",
    "MixedNegativesSoftmaxLoss": "losses",
    "ModelInfo": "model_files",
    "Pair": "training_pairs",
    "QueryEncoder": "query_encoder",
    "QueryTower": "towers",
    "RecordChecker": "tower_featurizer",
    "SentencePieceTokenizer": "sentencepiece_tokenizer",
    "SymmetricInBatchSoftmaxLoss": "losses",
    "TextTransformer": "text_transformer",
    "TextTransformerChannel": "encoder_config",
    "TokenBatch": "feature_batches",
    "Tower": "towers",
    "TowerConfig": "encoder_config",
    "TowerFeaturizer": "tower_featurizer",
    "TowerOutput": "towers",
    "TrainConfig": "training_config",
    "TrainResult": "trainer",
    "TrainingData": "training_data",
    "TrigramProjection": "trigram_projection",
    "TripletLoss": "losses",
    "TwoTowerModel": "towers",
    "WeightedConcatEnsemble": "ensemble",
    "WordNgramChannel": "encoder_config",
    "WordNgramFeaturizer": "word_ngrams",
    "batch_recall_at_k": "training_metrics",
    "char_trigrams": "char_trigrams",
    "cosine_matrix": "losses",
    "hash_bucket": "hashing",
    "knn_recall_at_k": "training_metrics",
    "normalize_text": "text_words",
    "prepare": "training_data",
    "read_model_info": "model_files",
    "read_pairs": "training_pairs",
    "read_records": "record_files",
    "roc_auc": "training_metrics",
    "save_model_directory": "model_directory",
    "split_words": "text_words",
    "train": "trainer",
    "train_model_directory": "trainer",
    "train_sentencepiece": "sentencepiece_tokenizer",
    "word_ngrams": "word_ngrams",
}

__all__ = [
    "DEFAULT_HASH_SEED",
    "AttentionFusion",
    "BagBatch",
    "BagChannel",
    "CategoricalChannel",
    "CategoricalFeaturizer",
    "CategoricalValue",
    "ChannelConfig",
    "CharTrigramChannel",
    "CharTrigramFeaturizer",
    "DocumentTower",
    "EncoderConfig",
    "EncoderConfigError",
    "EncoderError",
    "EncoderInputError",
    "EncoderModel",
    "EpochReport",
    "FeatureBatch",
    "HardNegatives",
    "HardestNegativeMarginLoss",
    "InBatchSoftmaxLoss",
    "MixedNegativesSoftmaxLoss",
    "ModelInfo",
    "Pair",
    "QueryEncoder",
    "QueryTower",
    "RecordChecker",
    "SentencePieceTokenizer",
    "SymmetricInBatchSoftmaxLoss",
    "TextTransformer",
    "TextTransformerChannel",
    "TokenBatch",
    "Tower",
    "TowerConfig",
    "TowerFeaturizer",
    "TowerOutput",
    "TrainConfig",
    "TrainResult",
    "TrainingData",
    "TrigramProjection",
    "TripletLoss",
    "TwoTowerModel",
    "WeightedConcatEnsemble",
    "WordNgramChannel",
    "WordNgramFeaturizer",
    "batch_recall_at_k",
    "char_trigrams",
    "cosine_matrix",
    "hash_bucket",
    "knn_recall_at_k",
    "normalize_text",
    "prepare",
    "read_model_info",
    "read_pairs",
    "read_records",
    "roc_auc",
    "save_model_directory",
    "split_words",
    "train",
    "train_model_directory",
    "train_sentencepiece",
    "word_ngrams",
]


def __getattr__(name: str) -> Any:
    module = _SUBMODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


#: Public functions named like the submodule defining them.
_SHADOWED = frozenset(n for n, m in _SUBMODULES.items() if n == m)


class _Package(types.ModuleType):
    """Importing a submodule sets the package attribute of its name; for ``char_trigrams``
    and ``word_ngrams`` that would hide the public function, so the function wins (as it did
    when this package imported everything eagerly)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
