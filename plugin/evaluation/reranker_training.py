"""A reranker's training groups from judged queries: each query's first-stage candidates,
retrieved through a query template exactly as serving retrieves them
(:meth:`ebr.request.Searcher.retrieve`), with the grades the judged file gives them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from ebr.errors import EbrError
from ebr.ranking.lambdarank import JudgedSearch
from ebr.request.searcher import Searcher


def judged_searches(searcher: Searcher, template: str, qrels: Mapping[str, Mapping[str, float]],
                    *, candidates: int, progress: Callable[[], object] | None = None,
                    failed: dict[str, str] | None = None) -> Iterator[JudgedSearch]:
    """One group per judged query; a query whose request fails (its text yields no terms,
    say) is left out and, given ``failed``, recorded there with the first line of its error."""
    for query, grades in qrels.items():
        try:
            found = searcher.retrieve(template, text=query, size=candidates)
        except EbrError as e:
            if failed is not None:
                failed[query] = str(e).splitlines()[0]
        else:
            yield JudgedSearch(found.request, found.hits, dict(grades))
        if progress is not None:
            progress()
