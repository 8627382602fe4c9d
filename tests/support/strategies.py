"""Hypothesis strategies shared by the property and differential tests: random query trees
over a tiny vocabulary, and random corpora whose documents carry cluster terms from a random
coarse quantizer, exactly as ingest will assign them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from ebr.quantization.coarse import CentroidQuantizer
from ebr.query.nodes import NN, And, Difference, Match, Node, Or, Term
from ebr.stores.reference import ReferenceDocument

KEY = "m"
DIM = 3
NAMESPACES = ("a", "b")
VALUES = ("1", "2", "3")


@dataclass(frozen=True)
class World:
    docs: list[ReferenceDocument]
    vectors: dict[str, np.ndarray]
    quantizer: CentroidQuantizer

    @property
    def quantizers(self) -> dict[str, CentroidQuantizer]:
        return {KEY: self.quantizer}


# Coordinates from a small set so that equal distances (ties) happen often.
_coord = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0])
_vector = st.lists(_coord, min_size=DIM, max_size=DIM).filter(lambda v: any(v))


@st.composite
def worlds(draw: st.DrawFn, max_docs: int = 12) -> World:
    nlist = draw(st.integers(1, 4))
    centroids = np.array(draw(st.lists(_vector, min_size=nlist, max_size=nlist)), np.float32)
    quantizer = CentroidQuantizer(centroids)
    docs = []
    for i in range(draw(st.integers(0, max_docs))):
        terms = set(draw(st.sets(st.sampled_from([f"{n}:{v}" for n in NAMESPACES
                                                   for v in VALUES]), max_size=3)))
        embeddings = {}
        if draw(st.booleans()) or draw(st.booleans()):  # most documents have an embedding
            e = np.array(draw(_vector), np.float32)
            embeddings[KEY] = e
            unit = e / np.linalg.norm(e)
            terms.add(f"{KEY}.cluster:{int(quantizer.assign(unit[None, :])[0])}")
        docs.append(ReferenceDocument(f"d{i:02d}", frozenset(terms), embeddings))
    query = np.array(draw(_vector), np.float32)
    return World(docs, {KEY: query / np.linalg.norm(query)}, quantizer)


_terms = st.builds(Term, st.sampled_from(NAMESPACES), st.sampled_from(VALUES))
_radius = st.sampled_from([0.0, 0.05, 0.3, 0.5, 1.0, 1.5, 2.0])
_nn = st.one_of(
    st.builds(lambda r, p: NN(KEY, radius=r, nprobe=p), _radius, st.integers(1, 4)),
    st.builds(lambda r: NN(KEY, radius=r, exact=True), _radius),
    st.builds(lambda k, p: NN(KEY, k=k, nprobe=p), st.integers(1, 5),
              st.none() | st.integers(1, 4)),
)




@st.composite
def _matches(draw: st.DrawFn) -> Match:
    """Free text already analyzed: one to three of the values, at least some of them held,
    sometimes top-K."""
    values = tuple(draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True)))
    least = draw(st.integers(1, len(values)))
    k = draw(st.none() | st.integers(1, 5))
    return Match(draw(st.sampled_from(NAMESPACES)), values, least, k, text=" ".join(values))


def expressions(with_nn: bool = True, with_difference: bool = True,
                with_match: bool = True) -> st.SearchStrategy[Node]:
    leaves: st.SearchStrategy[Node] = _terms
    if with_nn:
        leaves = st.one_of(leaves, _nn)
    if with_match:
        leaves = st.one_of(leaves, _matches())

    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        ops = st.lists(children, min_size=1, max_size=3).map(tuple)
        options = [st.builds(And, ops), st.builds(Or, ops)]
        if with_difference:
            options.append(st.builds(lambda a, rest: Difference((a, *rest)), children,
                                     st.lists(children, min_size=1, max_size=2)))
        return st.one_of(options)

    return st.recursive(leaves, extend, max_leaves=10)
