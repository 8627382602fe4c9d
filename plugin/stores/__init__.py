"""Stores: where an index lives and how a plan runs on it.

:mod:`.protocol` is the interface every store implements and the plain data it exchanges;
:mod:`.documents` checks documents before any store writes them; :mod:`.reference` executes
any plan exactly over a list of documents, the specification both stores are tested against.
The stores themselves: :mod:`.local` (embedded, no server) and :mod:`.opensearch`.
"""

from ebr.errors import StoreError
from ebr.stores.documents import (
    DimensionError,
    DocumentError,
    DuplicateIdError,
    InvalidDocumentError,
    InvalidTextError,
    InvalidVectorError,
    UnknownFieldError,
)
from ebr.stores.protocol import (
    ClauseMatch,
    Fetch,
    Fetched,
    Hit,
    IndexDocument,
    IndexStats,
    ProbeChoice,
    SearchResult,
    SearchStats,
    Store,
    StoredDocument,
    TextMatch,
    TopKChoice,
    WriteResult,
    search_text,
)

__all__ = [
    "ClauseMatch",
    "DimensionError",
    "DocumentError",
    "DuplicateIdError",
    "Fetch",
    "Fetched",
    "Hit",
    "IndexDocument",
    "IndexStats",
    "InvalidDocumentError",
    "InvalidTextError",
    "InvalidVectorError",
    "ProbeChoice",
    "SearchResult",
    "SearchStats",
    "Store",
    "StoreError",
    "StoredDocument",
    "TextMatch",
    "TopKChoice",
    "UnknownFieldError",
    "WriteResult",
    "search_text",
]
