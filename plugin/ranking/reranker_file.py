"""A trained reranker as a file: JSON holding the scorer's kind, the feature list it was
trained for, that list's fingerprint and the scorer's model, so a reranker is never applied
to features other than its own.  ``reranker.json`` beside the encoder's model directory is
the customary place (:data:`RERANKER_FILE`).

.. code-block:: json

    {"format": "ebr-reranker", "version": 1, "scorer": "lambdarank",
     "features": ["cosine:model-141795009", "bm25:title", ...],
     "fingerprint": "3f2a...", "model": "<LightGBM's model string>"}
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ebr.errors import RerankerError
from ebr.ranking.feature_set import FeatureSet

RERANKER_FILE = "reranker.json"
FORMAT = "ebr-reranker"
VERSION = 1


@dataclass(frozen=True)
class RerankerFile:
    scorer: str
    feature_set: FeatureSet
    model: str


def write_reranker_file(path: str | os.PathLike[str], content: RerankerFile) -> None:
    """Write atomically (a temporary file renamed over ``path``)."""
    target = Path(path)
    body = {"format": FORMAT, "version": VERSION, "scorer": content.scorer,
            "features": list(content.feature_set.names),
            "fingerprint": content.feature_set.fingerprint, "model": content.model}
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        os.replace(tmp, target)
    except OSError as e:
        raise RerankerError(f"cannot write reranker {target}: {e.strerror or e}") from None


def read_reranker_file(path: str | os.PathLike[str]) -> RerankerFile:
    """The file's content, refused clearly when it is not a reranker file of this version or
    its feature list was fingerprinted under other feature definitions."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise RerankerError(f"cannot read reranker {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RerankerError(f"{path} is not a reranker file: {e}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise RerankerError(f"{path} is not an ebr reranker file (no \"format\": \"{FORMAT}\")")
    if body.get("version") != VERSION:
        raise RerankerError(f"{path} is a reranker file of version {body.get('version')!r}; "
                            f"this ebr reads version {VERSION}")
    features, model, scorer = body.get("features"), body.get("model"), body.get("scorer")
    if (not isinstance(features, list) or not all(isinstance(n, str) for n in features)
            or not isinstance(model, str) or not isinstance(scorer, str)):
        raise RerankerError(f"{path}: \"features\" must be a list of names, \"scorer\" and "
                            "\"model\" strings")
    feature_set = FeatureSet(tuple(features))
    if body.get("fingerprint") != feature_set.fingerprint:
        raise RerankerError(f"{path} was trained for another definition of its features "
                            f"(fingerprint {body.get('fingerprint')!r}, these definitions give "
                            f"{feature_set.fingerprint}): train it again")
    return RerankerFile(scorer, feature_set, model)
