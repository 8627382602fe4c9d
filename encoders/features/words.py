"""Text normalisation and word splitting shared by every text featurizer.

Queries and documents must be cut into words the same way at training and at serving time,
so there is exactly one definition, here.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+")


def normalize_text(text: str) -> str:
    """NFKC-normalise and case-fold: "Ｄｒｉｌｌ" and "DRILL" featurize like "drill"."""
    return unicodedata.normalize("NFKC", text).casefold()


def split_words(text: str) -> list[str]:
    """The normalised words of ``text``: runs of letters, digits and ``_``; punctuation splits."""
    return _WORD.findall(normalize_text(text))
