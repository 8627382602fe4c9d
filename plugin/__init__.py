"""ebr: embedding-based retrieval for OpenSearch.

The query side: read and analyse Unicorn-style s-expressions, rewrite them into a logical
plan, evaluate plans exactly (the reference), and compile them for OpenSearch.
"""

from ebr.errors import (
    EbrError,
    IncompleteInputError,
    PlanError,
    QuerySyntaxError,
    SchemaError,
    UnsupportedError,
)
from ebr.explanation import Explanation, explain
from ebr.planning.planner import logical_plan, plan
from ebr.quantization.coarse import CentroidQuantizer, CoarseQuantizer
from ebr.query.nodes import NN, And, Difference, Node, Nothing, Or, Term, Within, named_branches
from ebr.query.parser import parse
from ebr.query.printer import pretty, to_text
from ebr.query.reader import Limits, read
from ebr.stores.opensearch.compiler import CompiledSearch, compile_filter, compile_rescore, compile_search
from ebr.stores.opensearch.versions import ServerVersion
from ebr.stores.reference import Document, evaluate

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
    "Limits",
    "Node",
    "Nothing",
    "Or",
    "PlanError",
    "QuerySyntaxError",
    "SchemaError",
    "ServerVersion",
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
    "to_text",
]
