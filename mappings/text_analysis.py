"""Text analyzers: how a namespace turns free text into term values.

``match`` in the query language and ingest use the same analyzer, so a document indexed with
"John Smith" is found by ``(match text "john smith")``.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable

import Stemmer  # PyStemmer: the Snowball stemmers

_WORD = re.compile(r"\w+")
#: English possessives ("drill's", "drills’") lose their "'s" before the words are split.
_POSSESSIVE = re.compile(r"['’]s?\b")
#: Lucene's English stop words (what OpenSearch's ``english`` analyzer drops).
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split())
_stemmers = threading.local()  # a Snowball stemmer is not safe to share between threads


def keyword(text: str) -> list[str]:
    """The whole text as one term, unchanged (ids, codes, exact labels)."""
    return [text] if text else []


def lowercase(text: str) -> list[str]:
    """The whole text as one case-folded, NFKC-normalised term (place names, categories)."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    return [folded] if folded else []


def standard(text: str) -> list[str]:
    """Unicode words, NFKC-normalised and case-folded, in order of first appearance."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return list(dict.fromkeys(_WORD.findall(folded)))


def english(text: str) -> list[str]:
    """:func:`standard` words without possessives and English stop words, each reduced to its
    Snowball (Porter2) stem: "Cordless Drills" and "cordless drill" give the same terms."""
    folded = _POSSESSIVE.sub("", unicodedata.normalize("NFKC", text).casefold())
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = Stemmer.Stemmer("english")
    words = [w for w in _WORD.findall(folded) if w not in ENGLISH_STOP_WORDS]
    return list(dict.fromkeys(stemmer.stemWords(words)))


#: The analyzers that split text into words: their namespaces hold free text (ingest reads a
#: field of that name as text, ``ebr eval``'s default paths match the query there); the
#: others keep a value whole.
WORD_ANALYZERS = frozenset({"standard", "english"})

ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "keyword": keyword,
    "lowercase": lowercase,
    "standard": standard,
    "english": english,
}
