"""``explain``: every stage of a query, from text to the OpenSearch request, for people.

The CLI's ``ebr explain`` prints this; the library returns it so a console or a notebook
can show the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import Schema
from ebr.planning.planner import logical_plan, plan
from ebr.quantization.coarse import CoarseQuantizer
from ebr.query.nodes import Node
from ebr.query.parser import parse
from ebr.query.printer import pretty
from ebr.query.reader import DEFAULT_LIMITS, Limits
from ebr.stores.opensearch.compiler import CompiledSearch, compile_search
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion


@dataclass(frozen=True)
class Explanation:
    text: str
    ast: Node
    logical: Node
    plan: Node
    compiled: CompiledSearch
    schema: Schema

    def render(self, width: int = 100, full_vectors: bool = False) -> str:
        body = self.compiled.body if full_vectors else _abbreviate(self.compiled.body)
        names = self.compiled.branches()
        branch_lines = [f"  {name:<{max(map(len, names))}}  {text}" for name, text in
                        names.items()]
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
            f"OpenSearch request: POST /{self.schema.index}/_search",
            _indent(json.dumps(body, indent=2, ensure_ascii=False)),
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
    compiled = compile_search(executable, schema, vectors, size=size, version=version)
    return Explanation(text, ast, logical, executable, compiled, schema)


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
