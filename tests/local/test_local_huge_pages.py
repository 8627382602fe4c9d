"""Local writes turn NumPy's huge-page advice off (``ebr.stores.local.huge_pages``) while a
batch is prepared and written, and leave it as they found it: on after a write, after a
refused batch and after training; off if the caller had turned it off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_faults import SCHEMA, Watched, documents

from ebr.stores.documents import DimensionError
from ebr.stores.local import LocalStore, huge_pages
from ebr.stores.protocol import IndexDocument


def _switch() -> Callable[[bool], bool]:
    if huge_pages._SWITCH is None:
        pytest.skip("this NumPy has no huge-page advice switch")
    return huge_pages._SWITCH


def advised() -> bool:
    """Whether NumPy advises huge pages now (read by setting it, then put back)."""
    switch = _switch()
    now = switch(False)
    switch(now)
    return now



@pytest.fixture
def advice_on() -> Iterator[None]:
    switch = _switch()
    was = switch(True)
    yield
    switch(was)


@pytest.mark.usefixtures("advice_on")
def test_writes_turn_the_advice_off_and_restore_it(tmp_path: Path) -> None:
    seen: list[bool] = []
    with LocalStore.create(tmp_path / "i", SCHEMA) as store:
        store.add([*documents(40), IndexDocument("watched", Watched(seen, advised))])
        assert seen == [False] and advised()
        with pytest.raises(DimensionError):
            store.add([IndexDocument("bad", embeddings={"e": [1.0, 2.0]})])
        assert advised()
        store.train_quantizers(seed=1)
        assert advised()
        _switch()(False)  # the caller's choice stands
        store.add([IndexDocument("watched-again", Watched(seen, advised))])
        assert seen == [False, False] and not advised()
        _switch()(True)
        assert store.stats().documents == 42
