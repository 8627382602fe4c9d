"""The Home Depot reranker's training set, cross-fitted over the whole train split.

A reranker must learn from candidates whose features look as a new query's do: retrieved and
scored by an encoder that never trained on the query (on the queries an encoder trained on,
its cosine alone puts a relevant title in the top 100 for 0.999 of them, so a reranker trained
there learns to trust the cosine and nothing else).  The model's own held-out slice (its
``validation_fraction`` of the train split, 752 queries) is such a set, but small; a larger
slice weakens the encoder.  Cross-fitting gives every train query such candidates: the train
queries are split in two halves by a salted hash (independent of the encoders' own early-stopping
split), an encoder with the model's own configuration and training settings is trained on each
half, indexes the titles, and retrieves the other half's candidates.  Their features (that
encoder's cosine standing for the model's) train the reranker the model serves with.

Each half's model, index and graded features are kept under ``WORK/cross-fit/half<N>`` and
reused by the next run (the features when they were computed for the same template, candidate
count and feature definitions: the feature set's fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from homedepot_baselines import torch_threads
from homedepot_data import HomeDepot
from homedepot_train import pairs

from ebr.encoders.encoder_config import EncoderConfig
from ebr.encoders.serving.model_directory import save_model_directory
from ebr.encoders.serving.model_files import CONFIG_FILE, MODEL_FILE, read_model_info
from ebr.encoders.serving.query_encoder import QueryEncoder
from ebr.encoders.training.config import TrainConfig
from ebr.encoders.training.data import prepare
from ebr.encoders.training.trainer import train
from ebr.evaluation.reranker_training import fold_groups
from ebr.mappings import Schema
from ebr.ranking.feature_set import FeatureSet
from ebr.ranking.lambdarank import GradedFeatures, LambdaRankReranker, fit_lambdarank
from ebr.request import ModelEmbedder, Searcher
from ebr.request.embedders import TextEmbedder
from ebr.stores.local import LocalStore

HALVES = 2
#: Salts the hash of a query's half, so the halves cut across the encoders' own split.
SALT = "xfit:"

#: Builds (or reuses) a local index of the titles under a model: ``(model, work) -> index``.
IndexBuilder = Callable[[HomeDepot, Path, Path], Path]


def cross_fit_half(query: str) -> int:
    """The half of the train split ``query`` belongs to (a fixed, salted hash of its text)."""
    return zlib.crc32((SALT + query).encode("utf-8")) % HALVES


def half_model(data: HomeDepot, model: Path, work: Path, half: int) -> Path:
    """An encoder configured and trained as ``model`` was, on the train pairs of one half's
    queries (reused when ``work`` holds it)."""
    out = work / "model"
    if (out / MODEL_FILE).exists():
        print(f"cross-fit: reusing {out}")
        return out
    encoder = EncoderConfig.from_dict(json.loads((model / CONFIG_FILE).read_text(encoding="utf-8")))
    config = TrainConfig.from_dict(read_model_info(model).training["config"])
    corpus = [{"id": uid, "title": t} for uid, t in zip(data.product_ids, data.titles, strict=True)]
    kept = [p for p in pairs(data, "train") if cross_fit_half(str(p.query["text"])) == half]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, torch_threads(config.threads):
        result = train(encoder, config, prepare(kept, config, None, corpus), scratch,
                       progress=False, log=print)
    save_model_directory(out, result.model, result.vocabulary, result.summary(config))
    print(f"cross-fit: half {half}'s encoder trained on {len(kept):,} pairs in "
          f"{(time.perf_counter() - started) / 60:.1f} min (best epoch {result.best_epoch})",
          flush=True)
    return out


def half_features(data: HomeDepot, model: Path, index: Path, template: str, candidates: int,
                  half: int, cache: Path, target: FeatureSet, key: str,
                  others: Sequence[TextEmbedder] = ()) -> list[GradedFeatures]:
    """The graded features of the candidates ``model`` retrieves on ``index`` for the train
    queries outside ``half``, as rows of ``target`` (the model's index's features, ``key``
    its embedding key; ``others`` embed the requests for the index's other keys), read from
    ``cache`` when it was written for the same request."""
    with LocalStore.open(index, readonly=True) as store:
        # The fingerprint too: features cached before their definitions changed are stale.
        stamp = hashlib.sha256(json.dumps([read_model_info(model).key, template, candidates,
                                           FeatureSet.for_schema(store.schema).fingerprint]
                                          ).encode())
    path = cache / f"features-{stamp.hexdigest()[:12]}.npz"
    if path.exists():
        saved = np.load(path)
        bounds = np.cumsum(saved["sizes"])[:-1]
        return [GradedFeatures(v, g) for v, g in zip(
            np.split(saved["values"], bounds), np.split(saved["grades"], bounds), strict=True)]
    qrels = {q: j for q, j in data.qrels("train").items() if cross_fit_half(q) != half}
    started = time.perf_counter()
    failed: dict[str, str] = {}
    with LocalStore.open(index, readonly=True) as store, torch_threads(1):
        encoder = QueryEncoder(model)
        searcher = Searcher(store, [ModelEmbedder(encoder), *others], key=encoder.key)
        groups, queries = [], []
        for query in qrels:  # one at a time, to know which queries gave a group
            found = list(fold_groups(searcher, template, {query: qrels[query]}, target, key,
                                     candidates=candidates, failed=failed))
            groups.extend(found)
            queries.extend([query] * len(found))
    # The queries are kept for inspection (which groups came from which query), not read back.
    np.savez(path, values=np.concatenate([g.values for g in groups]),
             grades=np.concatenate([g.grades for g in groups]),
             sizes=np.array([len(g.grades) for g in groups]), queries=np.array(queries))
    print(f"cross-fit: half {half}'s encoder retrieved {len(groups):,} other-half queries' "
          f"candidates in {time.perf_counter() - started:.0f} s", flush=True)
    return groups


def cross_fitted_reranker(data: HomeDepot, model: Path, schema: Schema, work: Path, template: str,
                          candidates: int, build_index: IndexBuilder,
                          others: Sequence[TextEmbedder] = ()) -> LambdaRankReranker:
    """LambdaRank for ``model``'s index (``schema``), trained on every train query's
    candidates from the half-encoder that did not train on it (``others``: the embedders of
    the index's other keys, the same on every fold)."""
    target = FeatureSet.for_schema(schema)
    key = read_model_info(model).key
    groups: list[GradedFeatures] = []
    for half in range(HALVES):
        half_work = work / "cross-fit" / f"half{half}"
        half_work.mkdir(parents=True, exist_ok=True)
        encoder = half_model(data, model, half_work, half)
        index = build_index(data, encoder, half_work)
        groups.extend(half_features(data, encoder, index, template, candidates, half, half_work,
                                    target, key, others))
    print(f"cross-fit: LambdaRank fitted on {len(groups):,} train queries "
          f"({sum(len(g.grades) for g in groups):,} candidates)", flush=True)
    return fit_lambdarank(groups, target)

