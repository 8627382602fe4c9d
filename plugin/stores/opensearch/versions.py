"""OpenSearch server versions: parsing ``GET /`` and gating what ebr compiles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ebr.errors import UnsupportedError

_NUMBER = re.compile(r"([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:-(?:alpha|beta|rc)[0-9]+)?(?:-SNAPSHOT)?\Z")


@dataclass(frozen=True, order=True, slots=True)
class ServerVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, number: str) -> ServerVersion:
        """``"2.19.1"``, ``"2.19"``, ``"3.0.0-SNAPSHOT"``, ``"3.0.0-beta1"``."""
        m = _NUMBER.match(number.strip())
        if not m:
            raise UnsupportedError(f"cannot read OpenSearch version {number!r}")
        return cls(int(m[1]), int(m[2]), int(m[3] or 0))

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ServerVersion:
        """From the ``GET /`` response.  Without ``version.distribution`` the server may be
        Elasticsearch, or OpenSearch 2.x reporting 7.10.2 for compatibility
        (``compatibility.override_main_response_version``); neither can be trusted."""
        version = info.get("version") or {}
        if version.get("distribution") != "opensearch":
            raise UnsupportedError(
                f"the server reports version {version.get('number')!r} without "
                "distribution 'opensearch': it is not OpenSearch, or it overrides its version "
                "for compatibility (compatibility.override_main_response_version); ebr needs "
                "OpenSearch " + str(MINIMUM))
        return cls.parse(str(version.get("number", "")))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


#: Faiss ``cosinesimil`` on IVF fields arrives in 2.19; everything else ebr uses is older
#: (radial search 2.14, method_parameters 2.16, knn rescore 2.17).
MINIMUM = ServerVersion(2, 19, 0)


#: OpenSearch 3.0 scores BM25 as Lucene does; before, with the old (k1 + 1) factor
#: (LegacyBM25Similarity; measured on 2.19.1 and 3.5.0).  It follows the index's creation
#: version: an index made on 2.x keeps the factor on a 3.x cluster.
BM25_WITHOUT_K1_FACTOR = ServerVersion(3, 0, 0)


def require_supported(version: ServerVersion) -> None:
    if version < MINIMUM:
        raise UnsupportedError(
            f"OpenSearch {version} is too old: ebr needs {MINIMUM} or newer (cosine similarity "
            "on Faiss IVF fields and per-query nprobes). Upgrade the cluster, or use the local "
            "store.")
