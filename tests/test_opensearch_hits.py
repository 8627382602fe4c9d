"""``HitExplainer``: a ``_search`` hit explained as the local store explains it, whatever order
the cluster lists the matched branches in (no cluster needed: hits as the cluster sends them)."""

from __future__ import annotations

import numpy as np
import pytest

from ebr import parse, plan
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.quantization.coarse import CentroidQuantizer
from ebr.stores.opensearch.hits import HitExplainer
from ebr.stores.protocol import ClauseMatch, TextMatch

SCHEMA = Schema.create("h", (Namespace("a", "keyword"), Namespace("t")),
                       (EmbeddingKey("m", 2, CoarseQuantizerSpec(nlist=4)),))
QUANTIZERS = {"m": CentroidQuantizer([[1, 0], [0, 1], [-1, 0], [0, -1]])}
VECTOR = {"m": np.array([1.0, 0.1], np.float32)}
QUERY = "(or (and (term a:1) (nn m :radius 0.5 :nprobe 2)) (match t \"red shoe\"))"


@pytest.fixture()
def explainer() -> HitExplainer:
    return HitExplainer(plan(parse(QUERY, SCHEMA), VECTOR, QUANTIZERS, SCHEMA), "rank")


def hit(doc_id: str, scores: dict[str, float], cluster: str = "1") -> dict[str, object]:
    return {"_id": doc_id, "_score": 2.5, "matched_queries": scores,
            "_source": {"rank": 1.0, "clusters": {"m": cluster}}}


def test_branches_come_in_tree_order_whatever_order_they_are_listed_in(
        explainer: HitExplainer) -> None:
    scores = {"q.1": 0.7, "q": 2.5, "q.0.1": 1.8, "q.0.0": 0.0, "q.0": 1.8}
    first = explainer.hit(hit("x", scores))
    again = explainer.hit(hit("y", dict(reversed(scores.items())), cluster="0"))
    assert first.branches == again.branches == ("q", "q.0", "q.0.0", "q.0.1", "q.1")
    # the radius clause's distance from its score; the probe rank of the document's cluster
    # among those probed (nearest first: 0, then 1)
    assert first.clauses == (ClauseMatch("q.0.1", "m", pytest.approx(0.2), 1),)
    assert again.clauses == (ClauseMatch("q.0.1", "m", pytest.approx(0.2), 0),)
    assert first.texts == again.texts == (TextMatch("q.1", "t", 0.7),)
    assert (first.id, first.score, first.rank) == ("x", 2.5, 1.0)


def test_each_set_of_branches_is_explained_for_itself(explainer: HitExplainer) -> None:
    text_only = explainer.hit(hit("x", {"q.1": 0.4, "q": 0.4}))
    vector_only = explainer.hit(hit("y", {"q.0": 1.9, "q.0.0": 0.0, "q.0.1": 1.9, "q": 1.9}))
    assert (text_only.branches, text_only.clauses) == (("q", "q.1"), ())
    assert text_only.texts == (TextMatch("q.1", "t", 0.4),)
    assert vector_only.branches == ("q", "q.0", "q.0.0", "q.0.1") and vector_only.texts == ()
    assert vector_only.clauses[0].distance == pytest.approx(0.1)
    # a name the plan does not give sorts after the plan's own, and explains nothing
    odd = explainer.hit(hit("z", {"zz": 1.0, "q.1": 0.3, "q": 0.3}))
    assert odd.branches == ("q", "q.1", "zz")
