"""A ``_search`` response's hits as the local store explains them (:class:`Hit`).

Everything a hit's explanation needs from the plan (each branch's place in tree order, what
it is, the clusters a radius clause probed) is worked out once per search
(:class:`HitExplainer`), so that mapping a hit is a few dictionary look-ups: a search can
return thousands of hits, and this runs on the client while the caller waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ebr.mappings.schema import Schema
from ebr.mappings.space import Space
from ebr.planning.rules.expand_nn import probe_list
from ebr.query.nodes import NN, Match, Node, Within, branch_order, named_branches, subtracted
from ebr.stores.opensearch.compiler import COSINE_FIELD
from ebr.stores.protocol import ClauseMatch, Fetch, Fetched, Hit, TextMatch

#: A namespace's terms in ``_source``: the object holding them and the field's name there.
TermPath = tuple[str, str]


class HitExplainer:
    """Maps the hits of one plan's search.  Each hit's ``matched_queries`` holds the score the
    server gave each branch it matched (``include_named_queries_score``): a vector clause's
    distance follows exactly from it (:class:`~ebr.mappings.space.Space`); a ``match``
    clause's score is its BM25, reported unless the clause is under a subtracted operand of
    ``difference`` (there the cluster scores with a shard's own statistics, not the whole
    index's).  ``_source`` carries the document's clusters (for a radius clause's probe rank)
    and its static rank.

    Hits matching the same branches share one layout (the branches in tree order, which of
    them are vector clauses and which scored text), worked out for the first of them: most
    hits of a search match the same few combinations."""

    __slots__ = ("_clauses", "_layouts", "_order", "_rank_field", "_texts")

    def __init__(self, plan: Node, rank_field: str) -> None:
        branches = named_branches(plan)
        unscored = subtracted(plan)
        self._rank_field = rank_field
        #: Each branch name's position in tree order (``q``, ``q.0``, ``q.0.1``, ``q.1``...).
        self._order = {name: i for i, name in
                       enumerate(sorted(branches, key=branch_order))}
        #: Each vector clause's explanation: (hit's source, its score) -> its ClauseMatch.
        self._clauses: dict[str, Callable[[dict[str, Any], float], ClauseMatch]] = {}
        #: Each scoring ``match`` clause's namespace.
        self._texts: dict[str, str] = {}
        for name, node in branches.items():
            if isinstance(node, Match) and id(node) not in unscored:
                self._texts[name] = node.namespace
            elif isinstance(node, Within):
                self._clauses[name] = _radius(name, node.key,
                                              probe_list(node.key, node.candidates))
            elif isinstance(node, NN):
                self._clauses[name] = _top_k(name, node.key)
        #: The matched names as the server listed them -> their layout.
        self._layouts: dict[tuple[str, ...], _Layout] = {}

    def hit(self, hit: dict[str, Any]) -> Hit:
        source = hit.get("_source") or {}
        scores: dict[str, float] = hit.get("matched_queries") or {}
        listed = tuple(scores)
        layout = self._layouts.get(listed)
        if layout is None:
            layout = self._layouts[listed] = self._layout(listed)
        matched, clauses, texts = layout
        return Hit(hit["_id"], float(hit["_score"] or 0.0),
                   float(source.get(self._rank_field, 0.0)), matched,
                   tuple([explain(source, scores[name]) for name, explain in clauses]),
                   tuple([TextMatch(name, namespace, float(scores[name]))
                          for name, namespace in texts]))

    def _layout(self, listed: tuple[str, ...]) -> _Layout:
        # Tree order; a name the plan does not give (none expected) sorts after, by itself.
        matched = tuple(sorted(listed, key=lambda n: (self._order.get(n, len(self._order)), n)))
        return (matched,
                tuple((name, self._clauses[name]) for name in matched if name in self._clauses),
                tuple((name, self._texts[name]) for name in matched if name in self._texts))


#: A set of matched branches: their names in tree order, then (name, explanation) of the
#: vector clauses and (name, namespace) of the scored ``match`` clauses among them.
_Layout = tuple[tuple[str, ...],
                tuple[tuple[str, Callable[[dict[str, Any], float], ClauseMatch]], ...],
                tuple[tuple[str, str], ...]]


def _radius(name: str, key: str, probes: tuple[int, ...] | None
            ) -> Callable[[dict[str, Any], float], ClauseMatch]:
    """A ``within`` clause: the distance from its script's score, and where the document's
    cluster stood among the clusters probed (None when it probed none: exact)."""
    probed = probes or ()
    rank_of = dict(zip(probed, range(len(probed)), strict=True))

    def explain(source: dict[str, Any], score: float) -> ClauseMatch:
        cluster = source.get("clusters", {}).get(key) if probes is not None else None
        return ClauseMatch(name, key, Space.script_score_to_distance(score),
                           None if cluster is None else rank_of.get(int(cluster)))
    return explain


def _top_k(name: str, key: str) -> Callable[[dict[str, Any], float], ClauseMatch]:
    return lambda source, score: ClauseMatch(name, key, Space.knn_score_to_distance(score))


def term_paths(schema: Schema, namespaces: Iterable[str]) -> dict[str, TermPath]:
    """Where each of ``namespaces`` keeps its terms in a document's ``_source``."""
    paths: dict[str, TermPath] = {}
    for ns in sorted(set(namespaces)):
        group, _, name = schema.term_field(ns).partition(".")
        paths[ns] = (group, name)
    return paths


def source_terms(source: Mapping[str, Any], paths: Mapping[str, TermPath]
                 ) -> dict[str, tuple[str, ...]]:
    """A document's terms in the namespaces of ``paths``, read from its ``_source``, sorted
    (a namespace it holds nothing in is absent), as :meth:`ebr.stores.protocol.Store.get_terms`
    gives them."""
    terms: dict[str, tuple[str, ...]] = {}
    for ns, (group, name) in paths.items():
        values = source.get(group, {}).get(name)
        if values:  # a list of terms, or a cluster's one value
            terms[ns] = tuple(sorted(values)) if isinstance(values, list) else (values,)
    return terms


def fetched(listed: Sequence[dict[str, Any]], fetch: Fetch, paths: Mapping[str, TermPath]
            ) -> Fetched:
    """What a search's hits carry for ``fetch``: each key's cosine from the hit's ``fields``
    (:func:`~ebr.stores.opensearch.compiler.compile_cosine_fields`), and its terms from its
    ``_source`` (filtered to ``paths``, the fetched namespaces' fields)."""
    cosines: dict[str, dict[str, float | None]] = {}
    for key in fetch.vectors:
        name = COSINE_FIELD + key
        column: dict[str, float | None] = {}
        for hit in listed:
            value = hit.get("fields", {}).get(name, (None,))[0]
            column[hit["_id"]] = None if value is None else float(value)
        cosines[key] = column
    terms = {hit["_id"]: source_terms(hit.get("_source") or {}, paths) for hit in listed}
    return Fetched(fetch.vectors, cosines, frozenset(paths), terms)
