"""A tiny Home Depot-shaped catalogue and a model trained on it as ``bench/homedepot_train.py``
trains one, for the tests of the ``bench/homedepot_*.py`` scripts (which must be importable:
``tests/`` puts ``bench/`` on ``sys.path`` before importing this)."""

from __future__ import annotations

from pathlib import Path

import homedepot_train
from homedepot_data import JUDGMENTS_FILE, PRODUCTS_FILE, HomeDepot

from ebr.encoders.serving.model_directory import save_model_directory
from ebr.encoders.training.data import prepare
from ebr.encoders.training.trainer import train

TOOLS = ("drill", "saw", "hammer", "ladder", "paint")
TITLES = 300


def tiny_catalogue() -> HomeDepot:
    """300 titles (PQ codes train on >= 256 vectors), 160 queries with three graded titles."""
    ids = tuple(str(1000 + i) for i in range(TITLES))
    titles = tuple(f"{TOOLS[i % 5]} model {i} {'cordless' if i % 2 else 'steel'}"
                   for i in range(TITLES))
    judgments = {f"{TOOLS[q % 5]} {q}": {ids[q]: 3.0, ids[q + 5]: 2.0, ids[q + 1]: 1.0}
                 for q in range(160)}
    return HomeDepot(ids, titles, judgments)


def tiny_model(data: HomeDepot, where: Path) -> Path:
    """A tiny model trained as homedepot_train.py trains one, saved in ``where/main``."""
    config = homedepot_train.train_config("default", 1, 1, {"batch_size": 32})
    corpus = [{"id": u, "title": t} for u, t in zip(data.product_ids, data.titles, strict=True)]
    training = prepare(homedepot_train.pairs(data, "train"), config, None, corpus)
    result = train(homedepot_train.encoder_config("default", 16, 2**10), config, training,
                   where / "scratch")
    save_model_directory(where / "main", result.model, result.vocabulary, result.summary(config))
    return where / "main"


def write_data_directory(data: HomeDepot, directory: Path) -> Path:
    """``data`` as the files ``homedepot_data.load_homedepot`` reads."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PRODUCTS_FILE).write_text("product_uid\ttitle\n" + "".join(
        f"{u}\t{t}\n" for u, t in zip(data.product_ids, data.titles, strict=True)))
    (directory / JUDGMENTS_FILE).write_text("query\tproduct_uid\trelevance\n" + "".join(
        f"{q}\t{u}\t{g:g}\n" for q, j in data.judgments.items() for u, g in j.items()))
    return directory
