"""The fixed world the golden files are compiled in: a schema with an HNSW key and an IVF-PQ
key, dyadic query vectors (exact in float32, readable in JSON) and fixed centroids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ebr import CentroidQuantizer, compile_search, parse, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, IvfPq, Namespace, Schema

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"

SCHEMA = Schema.create(
    "people",
    (Namespace("text"), Namespace("location", "lowercase"), Namespace("category", "keyword")),
    (
        EmbeddingKey("model-141795009", 4, CoarseQuantizerSpec(nlist=8, default_nprobe=2)),
        EmbeddingKey("title-ivf", 4, CoarseQuantizerSpec(nlist=8),
                     IvfPq("title-ivf-model", nlist=16, pq_m=2)),
    ),
)

VECTORS = {
    "model-141795009": np.array([0.5, 0.5, 0.5, 0.5], np.float32),
    "title-ivf": np.array([1.0, 0.0, 0.0, 0.0], np.float32),
}

# Eight centroids: +-e_i.  The first query vector is equidistant from the four +e_i, so the
# probe order also exercises the deterministic tie-break (by cluster id).
_CENTROIDS = np.concatenate([np.eye(4), -np.eye(4)]).astype(np.float32)
QUANTIZERS = {key: CentroidQuantizer(_CENTROIDS) for key in VECTORS}


def compile_text(text: str, size: int = 10) -> dict[str, Any]:
    executable = plan(parse(text, SCHEMA), VECTORS, QUANTIZERS, SCHEMA)
    return compile_search(executable, SCHEMA, VECTORS, size=size).body


def compile_cases() -> list[tuple[str, str]]:
    """(case name, query text) for every ``golden/compile/*.sexp``."""
    return [(p.stem, p.read_text(encoding="utf-8"))
            for p in sorted((GOLDEN_DIR / "compile").glob("*.sexp"))]


def check_golden(path: Path, actual: Any) -> None:
    """Compare ``actual`` with the JSON in ``path``; ``EBR_UPDATE_GOLDEN=1`` rewrites it."""
    text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("EBR_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path.name} missing; run with EBR_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{path.name} differs (EBR_UPDATE_GOLDEN=1 to accept):\n{text}"
