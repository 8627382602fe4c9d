"""The quickstart's model: a small unified two-tower encoder of cities (EBR §2.3, Fig. 2).

The query side reads what the searcher typed (hashed character trigrams, EBR §3) and the
searcher's country (a categorical channel); the document side reads the city's name
(trigrams), country, region and population (categorical).  The two towers are one network
(see :data:`ENCODER`), so a name typed and a name indexed, a searcher's country and a
city's country, land in one space from the first step.

Training (:func:`train_city_model`) is :func:`ebr.encoders.train_model_directory` on the pairs of
:mod:`ebr.quickstart.queries`: the same trainer and model directory ``ebr train`` makes.  Only
:func:`train_city_model` imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ebr.encoders.encoder_config import (
    CategoricalChannel,
    CharTrigramChannel,
    EncoderConfig,
    TowerConfig,
)
from ebr.encoders.training.config import TrainConfig
from ebr.quickstart.cities import region_of
from ebr.quickstart.queries import City, country_of, training_pairs

if TYPE_CHECKING:
    from ebr.encoders.serving.model_files import ModelInfo

DIMENSION = 64
_CHANNELS = (CategoricalChannel("country", "country", buckets=1024, dim=DIMENSION),
             CategoricalChannel("region", "region", buckets=8192, dim=16),
             CategoricalChannel("population", "population", buckets=64, dim=8))

#: One network for both sides (``weight_sharing="all"``): the query side reads the typed
#: text and the searcher's country (a query has no region or population: empty bags), the
#: document side the city's name, country, region and population.  Sharing every weight
#: keeps a name typed with a slip near the name indexed from the first step, which a model
#: trained for a minute on a few thousand names needs (separate towers learned to tell the
#: names apart but not to forgive slips).
ENCODER = EncoderConfig(
    query=TowerConfig((CharTrigramChannel("trigrams", "text", buckets=1 << 17, dim=DIMENSION),
                       *_CHANNELS), hidden_dim=DIMENSION),
    doc=TowerConfig((CharTrigramChannel("trigrams", "name", buckets=1 << 17, dim=DIMENSION),
                     *_CHANNELS), hidden_dim=DIMENSION),
    output_dim=DIMENSION,
    weight_sharing="all",
)

#: In-batch softmax with random corpus negatives (mixed negatives): in-batch negatives alone
#: are drawn by how often a city is queried, the random ones uniformly.  One epoch over the
#: ~129k pairs of all cities: measured at 1.1 CPU-ms a pair (146 CPU-seconds), the budget of
#: a quickstart that trains in about 3 minutes on 2 cores.
TRAINING = TrainConfig(epochs=1, batch_size=1024, loss="softmax", random_negatives=256,
                       learning_rate=3e-3, embedding_learning_rate=1e-2, validation_fraction=0.02,
                       knn_recall_k=10, patience=2, seed=0, threads=2)
#: The reduced mode's: a few thousand pairs need smaller batches and more passes to take
#: enough steps.
SMALL_TRAINING = TRAINING.replace(epochs=3, batch_size=256, random_negatives=128)


def doc_record(city: City) -> dict[str, Any]:
    """What the document tower reads of a city."""
    population = int(city["population"])
    return {"id": str(city["geonameid"]), "name": city["name"], "country": country_of(city),
            "region": region_of(city),
            # half-decades of population: 10k-31k, 31k-100k, ...
            "population": str(int(2 * math.log10(population + 1)))}



def train_city_model(cities: Sequence[City], output: str | Path, *, config: TrainConfig = TRAINING,
                     held_out: Sequence[str] = (), progress: bool = False,
                     log: Callable[[str], None] | None = None) -> ModelInfo:
    """Train the city encoder on queries for ``cities`` with ``config`` and write its model
    directory to ``output``; ``held_out`` alternate names are never trained on."""
    from ebr.encoders.training.data import prepare  # torch: only a training run needs it
    from ebr.encoders.training.trainer import train_model_directory

    pairs = training_pairs(cities, seed=config.seed, held_out=held_out)
    data = prepare(pairs, config, corpus=[doc_record(c) for c in cities])
    info, _ = train_model_directory(ENCODER, config, data, output, progress=progress, log=log)
    return info
