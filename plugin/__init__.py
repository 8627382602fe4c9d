"""ebr: embedding-based retrieval for OpenSearch.

The query side: read and analyse Unicorn-style s-expressions, rewrite them into a logical
plan, evaluate plans exactly (the reference), and compile them for OpenSearch.
"""

from ebr.analyzer import parse
from ebr.errors import (
    EbrError,
    IncompleteInputError,
    PlanError,
    QuerySyntaxError,
    SchemaError,
    UnsupportedError,
)
from ebr.explain import Explanation, explain
from ebr.nodes import NN, And, Difference, Node, Nothing, Or, Term, Within, named_branches
from ebr.opensearch_compiler import CompiledSearch, compile_filter, compile_rescore, compile_search
from ebr.planner import logical_plan, plan
from ebr.printer import pretty, to_text
from ebr.quantizer import CentroidQuantizer, CoarseQuantizer
from ebr.reader import Limits, read
from ebr.reference import Document, evaluate
from ebr.server_version import ServerVersion

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
