"""The quickstart's training queries: what searchers type for a city, and which city they mean.

A query is what a searcher types (the city's name, its name without accents, one of its
alternate names, a misspelling or the first letters of its name) with the searcher's country
as context: ``{"text": "valencia", "country": "ve"}``.  Which city a query means follows one
rule (:func:`intended`), the behaviour EBR's unified embedding learns from its logs (§2.3,
Table 2): among the cities of that name, the largest in the searcher's country, else the
largest anywhere.  So "valencia" typed in Spain means Valencia, ES, typed anywhere else
Valencia, VE; no term can say that, a query embedding with the searcher's country can.

Misspellings and partial names are drawn from a seeded generator, so the pairs are the same
in every run.  Alternate names listed in ``held_out`` are never used (the examples show the
alias terms finding one the model never saw).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from ebr.encoders.features.words import normalize_text
from ebr.encoders.training.pairs import Pair

City = Mapping[str, Any]

#: Latin-script alternate names of a city used as queries, at most (GeoNames lists dozens
#: for large cities, most of them transliterations).
ALIASES_PER_CITY = 3
MISSPELLINGS_PER_CITY = 2
#: Queries typed from a country without a city of the name, per city name.
FOREIGN_QUERIES = 2
#: The most populous cities, which get every kind of query; the others get their name and
#: one misspelling (searchers look for big cities more often; it also keeps training short).
WELL_KNOWN = 10_000
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"
_ACCENTS = re.compile("[\u0300-\u036f]")  # the combining diacritical marks
_NOT_LATIN = re.compile("[^\x00-\x7f\u0300-\u036f]")


def fold(text: str) -> str:
    """``text`` case-folded and without accents: what people type ("Córdoba" -> "cordoba")."""
    return _ACCENTS.sub("", unicodedata.normalize("NFKD", normalize_text(text)))


def is_latin(text: str) -> bool:
    """Whether ``text`` is written in Latin letters, accents allowed."""
    return _NOT_LATIN.search(unicodedata.normalize("NFKD", text)) is None


def misspell(text: str, rng: random.Random) -> str:
    """``text`` with one typing slip, never in its first letter: a letter dropped, doubled,
    swapped with the next, or replaced."""
    letters = list(text)
    spots = [i for i in range(1, len(letters)) if letters[i].isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    slip = rng.randrange(4)
    if slip == 0 and len(spots) > 2:
        del letters[i]
    elif slip == 1:
        letters.insert(i, letters[i])
    elif slip == 2 and i + 1 < len(letters) and letters[i + 1].isalpha() and letters[i + 1] != letters[i]:
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    else:
        letters[i] = rng.choice(_KEYBOARD.replace(letters[i], ""))
    return "".join(letters)


def partial(text: str) -> str:
    """The first letters of ``text`` someone types before picking the city: at least 4, about
    two thirds of it."""
    return text[:max(4, -(-2 * len(text) // 3))].rstrip()


def country_of(city: City) -> str:
    return str(city["countrycode"]).lower()


class Homonyms:
    """The cities by folded name, each group largest first, for :func:`intended`."""

    def __init__(self, cities: Sequence[City]) -> None:
        groups: dict[str, list[City]] = defaultdict(list)
        for city in cities:
            groups[fold(city["name"])].append(city)
        self.groups = {name: sorted(group, key=lambda c: (-int(c["population"]), int(c["geonameid"])))
                       for name, group in groups.items()}

    def intended(self, name: str, country: str) -> City:
        """The city a searcher in ``country`` means by the city name ``name``: the largest of
        the name in that country, else the largest of the name anywhere."""
        group = self.groups[fold(name)]
        return next((c for c in group if country_of(c) == country), group[0])


def training_pairs(cities: Sequence[City], *, seed: int = 0,
                   held_out: Collection[str] = ()) -> list[Pair]:
    """(query, city) pairs for every city of ``cities``, most populous first (see the module
    docstring); the document side is the city's id (``{"id": "2643743"}``)."""
    rng = random.Random(seed)
    homonyms = Homonyms(cities)
    countries = sorted({country_of(c) for c in cities})
    skip = {fold(a) for a in held_out}
    pairs: list[Pair] = []
    for n, city in enumerate(cities):
        country = country_of(city)
        target = homonyms.intended(city["name"], country)
        for text in _typed(city, rng, skip, n < WELL_KNOWN):
            pairs.append(Pair({"text": text, "country": country}, {"id": str(target["geonameid"])}))
        group = homonyms.groups[fold(city["name"])]
        if group[0] is city and n < WELL_KNOWN:  # queries from abroad, once per name
            here = {country_of(h) for h in group}
            abroad = [c for c in countries if c not in here]
            for searcher in rng.sample(abroad, min(FOREIGN_QUERIES, len(abroad))):
                text = rng.choice((fold(city["name"]), misspell(fold(city["name"]), rng)))
                pairs.append(Pair({"text": text, "country": searcher}, {"id": str(city["geonameid"])}))
    return pairs


def _typed(city: City, rng: random.Random, skip: set[str], well_known: bool) -> Iterator[str]:
    name = fold(city["name"])
    yield name
    yield misspell(name, rng)
    if not well_known:
        return
    aliases = sorted({fold(a) for a in city.get("alternatenames", ()) if is_latin(a)}
                     - {name} - skip)
    aliases = [a for a in aliases if len(a) >= 3]
    yield from rng.sample(aliases, min(ALIASES_PER_CITY, len(aliases)))
    for _ in range(MISSPELLINGS_PER_CITY - 1):
        yield misspell(name, rng)
    if len(name) > 5:
        yield partial(name)
