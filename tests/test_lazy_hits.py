"""LazyHits: ids at once, Hit objects built once and only when read, a tuple otherwise."""

from __future__ import annotations

import pickle

from ebr.stores.protocol import Hit, LazyHits, SearchResult, SearchStats


def test_lazy_hits_build_once_when_read_and_equal_their_tuple() -> None:
    built = []
    hits = (Hit("a", 2.0, 0.0, ("q",)), Hit("b", 1.0, 0.0, ("q",)))

    def build() -> tuple[Hit, ...]:
        built.append(1)
        return hits

    lazy = LazyHits(["a", "b"], build)
    result = SearchResult(lazy, SearchStats(2, 0, 0))
    assert result.ids == ["a", "b"] and len(lazy) == 2 and not built  # nothing built yet
    assert lazy[0] == hits[0] and lazy[1:] == hits[1:] and list(lazy) == list(hits)
    assert lazy == hits and hits == lazy and hash(lazy) == hash(hits)
    assert lazy != hits[:1] and lazy != list(hits)  # as a tuple compares
    assert pickle.loads(pickle.dumps(lazy)) == hits and repr(lazy) == repr(hits)
    assert built == [1]
