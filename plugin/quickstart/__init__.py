"""The quickstart: a small unified two-tower model of the world's cities, trained in a few
minutes, their index, and example requests that show the papers' point.

- :mod:`ebr.quickstart.queries`: what searchers type for a city and which city they mean
  (the searcher's country decides between cities of the same name);
- :mod:`ebr.quickstart.model`: the encoder (text + searcher country; name + country + region +
  population) and its training;
- :mod:`ebr.quickstart.cities`: the cities as index documents, and the index;
- :mod:`ebr.quickstart.embeddings`: how requests are embedded (the model, or the training-free
  trigram projection where torch is missing);
- :mod:`ebr.quickstart.examples`: the example requests, :func:`run_request`, and how each hit
  is explained;
- :mod:`ebr.quickstart.build`: all of it behind ``ebr quickstart``.
"""

from ebr.quickstart.build import Quickstart, build_quickstart
from ebr.quickstart.cities import build_cities_index, cities, nlist_for, schema
from ebr.quickstart.embeddings import PROJECTION_KEY, model_embedding, projection_embedding
from ebr.quickstart.examples import (
    EXAMPLES,
    Example,
    ExampleHit,
    ExampleResult,
    ExampleRun,
    QueryEmbedding,
    render,
    run_example,
    run_examples,
    run_request,
)

__all__ = ["EXAMPLES", "PROJECTION_KEY", "Example", "ExampleHit", "ExampleResult", "ExampleRun",
           "QueryEmbedding", "Quickstart", "build_cities_index", "build_quickstart", "cities",
           "model_embedding", "nlist_for", "projection_embedding", "render", "run_example",
           "run_examples", "run_request", "schema"]
