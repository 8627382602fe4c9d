"""BM25 as Lucene computes it, so that both stores score a ``match`` clause alike.

A document holds each of its terms once per namespace (term frequency 1), so its BM25 for a
``match`` clause is the sum, over the clause's terms ``t`` it holds, of

    idf(t) / (1 + k1 * (1 - b + b * dl / avgdl)),   idf(t) = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with ``N`` the documents holding any term of the namespace, ``n(t)`` those holding ``t``,
``dl`` the document's number of terms in the namespace and ``avgdl`` its mean over the ``N``
documents: Lucene's ``BM25Similarity`` with k1 = 1.2 and b = 0.75 (Lucene 8 and later, without
the old ``(k1 + 1)`` factor; OpenSearch 2.x still applies it, and the compiler divides it out).
Lucene stores ``dl`` in one byte (``SmallFloat.intToByte4``): exact below 24 terms, then kept
to four significant bits; :func:`stored_length` rounds the same way.  Measured on OpenSearch
2.19.1 and 3.5.0: the scores agree to float32 precision.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

K1 = 1.2
B = 0.75
#: Lengths below this are stored exactly by Lucene's norm encoding.
_EXACT_LENGTHS = 24


def idf(doc_freq: int, doc_count: int) -> float:
    """Lucene's BM25 idf of a term held by ``doc_freq`` of ``doc_count`` documents."""
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


def stored_length(lengths: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """Document lengths as Lucene's one-byte norm keeps them (``byte4ToInt(intToByte4(n))``):
    past 23, the excess over 24 keeps only its four leading bits."""
    n = np.asarray(lengths, np.int64)
    excess = np.maximum(n - _EXACT_LENGTHS, 0)
    bits = np.frexp(excess.astype(np.float64))[1]  # bit length of each excess (0 for 0)
    shift = np.maximum(bits - 4, 0)
    kept = (excess >> shift) << shift
    return np.where(n < _EXACT_LENGTHS, n, _EXACT_LENGTHS + kept).astype(np.float64)


def length_factor(lengths: npt.NDArray[np.integer], average: float) -> npt.NDArray[np.float64]:
    """Each document's share of a held term's idf: ``1 / (1 + k1 (1 - b + b dl / avgdl))``."""
    return 1.0 / (1.0 + K1 * (1.0 - B + B * stored_length(lengths) / average))
