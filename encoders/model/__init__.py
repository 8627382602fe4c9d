"""The networks: channels, attention fusion and towers, the losses that train them, ensembles.

- :mod:`~ebr.encoders.model.bag_channel`: the sum-pooled ``EmbeddingBag`` of hashed features;
- :mod:`~ebr.encoders.model.text_transformer`: the raw-text channel over SentencePiece ids;
- :mod:`~ebr.encoders.model.attention_fusion`: the fusion of a tower's channels;
- :mod:`~ebr.encoders.model.towers`: query and document towers and the two-tower model;
- :mod:`~ebr.encoders.model.losses`: triplet, in-batch and mixed-negative softmax, margin losses;
- :mod:`~ebr.encoders.model.ensemble`: several models served as one embedding.

The public names are exported by :mod:`ebr.encoders`.
"""
