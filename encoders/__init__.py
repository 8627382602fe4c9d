"""ebr.encoders: featurizers, two-tower models, losses and ensembles (issue: Encoders).

Featurizers turn texts and categorical values into tensors (:class:`BagBatch` for
``EmbeddingBag`` channels, :class:`TokenBatch` for the text transformer); a
:class:`TowerFeaturizer` does it for every channel an :class:`EncoderConfig` declares; a
:class:`TwoTowerModel` maps the batches to unit-norm embeddings with ``encode_query`` /
``encode_doc``; the losses train it; a :class:`WeightedConcatEnsemble` serves several
models as one embedding.

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
    from ebr.encoders.hashing import DEFAULT_HASH_SEED, hash_bucket
    from ebr.encoders.losses import (
        HardestNegativeMarginLoss,
        InBatchSoftmaxLoss,
        MixedNegativesSoftmaxLoss,
        SymmetricInBatchSoftmaxLoss,
        TripletLoss,
        cosine_matrix,
    )
    from ebr.encoders.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
    from ebr.encoders.text_transformer import TextTransformer
    from ebr.encoders.text_words import normalize_text, split_words
    from ebr.encoders.tower_featurizer import TowerFeaturizer
    from ebr.encoders.towers import DocumentTower, QueryTower, Tower, TowerOutput, TwoTowerModel
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
    "FeatureBatch": "feature_batches",
    "HardestNegativeMarginLoss": "losses",
    "InBatchSoftmaxLoss": "losses",
    "MixedNegativesSoftmaxLoss": "losses",
    "QueryTower": "towers",
    "SentencePieceTokenizer": "sentencepiece_tokenizer",
    "SymmetricInBatchSoftmaxLoss": "losses",
    "TextTransformer": "text_transformer",
    "TextTransformerChannel": "encoder_config",
    "TokenBatch": "feature_batches",
    "Tower": "towers",
    "TowerConfig": "encoder_config",
    "TowerFeaturizer": "tower_featurizer",
    "TowerOutput": "towers",
    "TripletLoss": "losses",
    "TwoTowerModel": "towers",
    "WeightedConcatEnsemble": "ensemble",
    "WordNgramChannel": "encoder_config",
    "WordNgramFeaturizer": "word_ngrams",
    "char_trigrams": "char_trigrams",
    "cosine_matrix": "losses",
    "hash_bucket": "hashing",
    "normalize_text": "text_words",
    "split_words": "text_words",
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
    "FeatureBatch",
    "HardestNegativeMarginLoss",
    "InBatchSoftmaxLoss",
    "MixedNegativesSoftmaxLoss",
    "QueryTower",
    "SentencePieceTokenizer",
    "SymmetricInBatchSoftmaxLoss",
    "TextTransformer",
    "TextTransformerChannel",
    "TokenBatch",
    "Tower",
    "TowerConfig",
    "TowerFeaturizer",
    "TowerOutput",
    "TripletLoss",
    "TwoTowerModel",
    "WeightedConcatEnsemble",
    "WordNgramChannel",
    "WordNgramFeaturizer",
    "char_trigrams",
    "cosine_matrix",
    "hash_bucket",
    "normalize_text",
    "split_words",
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
