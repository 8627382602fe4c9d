"""Text analyzers: how a namespace turns free text into term values.

``match`` in the query language and ingest use the same analyzer, so a document indexed with
"John Smith" is found by ``(match text "john smith")``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_WORD = re.compile(r"\w+")


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


ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "keyword": keyword,
    "lowercase": lowercase,
    "standard": standard,
}
