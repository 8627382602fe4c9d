"""A search leaves no reference cycles behind: all it allocates is freed by reference counting,
so Python's cyclic collector (triggered by allocations that outlive their statement) does not
run inside later searches, where it was their slowest percentile at 1M documents.  Checked
through the public path a user takes (parse, plan, search, the hits read and explained)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from local_faults import filled

from ebr import parse, plan

QUERIES = (
    "(nn e :radius 0.9 :nprobe 2)",
    "(and (term tag:t1) (nn e :radius 0.9 :nprobe 2))",
    "(and (term tag:t1) (nn e :k 3 :nprobe 2))",
    "(nn e :radius 0.7 :exact true)",
    "(or (term tag:t2) (nn e :radius 0.5 :nprobe 4) (match text \"red lamp\"))",
    "(difference (and (match text \"red chair\" :k 5) (term tag:t3)) (term tag:t4))",
)


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Off, so that only the test's own collection finds what the searches left."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    yield
    if was:
        gc.enable()


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize("text", QUERIES)
def test_a_search_leaves_no_cyclic_garbage(tmp_path: Path, text: str) -> None:
    with filled(tmp_path / "i") as store:
        vectors = {"e": np.random.default_rng(5).normal(size=8).astype(np.float32)}
        schema = store.schema
        for _ in range(2):  # the first also fills the kept parse and plan
            result = store.search(plan(parse(text, schema), vectors, store.quantizers, schema),
                                  vectors, size=50)
            assert result.ids
            assert all(hit.branches is not None for hit in result.hits)
        del result
        gc.collect()
        result = store.search(plan(parse(text, schema), vectors, store.quantizers, schema),
                              vectors, size=50)
        assert [hit.id for hit in result.hits] == result.ids
        del result
        assert gc.collect() == 0
