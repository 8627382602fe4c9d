"""Building the quickstart: the cities, the model trained on them (or the projection), the index.

:func:`build_quickstart` is the whole job behind ``ebr quickstart`` before the examples run:
pick the cities, train the city encoder and write its model directory (unless ``train`` is
off), embed every city with the document tower (or the trigram projection), and index them
with their embeddings and coarse clusters.  Each step shows a tqdm progress bar on stderr
when ``progress`` is on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.encoders.training.config import TrainConfig
from ebr.quickstart.cities import build_cities_index, cities
from ebr.quickstart.embeddings import PROJECTION_DIMENSION, model_embedding, projection_embedding
from ebr.quickstart.examples import HELD_OUT_ALIASES, QueryEmbedding, example_city_names
from ebr.quickstart.model import TRAINING, doc_record, train_city_model
from ebr.quickstart.queries import City
from ebr.stores.local import LocalStore

Log = Callable[[str], None]
#: The reduced mode's cities, besides the examples' own (``ebr quickstart --small``, with
#: :data:`~ebr.quickstart.model.SMALL_TRAINING`): what CI runs.
SMALL_LIMIT = 500


@dataclass
class Quickstart:
    """The built index (open), how requests are embedded for it, and the model directory
    (None without training)."""

    store: LocalStore
    embedding: QueryEmbedding
    model_dir: Path | None
    cities: int


def build_quickstart(path: str | os.PathLike[str], *, limit: int | None = None,
                     model_dir: str | os.PathLike[str] | None = None,
                     training: TrainConfig = TRAINING, progress: bool = False,
                     log: Log | None = None) -> Quickstart:
    """Index the cities in ``path`` (a missing or empty directory): all of them, or the
    ``limit`` most populous and the examples' cities.  With ``model_dir``, train the city
    encoder there first with ``training`` (torch needed) and embed with it; without, use the
    trigram projection."""
    rows = cities(limit, example_city_names() if limit is not None else ())
    model = Path(model_dir) if model_dir is not None else None
    if model is not None:
        train_city_model(rows, model, config=training, held_out=HELD_OUT_ALIASES,
                         progress=progress, log=log)
        embedding = model_embedding(model)
        embeddings = _model_embeddings(model, rows, progress)
    else:
        embedding = projection_embedding()
        embeddings = _projection_embeddings(rows, progress)
    bar = _bar(len(rows), "indexing cities", progress)
    with bar:
        store = build_cities_index(path, rows, embedding.key, embeddings,
                                   progress=lambda done, _: bar.update(done - bar.n))
    return Quickstart(store, embedding, model, len(rows))


def _bar(total: int, label: str, shown: bool):  # type: ignore[no-untyped-def]  # tqdm is untyped
    from tqdm import tqdm  # type: ignore[import-untyped]

    return tqdm(total=total, desc=label, unit="city", disable=not shown, leave=False, file=sys.stderr)


def _model_embeddings(model_dir: Path, rows: list[City], progress: bool) -> npt.NDArray[np.float32]:
    from ebr.encoders.serving.model_directory import EncoderModel

    model = EncoderModel.load(model_dir)
    return model.encode_docs([doc_record(c) for c in rows], progress=progress)


def _projection_embeddings(rows: list[City], progress: bool) -> npt.NDArray[np.float32]:
    projection = TrigramProjection(PROJECTION_DIMENSION)
    out = np.empty((len(rows), PROJECTION_DIMENSION), dtype=np.float32)
    with _bar(len(rows), "embedding city names", progress) as bar:
        for i, city in enumerate(rows):
            out[i] = projection.embed_one(city["name"])
            bar.update(1)
    return out
