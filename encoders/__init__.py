"""ebr.encoders: featurizers, two-tower models, losses, training, export and ensembles.

Featurizers turn texts and categorical values into tensors (:class:`BagBatch` for
``EmbeddingBag`` channels, :class:`TokenBatch` for the text transformer); a
:class:`TowerFeaturizer` does it for every channel an :class:`EncoderConfig` declares; a
:class:`TwoTowerModel` maps the batches to unit-norm embeddings with ``encode_query`` /
``encode_doc``; the losses train it; a :class:`WeightedConcatEnsemble` serves several
models as one embedding.  :func:`train` (behind ``ebr train``) fits a model on query–document
pairs; a model directory holds the result, which :class:`EncoderModel` loads for batched
document encoding and :class:`QueryEncoder` serves one query at a time from its query tower
(in numpy, without torch, when the tower's channels are all hashed bags).

The subpackages follow the data, from records to served embeddings:

- :mod:`ebr.encoders.features`: records and texts → id bags and token batches (hashing, char
  trigrams, word n-grams, categorical values, SentencePiece), one channel at a time or a whole
  tower's (:class:`TowerFeaturizer`);
- :mod:`ebr.encoders.model`: the networks (channels, attention fusion, towers), their losses
  and ensembles;
- :mod:`ebr.encoders.training`: pairs and negatives, the training configuration, the loop and
  its metrics;
- :mod:`ebr.encoders.serving`: a trained model's directory, its weights and the query encoder
  that serves it.

At the top sit what every group uses: the errors, the :class:`EncoderConfig` and the setting
checks.
:func:`read_records` is :mod:`ebr.ingest`'s (record files are not encoder-specific), exported
here too.

Names resolve lazily (PEP 562): ``from ebr.encoders import hash_bucket`` or ``import
ebr.encoders.features.trigrams`` imports only the module it needs, so the torch-free parts
(hashing, trigrams, :mod:`ebr.encoders.features.trigram_projection`, the
:class:`QueryEncoder` of a bag-only model) work without torch installed.
No module is named like a public name, so importing one never hides a name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers; at run time __getattr__ resolves them
    from ebr.encoders.encoder_config import (
        CategoricalChannel,
        ChannelConfig,
        CharTrigramChannel,
        EncoderConfig,
        TextTransformerChannel,
        TowerConfig,
        WordNgramChannel,
    )
    from ebr.encoders.errors import EncoderConfigError, EncoderError, EncoderInputError
    from ebr.encoders.features.batches import BagBatch, FeatureBatch, TokenBatch
    from ebr.encoders.features.categorical import CategoricalFeaturizer, CategoricalValue
    from ebr.encoders.features.hashing import DEFAULT_HASH_SEED, hash_bucket
    from ebr.encoders.features.ngrams import WordNgramFeaturizer, word_ngrams
    from ebr.encoders.features.tokenizer import SentencePieceTokenizer, train_sentencepiece
    from ebr.encoders.features.tower_featurizer import RecordChecker, TowerFeaturizer
    from ebr.encoders.features.trigram_projection import TrigramProjection
    from ebr.encoders.features.trigrams import CharTrigramFeaturizer, char_trigrams
    from ebr.encoders.features.words import normalize_text, split_words
    from ebr.encoders.model.attention_fusion import AttentionFusion
    from ebr.encoders.model.bag_channel import BagChannel
    from ebr.encoders.model.ensemble import WeightedConcatEnsemble
    from ebr.encoders.model.losses import (
        HardestNegativeMarginLoss,
        InBatchSoftmaxLoss,
        MixedNegativesSoftmaxLoss,
        SymmetricInBatchSoftmaxLoss,
        TripletLoss,
        cosine_matrix,
    )
    from ebr.encoders.model.text_transformer import TextTransformer
    from ebr.encoders.model.towers import DocumentTower, QueryTower, Tower, TowerOutput, TwoTowerModel
    from ebr.encoders.serving.model_directory import EncoderModel, save_model_directory
    from ebr.encoders.serving.model_files import ModelInfo, read_model_info
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.encoders.training.config import TrainConfig
    from ebr.encoders.training.data import TrainingData, prepare
    from ebr.encoders.training.hard_negatives import HardNegatives
    from ebr.encoders.training.metrics import batch_recall_at_k, knn_recall_at_k, roc_auc
    from ebr.encoders.training.pairs import Pair, read_pairs
    from ebr.encoders.training.trainer import EpochReport, TrainResult, train, train_model_directory
    from ebr.ingest.records import read_records

#: Public name -> the module defining it, relative to this package.
_SUBMODULES: dict[str, str] = {
    "DEFAULT_HASH_SEED": ".features.hashing",
    "AttentionFusion": ".model.attention_fusion",
    "BagBatch": ".features.batches",
    "BagChannel": ".model.bag_channel",
    "CategoricalChannel": ".encoder_config",
    "CategoricalFeaturizer": ".features.categorical",
    "CategoricalValue": ".features.categorical",
    "ChannelConfig": ".encoder_config",
    "CharTrigramChannel": ".encoder_config",
    "CharTrigramFeaturizer": ".features.trigrams",
    "DocumentTower": ".model.towers",
    "EncoderConfig": ".encoder_config",
    "EncoderConfigError": ".errors",
    "EncoderError": ".errors",
    "EncoderInputError": ".errors",
    "EncoderModel": ".serving.model_directory",
    "EpochReport": ".training.trainer",
    "FeatureBatch": ".features.batches",
    "HardNegatives": ".training.hard_negatives",
    "HardestNegativeMarginLoss": ".model.losses",
    "InBatchSoftmaxLoss": ".model.losses",
    "MixedNegativesSoftmaxLoss": ".model.losses",
    "ModelInfo": ".serving.model_files",
    "Pair": ".training.pairs",
    "QueryEncoder": ".serving.query_encoder",
    "QueryTower": ".model.towers",
    "RecordChecker": ".features.tower_featurizer",
    "SentencePieceTokenizer": ".features.tokenizer",
    "SymmetricInBatchSoftmaxLoss": ".model.losses",
    "TextTransformer": ".model.text_transformer",
    "TextTransformerChannel": ".encoder_config",
    "TokenBatch": ".features.batches",
    "Tower": ".model.towers",
    "TowerConfig": ".encoder_config",
    "TowerFeaturizer": ".features.tower_featurizer",
    "TowerOutput": ".model.towers",
    "TrainConfig": ".training.config",
    "TrainResult": ".training.trainer",
    "TrainingData": ".training.data",
    "TrigramProjection": ".features.trigram_projection",
    "TripletLoss": ".model.losses",
    "TwoTowerModel": ".model.towers",
    "WeightedConcatEnsemble": ".model.ensemble",
    "WordNgramChannel": ".encoder_config",
    "WordNgramFeaturizer": ".features.ngrams",
    "batch_recall_at_k": ".training.metrics",
    "char_trigrams": ".features.trigrams",
    "cosine_matrix": ".model.losses",
    "hash_bucket": ".features.hashing",
    "knn_recall_at_k": ".training.metrics",
    "normalize_text": ".features.words",
    "prepare": ".training.data",
    "read_model_info": ".serving.model_files",
    "read_pairs": ".training.pairs",
    "read_records": "..ingest.records",
    "roc_auc": ".training.metrics",
    "save_model_directory": ".serving.model_directory",
    "split_words": ".features.words",
    "train": ".training.trainer",
    "train_model_directory": ".training.trainer",
    "train_sentencepiece": ".features.tokenizer",
    "word_ngrams": ".features.ngrams",
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
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

