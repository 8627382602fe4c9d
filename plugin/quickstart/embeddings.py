"""How the quickstart embeds requests: a trained model's query tower, or the trigram projection.

The trained model (:mod:`ebr.quickstart.model`) reads the text and the searcher's country and
is served from its model directory by :class:`~ebr.encoders.QueryEncoder` (in numpy: the
tower is all hashed channels; what ``ebr query --model`` uses).  The training-free
:class:`~ebr.encoders.features.trigram_projection.TrigramProjection` reads the text alone; it
is what runs where torch is missing (``ebr quickstart --no-train``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.quickstart.examples import QueryEmbedding

#: The projection's key and size (the index's embedding key when no model is trained).
PROJECTION_KEY = "name-trigrams"
PROJECTION_DIMENSION = 64
#: Measured (the README's output prints the distances): with the projection a one-letter
#: slip in a name sits at cosine distance ~0.15-0.35 from the right name, unrelated names
#: at ~1; the trained model puts a slip at ~0.02-0.19 and the held-out "bombay" at 0.28
#: (all cities) to 0.38 (the reduced mode) from Mumbai.  0.24 is the paper's example radius.
PROJECTION_RADIUS = 0.35
MODEL_RADIUS = 0.24


def projection_embedding(projection: TrigramProjection | None = None) -> QueryEmbedding:
    p = projection or TrigramProjection(PROJECTION_DIMENSION)

    def embed(text: str, context: Mapping[str, str]) -> npt.NDArray[np.float32]:
        return p.embed_one(text)

    return QueryEmbedding(PROJECTION_KEY, embed, PROJECTION_RADIUS, contextual=False,
                          description="the trigram projection")


def model_embedding(model_dir: str | Path) -> QueryEmbedding:
    """The query tower of the quickstart model in ``model_dir`` (no torch needed)."""
    from ebr.encoders.serving.query_encoder import QueryEncoder

    encoder = QueryEncoder(model_dir)

    def embed(text: str, context: Mapping[str, str]) -> npt.NDArray[np.float32]:
        return encoder.encode({"text": text, "country": context.get("country")})

    return QueryEmbedding(encoder.key, embed, MODEL_RADIUS, contextual=True,
                          description=f"the trained model {encoder.key}")
