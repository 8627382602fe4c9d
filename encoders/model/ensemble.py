"""Weighted-concatenation ensembles served as one embedding (EBR §6.2, Eq. 4-6).

Given models M_1..M_n with weights α_i > 0, the ensemble similarity of a query and a document
is ``S_w = Σ_i α_i cos(V_i, U_i)`` (V: query vectors, U: document vectors).  Concatenating
the weighted, normalised query vectors (Eq. 4) and the plain normalised document vectors
(Eq. 5) gives one vector per side whose dot product is exactly ``S_w`` and whose cosine is

    cos(E_Q, E_D) = S_w / (sqrt(Σ_i α_i²) · sqrt(n))        (Eq. 6)

because ``‖E_Q‖ = sqrt(Σ α_i²)`` and ``‖E_D‖ = sqrt(n)``.  The constant is the same for every
pair, so a cosine index over the concatenations ranks exactly by ``S_w``.  The weights sit
on the query side, as in the paper, so documents encoded once serve any choice of weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ebr.encoders.errors import EncoderConfigError, EncoderInputError


class WeightedConcatEnsemble:
    """The query- and document-side concatenations for models weighted by ``weights``."""

    def __init__(self, weights: Sequence[float]) -> None:
        if not weights:
            raise EncoderConfigError("an ensemble needs at least one model weight")
        for i, w in enumerate(weights):
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
                raise EncoderConfigError(f"ensemble weight {i} must be a finite number > 0, got {w!r}")
        self.weights = tuple(float(w) for w in weights)

    @property
    def normaliser(self) -> float:
        """``sqrt(Σ α_i²) · sqrt(n)``: ``cos(E_Q, E_D) = S_w / normaliser`` (Eq. 6)."""
        return math.sqrt(sum(w * w for w in self.weights)) * math.sqrt(len(self.weights))

    def query(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. 4: ``[α_1 V_1/‖V_1‖, …, α_n V_n/‖V_n‖]``; model i's (batch, dim_i) → (batch, Σ dim_i)."""
        self._check(embeddings)
        return torch.cat([w * F.normalize(v, dim=-1) for w, v in zip(self.weights, embeddings, strict=True)],
                         dim=-1)

    def doc(self, embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. 5: ``[U_1/‖U_1‖, …, U_n/‖U_n‖]``; model i's (batch, dim_i) → (batch, Σ dim_i)."""
        self._check(embeddings)
        return torch.cat([F.normalize(u, dim=-1) for u in embeddings], dim=-1)

    def similarity(self, query: Sequence[torch.Tensor], doc: Sequence[torch.Tensor]) -> torch.Tensor:
        """``S_w`` of row-aligned pairs, from the per-model embeddings: (batch,)."""
        self._check(query)
        self._check(doc)
        pairs = zip(self.weights, query, doc, strict=True)
        weighted = [w * F.cosine_similarity(v, u, dim=-1) for w, v, u in pairs]  # n × (batch,)
        return torch.stack(weighted).sum(dim=0)  # (batch,)

    def _check(self, embeddings: Sequence[torch.Tensor]) -> None:
        if len(embeddings) != len(self.weights):
            raise EncoderInputError(f"the ensemble has {len(self.weights)} models, "
                                    f"got {len(embeddings)} embedding tensors")
        batch = {tuple(e.shape[:-1]) for e in embeddings}
        if any(e.dim() != 2 for e in embeddings) or len(batch) != 1:
            raise EncoderInputError("each model's embeddings must be (batch, dim_i) with the same batch, "
                                    f"got shapes {[tuple(e.shape) for e in embeddings]}")
