"""A pretrained sentence-transformer as the encoder of an embedding key (EBR §4.3's ensemble of
embeddings: a second key the reranker reads as one more cosine feature).

A *sentence model directory* is what ``sentence-transformers`` saves (``model.save(dir)``) plus
:data:`KEY_FILE`, naming the embedding key its vectors are indexed under; ``--model`` accepts
one wherever it accepts an ``ebr train`` model directory.  The same encoder embeds a request's
text (the request API's :class:`~ebr.request.embedders.TextEmbedder`) and documents' text
fields (``encode``, the ingest pipeline's document encoder), unit-normalised, so the
cosine is the inner product as for every key.  Needs the ``sentence-transformers`` package.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ebr.encoders.errors import EncoderConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The file of a sentence model directory that names its embedding key.
KEY_FILE = "ebr-sentence-key.json"


def is_sentence_model_directory(path: Path) -> bool:
    return (path / KEY_FILE).is_file()


class SentenceEncoder:
    """Texts -> unit-norm embeddings of a sentence-transformer, for embedding key ``key``.

    Documents are embedded from their ``field`` (a record's text field); requests from their
    text alone (no context field)."""

    context_fields: tuple[str, ...] = ()

    def __init__(self, key: str, model: SentenceTransformer, *, field: str = "text",
                 batch_size: int = 64) -> None:
        # renamed get_embedding_dimension in sentence-transformers 5
        dimension = getattr(model, "get_embedding_dimension",
                            model.get_sentence_embedding_dimension)()
        if dimension is None:
            raise EncoderConfigError(f"the sentence model for {key} does not say its dimension")
        self._key, self._dimension = key, int(dimension)
        self.model, self.field, self.batch_size = model, field, batch_size
        # One forward pass at a time: the request API calls embed from many threads.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, directory: Path, *, field: str = "text") -> SentenceEncoder:
        """The sentence model directory ``directory`` (:meth:`save` wrote it)."""
        try:
            key = str(json.loads((directory / KEY_FILE).read_text(encoding="utf-8"))["key"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise EncoderConfigError(f"{directory}: not a sentence model directory (its "
                                     f"{KEY_FILE} must name the key: {{\"key\": ...}}): {e}") from e
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise EncoderConfigError(f"{directory} is a sentence-transformers model: "
                                     "pip install 'ebr[sentence]'") from e
        return cls(key, SentenceTransformer(str(directory), device="cpu"), field=field)

    def save(self, directory: Path) -> None:
        """Write the model and its key as a sentence model directory."""
        self.model.save(str(directory))
        (directory / KEY_FILE).write_text(json.dumps({"key": self.key}) + "\n", encoding="utf-8")

    @property
    def key(self) -> str:
        return self._key

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_texts(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embeddings ``(len(texts), dimension)``, unit norm."""
        with self._lock:
            emb = self.model.encode(list(texts), batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.ascontiguousarray(emb, dtype=np.float32).reshape(len(texts), self.dimension)

    def embed(self, text: str, context: Mapping[str, str]) -> npt.NDArray[np.float32]:
        """One request's embedding (the context is not read)."""
        row: npt.NDArray[np.float32] = self.embed_texts([text])[0]
        return row

    def encode(self, records: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        """Documents' embeddings from their ``field`` (missing: the empty text)."""
        return self.embed_texts([str(r.get(self.field) or "") for r in records])
