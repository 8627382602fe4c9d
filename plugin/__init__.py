"""ebr: embedding-based retrieval for OpenSearch.

The query side: read and parse Unicorn-style s-expressions (:mod:`ebr.query`), rewrite them
into a plan (:mod:`ebr.planning`), execute plans exactly (the reference evaluator) or in a
store (:mod:`ebr.stores`), and compile them for OpenSearch (:mod:`ebr.stores.opensearch`).

The request API for app backends, :func:`search` and :class:`Searcher` (:mod:`ebr.request`),
fills a query template with a request, embeds, plans, retrieves and reranks in one call.

The two stores, :class:`LocalStore` and :class:`OpenSearchStore`, and the request API resolve
on first use (PEP 562), so ``import ebr`` loads neither SQLite, Faiss nor opensearch-py.
"""

from typing import TYPE_CHECKING, Any

from ebr.errors import (
    EbrError,
    IncompleteInputError,
    IndexDamagedError,
    PlanError,
    QuerySyntaxError,
    RerankerError,
    SchemaError,
    StoreError,
    UnsupportedError,
)
from ebr.explanation import Explanation, explain
from ebr.planning.planner import logical_plan, plan
from ebr.quantization.coarse import CentroidQuantizer, CoarseQuantizer
from ebr.query.nodes import (
    NN,
    And,
    Difference,
    Match,
    Node,
    Nothing,
    Or,
    Term,
    Within,
    named_branches,
)
from ebr.query.parser import parse
from ebr.query.printer import pretty, to_text
from ebr.query.reader import Limits, read
from ebr.stores.opensearch.compiler import (
    CompiledSearch,
    compile_filter,
    compile_rescore,
    compile_search,
)
from ebr.stores.opensearch.versions import ServerVersion
from ebr.stores.reference import ReferenceDocument, reference_matches

if TYPE_CHECKING:
    from ebr.request.searcher import Searcher, search
    from ebr.stores.local.store import LocalStore
    from ebr.stores.opensearch.store import OpenSearchStore

#: The names these had before they said what they are (kept working).
Document = ReferenceDocument
evaluate = reference_matches

_LAZY = {"LocalStore": "ebr.stores.local.store", "OpenSearchStore": "ebr.stores.opensearch.store",
         "Searcher": "ebr.request.searcher", "search": "ebr.request.searcher"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ebr' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "NN",
    "And",
    "CentroidQuantizer",
    "CoarseQuantizer",
    "CompiledSearch",
    "Difference",
    "Document",
    "EbrError",
    "Explanation",
    "IncompleteInputError",
    "IndexDamagedError",
    "Limits",
    "LocalStore",
    "Match",
    "Node",
    "Nothing",
    "OpenSearchStore",
    "Or",
    "PlanError",
    "QuerySyntaxError",
    "ReferenceDocument",
    "RerankerError",
    "SchemaError",
    "Searcher",
    "ServerVersion",
    "StoreError",
    "Term",
    "UnsupportedError",
    "Within",
    "compile_filter",
    "compile_rescore",
    "compile_search",
    "evaluate",
    "explain",
    "logical_plan",
    "named_branches",
    "parse",
    "plan",
    "pretty",
    "read",
    "reference_matches",
    "search",
    "to_text",
]
