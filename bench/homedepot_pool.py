"""The first stage of the Home Depot benchmark's reranked path, as one s-expression template.

Its branches: BM25's top ``k`` over the title namespace, the model's nn top ``k`` and,
optionally, all-MiniLM-L6-v2's nn top ``minilm_k`` (a second embedding key: it brings titles
the other two miss).  The evaluation reranks a wide pool and trains the reranker on a narrower
one of the same branches (:func:`training_pool`).  Kept apart from ``homedepot_eval.py`` so that
``rerank_latency.py`` times the same template without that script's imports.
"""

from __future__ import annotations

#: The text namespace the titles are analyzed into.
TEXT = "title"
#: The second embedding key: all-MiniLM-L6-v2's title vectors.
MINILM_KEY = "all-minilm-l6-v2"


def pool_template(k: int, nprobe: int | None = None, minilm_k: int = 0) -> str:
    """BM25's top ``k`` or the model's nn top ``k`` (``nprobe`` clusters probed; the key's own
    default when None) or, with ``minilm_k``, MiniLM's nn top ``minilm_k``
    (:data:`MINILM_KEY`)."""
    probe = "" if nprobe is None else f" :nprobe {nprobe}"
    minilm = f" (nn {MINILM_KEY} :k {minilm_k}{probe})" if minilm_k else ""
    return f"(or (match {TEXT} $q :minimum-should-match 1 :k {k}) (nn $key :k {k}{probe}){minilm})"


def pool_size(k: int, minilm_k: int = 0) -> int:
    """Every branch's hits of :func:`pool_template`, before the titles several bring merge:
    what a reranker reorders to see the whole pool (fewer would cut it by first-stage score,
    in which BM25 outweighs any cosine)."""
    return 2 * k + minilm_k


def training_pool(k: int, nprobe: int | None, minilm: bool) -> tuple[str, int]:
    """The pool a reranker trains on, every branch's top ``k`` (MiniLM's too when ``minilm``,
    as in the reranked path), and its size: all of its candidates train."""
    minilm_k = k if minilm else 0
    return pool_template(k, nprobe, minilm_k), pool_size(k, minilm_k)
