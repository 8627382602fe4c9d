"""Fitting a two-tower model on query–document pairs (``ebr train``).

- :mod:`~ebr.encoders.training.pairs`: training pairs read from TSV or JSONL;
- :mod:`~ebr.encoders.training.config`: the hyper-parameters (a ``TrainConfig``);
- :mod:`~ebr.encoders.training.data`: pairs → corpus, positives, validation split, batches;
- :mod:`~ebr.encoders.training.hard_negatives`: offline hard negatives mined with an ANN index;
- :mod:`~ebr.encoders.training.metrics`: batch recall@K, ROC AUC, KNN recall@K;
- :mod:`~ebr.encoders.training.trainer`: the resumable, validated training loop.

The public names are exported by :mod:`ebr.encoders`.
"""
