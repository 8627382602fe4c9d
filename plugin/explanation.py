"""``explain``: every stage of a query, from text to the OpenSearch request, for people.

The CLI's ``ebr explain`` prints this; the library returns it so a console or a notebook
can show the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import Schema
from ebr.planning.planner import logical_plan, plan
from ebr.quantization.coarse import CoarseQuantizer
from ebr.query.nodes import Match, Node, named_branches, walk
from ebr.query.parser import parse
from ebr.query.printer import pretty
from ebr.query.reader import DEFAULT_LIMITS, Limits
from ebr.stores.opensearch.compiler import CompiledSearch, compile_search, compile_top_k
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion


@dataclass(frozen=True)
class Explanation:
    text: str
    ast: Node
    logical: Node
    plan: Node
    compiled: CompiledSearch
    schema: Schema
    #: The requests resolving top-K ``match`` clauses first, by branch name; the main request
    #: stands for their hits by a placeholder id.
    resolving: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def render(self, width: int = 100, full_vectors: bool = False) -> str:
        show: Callable[[Any], Any] = (lambda body: body) if full_vectors else _abbreviate
        names = self.compiled.branches()
        branch_lines = [f"  {name:<{max(map(len, names))}}  {text}" for name, text in
                        names.items()]
        first = [line for name, body in self.resolving.items() for line in (
            f"First, {name}'s top K: POST /{self.schema.index}/_search",
            _indent(json.dumps(show(body), indent=2, ensure_ascii=False)), "")]
        return "\n".join([
            "AST",
            _indent(pretty(self.ast, width - 2)),
            "",
            "Logical plan (simplified, constraints pushed into nn)",
            _indent(pretty(self.logical, width - 2)),
            "",
            "Plan (radius nn -> probe cluster terms + exact within)",
            _indent(pretty(self.plan, width - 2)),
            "",
            *first,
            f"OpenSearch request: POST /{self.schema.index}/_search",
            _indent(json.dumps(show(self.compiled.body), indent=2, ensure_ascii=False)),
            "",
            "Branches (_name -> what it matches)",
            *branch_lines,
        ])


def explain(
    text: str,
    schema: Schema,
    vectors: Mapping[str, npt.NDArray[np.float32]],
    quantizers: Mapping[str, CoarseQuantizer],
    *,
    size: int = 10,
    version: ServerVersion = MINIMUM,
    limits: Limits = DEFAULT_LIMITS,
) -> Explanation:
    ast = parse(text, schema, limits)
    logical = logical_plan(ast)
    executable = plan(ast, vectors, quantizers, schema)
    names = {id(node): name for name, node in named_branches(executable).items()}
    top_k = {names.get(id(n), "?"): n for n in walk(executable)
             if type(n) is Match and n.k is not None}
    compiled = compile_search(executable, schema, vectors, size=size, version=version,
                              resolved={n: [f"<hits of {name}>"] for name, n in top_k.items()})
    resolving = {name: compile_top_k(n, schema, vectors, version=version)
                 for name, n in top_k.items()}
    return Explanation(text, ast, logical, executable, compiled, schema, resolving)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _abbreviate(value: Any) -> Any:
    """Long float lists (query vectors) shortened for reading."""
    if isinstance(value, dict):
        return {k: _abbreviate(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 6 and all(isinstance(x, float) for x in value):
            head = ", ".join(f"{x:.4f}" for x in value[:3])
            return f"[{head}, ... {len(value)} floats]"
        return [_abbreviate(v) for v in value]
    return value
