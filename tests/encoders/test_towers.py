"""Towers: unit-norm embeddings of the configured size, determinism, attention weights, masks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from encoder_samples import doc_records, make_config, query_records

from ebr.encoders import (
    AttentionFusion,
    BagBatch,
    EncoderConfig,
    EncoderInputError,
    FeatureBatch,
    InBatchSoftmaxLoss,
    SentencePieceTokenizer,
    TokenBatch,
    TowerFeaturizer,
    TwoTowerModel,
)

BATCH = 6


def featurize(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str], n: int = BATCH
) -> tuple[dict[str, FeatureBatch], dict[str, FeatureBatch]]:
    query = TowerFeaturizer(config.query, config.hash_seed, tokenizer).featurize(query_records(corpus, n))
    doc = TowerFeaturizer(config.doc, config.hash_seed, tokenizer).featurize(doc_records(corpus, n))
    return query, doc


def build(config: EncoderConfig, seed: int) -> TwoTowerModel:
    torch.manual_seed(seed)
    return TwoTowerModel(config).eval()


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_unit_norm_embeddings_of_the_configured_size(
    pooling: str, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    config = make_config(pooling)
    query, doc = featurize(config, tokenizer, corpus)
    model = build(config, 0)
    with torch.no_grad():
        q, d = model.encode_query(query), model.encode_doc(doc)
    for embeddings in (q, d):
        assert embeddings.shape == (BATCH, config.output_dim)
        assert embeddings.dtype == torch.float32
        assert torch.allclose(embeddings.norm(dim=-1), torch.ones(BATCH), atol=1e-5)
    assert not torch.allclose(q[0], q[1])  # different inputs, different embeddings


def test_deterministic_in_eval_under_a_fixed_seed(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    query, doc = featurize(config, tokenizer, corpus)
    first, second, other = build(config, 3), build(config, 3), build(config, 4)
    with torch.no_grad():
        q1, d1 = first.encode_query(query), first.encode_doc(doc)
        assert torch.equal(q1, first.encode_query(query))  # eval: dropout off, repeatable
        assert torch.equal(q1, second.encode_query(query))
        assert torch.equal(d1, second.encode_doc(doc))
        assert not torch.allclose(q1, other.encode_query(query))  # the seed matters


def test_attention_weights_are_a_distribution_over_channels(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    query, doc = featurize(config, tokenizer, corpus)
    model = build(config, 0)
    with torch.no_grad():
        for tower, batch, channels in ((model.query_tower, query, config.query),
                                       (model.doc_tower, doc, config.doc)):
            out = tower.encode_with_weights(batch)
            assert out.channel_names == channels.channel_names
            assert out.channel_weights.shape == (BATCH, len(channels.channels))
            assert bool((out.channel_weights >= 0).all())
            assert torch.allclose(out.channel_weights.sum(dim=-1), torch.ones(BATCH), atol=1e-6)
            assert torch.equal(out.embeddings, tower(batch))


def test_attention_fusion_is_the_weighted_sum_of_channels() -> None:
    torch.manual_seed(0)
    fusion = AttentionFusion(channels=3, dim=5)
    stacked = torch.randn(4, 3, 5)  # (batch, channels, dim)
    fused, weights = fusion(stacked)
    scores = stacked.reshape(4, 15) @ fusion.proj.weight.T + fusion.proj.bias  # Eq. 1, by hand
    expected_weights = torch.exp(scores) / torch.exp(scores).sum(dim=1, keepdim=True)
    assert torch.allclose(weights, expected_weights, atol=1e-6)
    expected = sum(expected_weights[:, i : i + 1] * stacked[:, i] for i in range(3))
    assert isinstance(expected, torch.Tensor)
    assert torch.allclose(fused, expected, atol=1e-6)


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_a_sample_does_not_depend_on_its_batch(
    pooling: str, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    # Padding must be masked: encoding a record alone or among others gives the same vector.
    config = make_config(pooling)
    model = build(config, 0)
    query_featurizer = TowerFeaturizer(config.query, config.hash_seed, tokenizer)
    doc_featurizer = TowerFeaturizer(config.doc, config.hash_seed, tokenizer)
    queries, docs = query_records(corpus, BATCH), doc_records(corpus, BATCH)
    with torch.no_grad():
        batched_q = model.encode_query(query_featurizer.featurize(queries))
        batched_d = model.encode_doc(doc_featurizer.featurize(docs))
        for i in range(BATCH):
            alone_q = model.encode_query(query_featurizer.featurize(queries[i : i + 1]))
            alone_d = model.encode_doc(doc_featurizer.featurize(docs[i : i + 1]))
            assert torch.allclose(alone_q[0], batched_q[i], atol=1e-5)
            assert torch.allclose(alone_d[0], batched_d[i], atol=1e-5)


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_padded_positions_are_ignored(
    pooling: str, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    config = make_config(pooling)
    model = build(config, 0)
    query, _ = featurize(config, tokenizer, corpus)
    text = query["text"]
    assert isinstance(text, TokenBatch) and not bool(text.mask.all())
    noisy = text.ids.masked_fill(~text.mask, 7)  # a real piece id where the mask says padding
    with torch.no_grad():
        clean = model.encode_query(query)
        changed = model.encode_query({**query, "text": TokenBatch(noisy, text.mask)})
    assert torch.allclose(clean, changed, atol=1e-5)


def test_every_parameter_gets_a_gradient(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    query, doc = featurize(config, tokenizer, corpus)
    model = build(config, 0).train()
    InBatchSoftmaxLoss()(model.encode_query(query), model.encode_doc(doc)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name


def test_input_errors(config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]) -> None:
    model = build(config, 0)
    query, _ = featurize(config, tokenizer, corpus)
    missing = {k: v for k, v in query.items() if k != "country"}
    with pytest.raises(EncoderInputError, match="channel 'country': expected a BagBatch, got nothing"):
        model.encode_query(missing)
    with pytest.raises(EncoderInputError, match="channel 'text': expected a TokenBatch, got BagBatch"):
        model.encode_query({**query, "text": query["trigrams"]})
    trigrams = query["trigrams"]
    assert isinstance(trigrams, BagBatch)
    short = BagBatch(trigrams.ids, trigrams.offsets[:2], trigrams.weights)
    with pytest.raises(EncoderInputError, match="disagree on the batch size"):
        model.encode_query({**query, "trigrams": short})
    text = query["text"]
    assert isinstance(text, TokenBatch)
    too_long = TokenBatch(torch.cat([text.ids, text.ids], dim=1), torch.cat([text.mask, text.mask], dim=1))
    with pytest.raises(EncoderInputError, match="more than max_length"):
        model.encode_query({**query, "text": too_long})


def test_towers_are_separate_modules(config: EncoderConfig) -> None:
    model = build(config, 0)
    query_params = {id(p) for p in model.query_tower.parameters()}
    assert query_params.isdisjoint(id(p) for p in model.doc_tower.parameters())
    smaller = dataclasses.replace(config, output_dim=8)
    assert build(smaller, 0).query_tower.output.out_features == 8


def test_embed_concatenates_eval_embeddings_and_keeps_the_training_mode(
    config: EncoderConfig, tokenizer: SentencePieceTokenizer, corpus: list[str]
) -> None:
    query, _ = featurize(config, tokenizer, corpus)
    second, _ = featurize(config, tokenizer, corpus[3:], n=3)
    model = build(config, 5).train()  # dropout on: embed must switch it off
    got = model.query_tower.embed([query, second], BATCH + 3)
    assert model.query_tower.training
    model.eval()
    with torch.no_grad():
        expected = torch.cat([model.encode_query(query), model.encode_query(second)]).numpy()
    assert got.shape == (BATCH + 3, config.output_dim)
    assert (got == expected).all()
