"""The reranker's features: their names for an index, and a fingerprint of the list.

Per index (its :class:`~ebr.mappings.schema.Schema`), in this order:

- ``cosine:<key>`` per embedding key: cosine similarity between the request's and the
  document's embedding (0 when either is missing). EBR §5 and Que2Search §6.5 found it the
  strongest ranking feature;
- ``bm25:<ns>`` per namespace: the BM25 score of the hit's ``match`` clauses on the
  namespace, summed (0 when none matched it);
- ``via_terms``, ``via_nn``: 1 when the hit matched through a term branch, an ``nn`` branch
  (:mod:`ebr.ranking.branches`);
- ``query_terms_held``: the fraction of the request's analyzed terms the document holds;
- ``term_trigrams``: the Jaccard similarity of the character trigrams of the request's
  analyzed terms and of the document's terms in the same namespaces — a fuzzy overlap that
  still sees a misspelled or run-together word (Que2Search §3.1's trigram intuition);
- ``query_terms``, ``document_terms``: how many analyzed terms the request has, and the
  document holds in the namespaces the request matched (a trained scorer weighs overlap by
  them; constant within one request, so a linear scorer gives them no weight);
- ``context_match``: the fraction of the request's context entries (``ns -> value``) the
  document holds as terms (0 without context);
- ``static_rank``: the document's rank as ``sign(r) * log1p(|r|)`` (ranks such as populations
  span orders of magnitude; a linear weight needs a tame scale).

A trained scorer is only valid for the list it was trained on: the fingerprint covers the
names and :data:`DEFINITIONS_VERSION`, which changes whenever a feature's meaning does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ebr.errors import RerankerError
from ebr.mappings.schema import Schema

#: Bump when a feature's definition changes, so rerankers trained on the old one are refused.
DEFINITIONS_VERSION = 2

COSINE = "cosine"
BM25 = "bm25"
VIA_TERMS = "via_terms"
VIA_NN = "via_nn"
QUERY_TERMS_HELD = "query_terms_held"
TERM_TRIGRAMS = "term_trigrams"
QUERY_TERMS = "query_terms"
DOCUMENT_TERMS = "document_terms"
CONTEXT_MATCH = "context_match"
STATIC_RANK = "static_rank"
#: The features every index has, after its per-key and per-namespace ones.
COMMON = (VIA_TERMS, VIA_NN, QUERY_TERMS_HELD, TERM_TRIGRAMS, QUERY_TERMS, DOCUMENT_TERMS,
          CONTEXT_MATCH, STATIC_RANK)


def cosine_feature(key: str) -> str:
    return f"{COSINE}:{key}"


def bm25_feature(namespace: str) -> str:
    return f"{BM25}:{namespace}"


def family(name: str) -> str:
    """``cosine`` for ``cosine:<key>``, ``bm25`` for ``bm25:<ns>``, else the name itself."""
    return name.partition(":")[0]


@dataclass(frozen=True)
class FeatureSet:
    """An ordered list of feature names (the columns of a feature matrix)."""

    names: tuple[str, ...]
    columns: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", {n: i for i, n in enumerate(self.names)})

    @classmethod
    def for_schema(cls, schema: Schema) -> FeatureSet:
        return cls((*(cosine_feature(k.name) for k in schema.keys),
                    *(bm25_feature(n.name) for n in schema.namespaces), *COMMON))

    def with_keys(self, renamed: Mapping[str, str]) -> FeatureSet:
        """These features with embedding keys renamed (``old -> new``): what the features an
        index of another model computes stand for on this model's index (a reranker
        cross-fitted on held-out encoders' candidates, as ``bench/homedepot_eval.py`` does)."""
        return FeatureSet(tuple(
            cosine_feature(renamed.get(n.partition(":")[2], n.partition(":")[2]))
            if family(n) == COSINE else n for n in self.names))

    @property
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the definitions' version and the names, in order."""
        payload = json.dumps({"version": DEFINITIONS_VERSION, "names": list(self.names)})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def require(self, actual: FeatureSet, what: str) -> None:
        """Refuse to score ``actual`` features with a scorer made for these."""
        if actual.fingerprint == self.fingerprint:
            return
        missing = [n for n in self.names if n not in actual.columns]
        extra = [n for n in actual.names if n not in self.columns]
        diff = "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "",
            f"new {', '.join(extra)}" if extra else "") if part) or "the same names in another order"
        raise RerankerError(
            f"{what} was trained for features {self.fingerprint}, but this index gives "
            f"{actual.fingerprint} ({diff}): train it again on this index")
