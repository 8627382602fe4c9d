"""Metric direction and every radius/score conversion, in one place.

ebr measures closeness as cosine *distance* ``1 - cos(q, d)`` in ``[0, 2]`` (smaller is
closer), as the query language's ``:radius`` does.  OpenSearch reports other quantities per
space type; the conversions below are the only place they are spelled out (see
docs/architecture.md, "What the code relies on from OpenSearch").
"""

from __future__ import annotations

import enum
from typing import Any


class Space(enum.Enum):
    """The similarity space of an embedding key.  Only cosine is supported today."""

    COSINE = "cosine"

    @property
    def opensearch_space_type(self) -> str:
        """The k-NN plugin's ``space_type`` for this space."""
        return "cosinesimil"

    @staticmethod
    def script_source() -> str:
        """Painless for an exact, non-negative score ``1 + cos`` (script scores must be >= 0)."""
        return "1.0 + cosineSimilarity(params.query_value, doc[params.field])"

    @staticmethod
    def knn_script_source() -> str:
        """Painless for the native ``knn`` score ``(1 + cos) / 2``, exactly (for a top-K clause
        resolved to its documents)."""
        return "(1.0 + cosineSimilarity(params.query_value, doc[params.field])) / 2.0"

    @staticmethod
    def radius_to_script_min_score(radius: float) -> float:
        """``1 - cos <= r``  <=>  ``1 + cos >= 2 - r`` for the script above."""
        return 2.0 - radius

    @staticmethod
    def script_score_to_distance(score: float) -> float:
        """The distance a radius clause's score ``1 + cos`` stands for (the inverse of
        :meth:`within_score`)."""
        return 2.0 - score

    @staticmethod
    def knn_score_to_distance(score: float) -> float:
        """The native ``knn`` query scores cosinesimil hits ``(1 + cos) / 2``."""
        return 2.0 - 2.0 * score

    @staticmethod
    def within_score(distance: Any) -> Any:
        """The score of a radius (``within``) clause: its script's ``1 + cos = 2 - distance``.
        Works on floats and NumPy arrays alike."""
        return 2.0 - distance

    @staticmethod
    def knn_score(distance: Any) -> Any:
        """The score of a top-K clause: native ``knn``'s ``(1 + cos) / 2 = 1 - distance / 2``."""
        return 1.0 - distance / 2.0


#: The bounds of cosine distance; ``:radius`` must lie within them.
MIN_RADIUS = 0.0
MAX_RADIUS = 2.0
