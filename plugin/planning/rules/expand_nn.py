"""Radius-mode NN -> cluster-term probes + exact verification (Unicorn's rewrite, EBR §4.2).

``(nn key :radius r :nprobe n)`` with pushed-down constraint C becomes
``(within key r :over (and (or <the n probe cluster terms>) C))``: the probes are terms like
any other (``key.cluster:17``), and ``within`` verifies the exact cosine distance on the
documents that survive.  ``:exact true`` skips probing: ``(within key r :over C)``.
Top-K mode is left for the store's native K-NN search.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from itertools import repeat

from ebr.errors import PlanError
from ebr.mappings.schema import DEFAULT_NPROBE, Schema, cluster_namespace
from ebr.planning.query_vectors import Vectors, query_vector
from ebr.planning.rules.pushdown import conjunction
from ebr.planning.rules.traversal import bottom_up
from ebr.quantization.coarse import CoarseQuantizer
from ebr.query.nodes import NN, And, Node, Or, Term, Within


def expand_nn(
    node: Node,
    vectors: Vectors,
    quantizers: Mapping[str, CoarseQuantizer],
    schema: Schema | None = None,
) -> Node:

    def rule(n: Node) -> Node:
        if type(n) is not NN or n.radius is None:
            return n
        if n.exact:
            return Within(n.key, n.radius, n.constraint, n.span)
        vector = query_vector(n.key, vectors, schema)
        quantizer = quantizers.get(n.key)
        if quantizer is None:
            raise PlanError(f"no coarse quantizer for key {n.key!r}: train or load one, or use "
                            ":exact true")
        if quantizer.dimension != vector.shape[0]:
            raise PlanError(f"the coarse quantizer for key {n.key!r} has dimension "
                            f"{quantizer.dimension}; the query embedding {vector.shape[0]}")
        nprobe = n.nprobe or _default_nprobe(schema, n.key)
        ids = quantizer.probe(vector, nprobe)
        ns = cluster_namespace(n.key)
        terms = tuple(map(_cluster_term, repeat(ns), ids))
        probes: Node = terms[0] if len(terms) == 1 else Or(terms)
        candidates = probes if n.constraint is None else conjunction((probes, n.constraint))
        return Within(n.key, n.radius, candidates, n.span)

    return bottom_up(node, rule)


def probe_list(key: str, candidates: Node | None) -> tuple[int, ...] | None:
    """The clusters a planned ``within`` probes, nearest first: the planner puts them first
    among its candidates, as one cluster term or an ``or`` of them (the inverse of
    :func:`expand_nn`, for the stores' explanations)."""
    split = probe_split(key, candidates)
    return None if split is None else split[0]


def probe_split(key: str, candidates: Node | None) -> tuple[tuple[int, ...],
                                                             tuple[Node, ...]] | None:
    """:func:`probe_list`, and the other operands of ``candidates`` (the constraint pushed
    down beside the probes, all of which a candidate must match)."""
    if candidates is None:
        return None
    ns = cluster_namespace(key)
    parts = candidates.operands if type(candidates) is And else (candidates,)
    for i, part in enumerate(parts):
        terms = part.operands if type(part) is Or else (part,)
        if all([type(t) is Term and t.namespace == ns for t in terms]):
            values = [t.value for t in terms]  # type: ignore[attr-defined]
            # Every value non-empty, and all of them ASCII digits: one check on the joined text
            # (the stores run this on every search, with nprobe terms).
            joined = "".join(values)
            if all(values) and joined.isascii() and joined.isdigit():
                return tuple(map(int, values)), parts[:i] + parts[i + 1:]
    return None


@functools.lru_cache(maxsize=1 << 16)
def _cluster_term(namespace: str, cluster: int) -> Term:
    """Terms are immutable, and the same probe terms recur in every query on a key."""
    return Term(namespace, str(cluster))


def _default_nprobe(schema: Schema | None, key: str) -> int:
    spec = schema.key(key) if schema else None
    return spec.quantizer.default_nprobe if spec else DEFAULT_NPROBE


__all__ = ["expand_nn", "probe_list", "probe_split"]
