"""Shared fixtures.  ``tests/`` is on sys.path (pytest's rootdir insertion), so helpers live
in ``tests/support`` and are imported as ``support.<module>``."""

from __future__ import annotations

from support.cluster import (  # noqa: F401  (a real OpenSearch, plain and secured)
    opensearch_cluster,
    opensearch_url,
    secured_opensearch,
)
from support.osmem import osmem_client  # noqa: F401  (session fixture: the OpenSearch emulator)
