"""ebr.encoders: featurizers, two-tower models, losses and ensembles (issue: Encoders).

Featurizers turn texts and categorical values into tensors (:class:`BagBatch` for
``EmbeddingBag`` channels, :class:`TokenBatch` for the text transformer); a
:class:`TowerFeaturizer` does it for every channel an :class:`EncoderConfig` declares; a
:class:`TwoTowerModel` maps the batches to unit-norm embeddings with ``encode_query`` /
``encode_doc``; the losses train it; a :class:`WeightedConcatEnsemble` serves several
models as one embedding.
"""

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
