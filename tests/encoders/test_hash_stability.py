"""Hashed feature ids must not depend on the process: the model trained in one process is
served in another.  Python's own ``hash(str)`` is salted per process (PYTHONHASHSEED), so two
fresh interpreters with different salts must still produce the ids this process produces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ebr.encoders import CategoricalFeaturizer, CharTrigramFeaturizer, WordNgramFeaturizer

TEXTS = ["cordless drill 18v", "Kasie's creations", "équipement à vendre", "深圳 电钻", "", "a"]
CATEGORIES: list[Any] = ["us", ["tools", "paint"], {"tools": 0.5, "garden": 2.0}, None, 42]

# The same computation as featurize_here(), run by a fresh interpreter.
SCRIPT = """
import json
from ebr.encoders import CategoricalFeaturizer, CharTrigramFeaturizer, WordNgramFeaturizer
texts, categories = json.loads(input())
out = {
    "trigrams": CharTrigramFeaturizer(100003, seed=11).featurize(texts).ids.tolist(),
    "words": WordNgramFeaturizer(100003, seed=11).featurize(texts).ids.tolist(),
    "categories": CategoricalFeaturizer("c", 1009, 11, multi_valued=True, weighted=True)
        .featurize(categories).ids.tolist(),
}
print(json.dumps(out))
"""


def featurize_here() -> dict[str, list[int]]:
    return {
        "trigrams": CharTrigramFeaturizer(100003, seed=11).featurize(TEXTS).ids.tolist(),
        "words": WordNgramFeaturizer(100003, seed=11).featurize(TEXTS).ids.tolist(),
        "categories": CategoricalFeaturizer("c", 1009, 11, multi_valued=True, weighted=True)
        .featurize(CATEGORIES).ids.tolist(),
    }


def test_ids_are_identical_across_fresh_processes(tmp_path: Path) -> None:
    stdin = json.dumps([TEXTS, CATEGORIES])
    # Started together so the two interpreter start-ups overlap.
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT], cwd=tmp_path, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONHASHSEED": salt},
        )
        for salt in ("1", "2")
    ]
    results = []
    for run in runs:
        out, err = run.communicate(stdin, timeout=120)
        assert run.returncode == 0, err
        results.append(json.loads(out))
    here = featurize_here()
    assert all(len(ids) > 0 for ids in here.values())
    assert results[0] == results[1] == here
