"""Query embedders: a request's text (and context) -> its embedding for one key.

Three kinds: a trained model directory's query tower (:class:`ModelEmbedder` over
:class:`~ebr.encoders.serving.query_encoder.QueryEncoder`), the training-free trigram
projection (:class:`ProjectionEmbedder`, what the quickstart's keys hold) and a pretrained
sentence-transformer (:class:`~ebr.encoders.serving.sentence_encoder.SentenceEncoder`, an
embedder itself).  Each says which
context fields it reads, so the embedding cache keys only on those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.errors import PlanError
from ebr.mappings.schema import Schema

if TYPE_CHECKING:  # the model files are read only by whoever loads a model
    from ebr.encoders.serving.query_encoder import QueryEncoder
    from ebr.encoders.serving.sentence_encoder import SentenceEncoder

FloatArray = npt.NDArray[np.float32]

#: The ending of an embedding key's name that says it holds the trigram projection of a text
#: (``name-trigrams``, what ``ebr quickstart --no-train`` indexes): :func:`embedders_for` embeds
#: requests for such a key with the projection when no model is given for it.
PROJECTION_SUFFIX = "-trigrams"


class TextEmbedder(Protocol):
    """Embeds request texts for one embedding key.  Must be safe to call from many threads."""

    @property
    def key(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def context_fields(self) -> tuple[str, ...]:
        """The context fields the embedding depends on (the cache keys on these)."""
        ...

    def embed(self, text: str, context: Mapping[str, str]) -> FloatArray: ...


class ProjectionEmbedder:
    """The trigram projection for ``key`` (context-free)."""

    context_fields: tuple[str, ...] = ()

    def __init__(self, key: str, projection: TrigramProjection) -> None:
        self._key = key
        self.projection = projection

    @property
    def key(self) -> str:
        return self._key

    @property
    def dimension(self) -> int:
        return self.projection.dimension

    def embed(self, text: str, context: Mapping[str, str]) -> FloatArray:
        return self.projection.embed_one(text)


class ModelEmbedder:
    """A model directory's query tower: every text field of the tower reads the request's
    text, every categorical field the context value of the same name (absent when the
    context lacks it)."""

    def __init__(self, encoder: QueryEncoder) -> None:
        self.encoder = encoder
        channels = encoder.config.query.channels
        self._text_fields = sorted({c.field for c in channels if c.kind != "categorical"})
        self.context_fields = tuple(sorted({c.field for c in channels if c.kind == "categorical"}))

    @property
    def key(self) -> str:
        return self.encoder.key

    @property
    def dimension(self) -> int:
        return self.encoder.config.output_dim

    def embed(self, text: str, context: Mapping[str, str]) -> FloatArray:
        record: dict[str, str] = dict.fromkeys(self._text_fields, text)
        record.update((f, context[f]) for f in self.context_fields if f in context)
        return self.encoder.encode(record)


def check_embedder(schema: Schema, embedder: TextEmbedder) -> None:
    """Refuse an embedder for a key the index lacks or of another dimension."""
    declared = schema.key(embedder.key)
    if declared is None:
        names = ", ".join(k.name for k in schema.keys) or "none"
        raise PlanError(f"the index has no embedding key {embedder.key!r} (it has: {names})")
    if declared.dimension != embedder.dimension:
        raise PlanError(f"the embedder for {embedder.key} gives {embedder.dimension}-d embeddings "
                        f"but the index declares {declared.dimension}-d")


def embedders_for(schema: Schema, models: Mapping[str, QueryEncoder | SentenceEncoder]
                  ) -> list[TextEmbedder]:
    """An embedder for every key of ``schema``: the model whose key it is (a query tower, or a
    sentence encoder as it is), else the trigram projection for a key named for it
    (:data:`PROJECTION_SUFFIX`).  Any other key without its model is refused: embedded by the
    projection, its cosines (``nn`` distances, the reranker's features) would be noise."""
    from ebr.encoders.serving.sentence_encoder import SentenceEncoder

    missing = [k.name for k in schema.keys
               if k.name not in models and not k.name.endswith(PROJECTION_SUFFIX)]
    if missing:
        raise PlanError(f"no model for the index's embedding key{'s' * (len(missing) > 1)} "
                        f"{', '.join(missing)}: pass its model directory (--model); only a key "
                        f"named *{PROJECTION_SUFFIX} is embedded without one (by the trigram "
                        "projection)")
    embedders: list[TextEmbedder] = []
    for key in schema.keys:
        model = models.get(key.name)
        embedders.append(ProjectionEmbedder(key.name, TrigramProjection(key.dimension))
                         if model is None else
                         model if isinstance(model, SentenceEncoder) else ModelEmbedder(model))
    for embedder in embedders:
        check_embedder(schema, embedder)
    return embedders
