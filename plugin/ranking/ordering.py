"""The final order every scorer shares: by the scorer's score, best first; equal scores keep
their first-stage order (itself total: score, static rank, id), so both stores, which give
the same first-stage order, give the same final order."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from ebr.ranking.features import Features
from ebr.ranking.protocol import RankedHit


def ranked(features: Features, scores: npt.NDArray[np.float64],
           explain: Callable[[int], Mapping[str, float]]) -> list[RankedHit]:
    """The hits of ``features`` ordered by ``scores``; ``explain(i)``: the parts of hit
    ``i``'s score."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [RankedHit(features.hits[i], float(scores[i]), features.row(i), explain(i))
            for i in order.tolist()]
