"""The rewrite pipeline: AST -> logical plan.

    simplify (flatten, dedupe, fold) -> push_down -> expand_nn -> simplify

Each step is a pure rule in :mod:`ebr.planning.rules`; ``simplify`` (:mod:`ebr.planning.rules.simplify`)
applies the three local rules in one bottom-up pass.  It runs again after ``expand_nn``
because two different NN nodes can expand to the same ``within`` (e.g. nprobe 1 and 2 over
a one-cluster quantizer); with at most one radius ``nn`` or ``within`` clause in all in the
logical plan there is nothing for it to do, and it is skipped.
Without query vectors the plan stops before ``expand_nn`` (:func:`logical_plan`), which is
what ``explain`` shows for a query alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ebr.errors import PlanError
from ebr.mappings.schema import Schema
from ebr.planning.rules.expand_nn import expand_nn
from ebr.planning.rules.pushdown import push_down
from ebr.planning.rules.simplify import simplify
from ebr.quantization.coarse import CoarseQuantizer
from ebr.query.kept import Same, kept
from ebr.query.nodes import NN, Node, Within, size, walk
from ebr.query.reader import DEFAULT_LIMITS, Limits


def logical_plan(ast: Node) -> Node:
    """Simplified, with constraints pushed into NN nodes; NN not yet expanded."""
    return push_down(simplify(ast))


def plan(
    ast: Node,
    vectors: Mapping[str, npt.NDArray[np.float32]],
    quantizers: Mapping[str, CoarseQuantizer],
    schema: Schema | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Node:
    """The executable plan: radius NN expanded into probes + ``within`` for these vectors
    (the logical plan of a recent ``ast`` object is kept: :mod:`ebr.query.kept`).  Refuses a
    plan larger than ``limits.max_plan_nodes`` (push-down copies constraints into every NN,
    expansion adds ``nprobe`` terms each)."""
    logical, vector_clauses = _kept_logical_plan(Same(ast))
    executable = expand_nn(logical, vectors, quantizers, schema)
    if vector_clauses > 1:  # only two of them can expand to one ``within`` (see above)
        executable = simplify(executable)
    nodes = size(executable)
    if nodes > limits.max_plan_nodes:
        raise PlanError(f"the plan has {nodes} nodes, more than the limit of "
                        f"{limits.max_plan_nodes}: lower :nprobe or split the query")
    return executable


@kept(lambda kept_plan: size(kept_plan[0]))
def _kept_logical_plan(ast: Same[Node]) -> tuple[Node, int]:
    """The logical plan and how many radius ``nn`` and ``within`` clauses it holds."""
    logical = logical_plan(ast.value)
    return logical, sum(1 for n in walk(logical)
                        if type(n) is Within or (type(n) is NN and n.radius is not None))
