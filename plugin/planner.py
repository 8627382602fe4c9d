"""The rewrite pipeline: AST -> logical plan.

    flatten -> dedupe -> fold -> push_down -> expand_nn -> flatten -> dedupe -> fold

Each step is a pure rule in :mod:`ebr.rules`.  Without query vectors the plan stops before
``expand_nn`` (:func:`logical_plan`), which is what ``explain`` shows for a query alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ebr.mappings.schema import Schema
from ebr.nodes import Node
from ebr.quantizer import CoarseQuantizer
from ebr.rules.dedupe import dedupe
from ebr.rules.expand_nn import expand_nn
from ebr.rules.flatten import flatten
from ebr.rules.fold import fold
from ebr.rules.pushdown import push_down


def simplify(node: Node) -> Node:
    return fold(dedupe(flatten(node)))


def logical_plan(ast: Node) -> Node:
    """Simplified, with constraints pushed into NN nodes; NN not yet expanded."""
    return push_down(simplify(ast))


def plan(
    ast: Node,
    vectors: Mapping[str, npt.NDArray[np.float32]],
    quantizers: Mapping[str, CoarseQuantizer],
    schema: Schema | None = None,
) -> Node:
    """The executable plan: radius NN expanded into probes + ``within`` for these vectors."""
    return simplify(expand_nn(logical_plan(ast), vectors, quantizers, schema))
