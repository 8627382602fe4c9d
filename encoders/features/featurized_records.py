"""A corpus featurized once, from which batches of any rows are cut without featurizing again.

Training draws every document many times (positives each epoch, negatives, corpus encoding for
validation and mining); hashing its trigrams and words every time cost more than the model's
forward and backward passes.  Bag channels are kept in CSR form (all ids end to end, the
weights beside them, where each row starts), token channels as a padded matrix with lengths.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch

from ebr.encoders.errors import EncoderInputError
from ebr.encoders.features.batches import BagBatch, FeatureBatch, TokenBatch
from ebr.encoders.features.tower_featurizer import TowerFeaturizer
from ebr.ingest.records import Record

_CHUNK = 4096


class _Bags:
    def __init__(self, parts: Sequence[BagBatch]) -> None:
        self.ids = np.concatenate([p.ids.numpy() for p in parts])
        self.weights = np.concatenate([p.weights.numpy() for p in parts])
        starts = []
        base = 0
        for p in parts:
            starts.append(p.offsets.numpy() + base)
            base += int(p.ids.shape[0])
        self.starts = np.concatenate([*starts, [base]]).astype(np.int64)  # (rows + 1,)

    def batch(self, rows: npt.NDArray[np.int64]) -> BagBatch:
        begin, end = self.starts[rows], self.starts[rows + 1]
        lengths = end - begin
        offsets = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        # Position of every id of the batch in the CSR arrays: each row's start, then + 0, 1, ...
        within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets, lengths)
        take = np.repeat(begin, lengths) + within
        return BagBatch(torch.from_numpy(self.ids[take]), torch.from_numpy(offsets),
                        torch.from_numpy(self.weights[take]))


class _Tokens:
    def __init__(self, parts: Sequence[TokenBatch]) -> None:
        width = max(p.ids.shape[1] for p in parts)
        self.ids = torch.cat([torch.nn.functional.pad(p.ids, (0, width - p.ids.shape[1])) for p in parts])
        self.lengths = torch.cat([p.mask.sum(dim=1) for p in parts])

    def batch(self, rows: npt.NDArray[np.int64]) -> TokenBatch:
        index = torch.from_numpy(rows)
        width = int(self.lengths[index].max())
        ids = self.ids[index, :width]
        return TokenBatch(ids, torch.arange(width) < self.lengths[index].unsqueeze(1))


class FeaturizedRecords:
    """``records`` featurized by ``featurizer`` once; :meth:`batch` gives the same tensors
    ``featurizer.featurize([records[r] for r in rows])`` would."""

    def __init__(self, featurizer: TowerFeaturizer, records: Sequence[Record]) -> None:
        if not records:
            raise EncoderInputError("nothing to featurize: no records")
        chunks = [featurizer.featurize(records[i:i + _CHUNK]) for i in range(0, len(records), _CHUNK)]
        self._channels: dict[str, _Bags | _Tokens] = {}
        for name in featurizer.tower.channel_names:
            parts = [c[name] for c in chunks]
            if parts and isinstance(parts[0], TokenBatch):
                self._channels[name] = _Tokens([p for p in parts if isinstance(p, TokenBatch)])
            else:
                self._channels[name] = _Bags([p for p in parts if isinstance(p, BagBatch)])
        self.size = len(records)

    def __len__(self) -> int:
        return self.size

    def batch(self, rows: Sequence[int] | npt.NDArray[np.int64]) -> dict[str, FeatureBatch]:
        picked = np.asarray(rows, dtype=np.int64)
        return {name: channel.batch(picked) for name, channel in self._channels.items()}
