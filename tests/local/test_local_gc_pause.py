"""Local writes pause Python's cyclic collector (``ebr.stores.local.gc_pause``) while a batch
is prepared and written, and leave it as they found it: on after a write, after a refused
batch and after training; off if the caller had turned it off."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_faults import SCHEMA, Watched, documents

from ebr.stores.documents import DimensionError
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_writes_pause_the_collector_and_restore_it(tmp_path: Path) -> None:
    seen: list[bool] = []
    with LocalStore.create(tmp_path / "i", SCHEMA) as store:
        store.add([*documents(40), IndexDocument("watched", Watched(seen, gc.isenabled))])
        assert seen == [False] and gc.isenabled()
        with pytest.raises(DimensionError):
            store.add([IndexDocument("bad", embeddings={"e": [1.0, 2.0]})])
        assert gc.isenabled()
        store.train_quantizers(seed=1)
        assert gc.isenabled()
        gc.disable()  # the caller's choice stands
        store.add([IndexDocument("watched-again", Watched(seen, gc.isenabled))])
        assert seen == [False, False] and not gc.isenabled()
        gc.enable()
        assert store.stats().documents == 42
