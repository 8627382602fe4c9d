"""Query templates: an s-expression with placeholders a request fills in.

``$q`` stands for the request's text, ``$key`` for the embedding key of the request's model,
``$ctx.NAME`` for the value of ``NAME`` in the request's context::

    (and (term country:$ctx.country) (or (match name $q) (nn $key :radius 0.3 :nprobe 8)))

A placeholder is part of a symbol: the symbol holding it is rebuilt with the values put in and
written back as one atom (:func:`ebr.query.printer.atom_text`: bare when it reads back as
itself, else a quoted string with its quotes and backslashes escaped), so no text a user
types can close a form or add an operator.  A placeholder inside a quoted string is an error
(the value is quoted for you).  The template is read once, with the reader's errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ebr.errors import QuerySyntaxError
from ebr.query.printer import atom_text
from ebr.query.reader import DEFAULT_LIMITS, Form, FormList, Limits, String, Symbol, read_all
from ebr.query.span import Span

#: ``$q``, ``$key`` (not followed by more name characters) or ``$ctx.<name>``.
PLACEHOLDER = re.compile(r"\$(?:(q|key)(?![\w.-])|ctx\.([a-z0-9_-]+))")


@dataclass(frozen=True)
class Filling:
    """What a request puts into a template's placeholders."""

    text: str = ""
    key: str | None = None
    context: Mapping[str, str] | None = None


@dataclass(frozen=True)
class _Slot:
    start: int
    end: int
    symbol: str


class Template:
    """A query text with placeholders, read once; :meth:`render` fills it for one request."""

    def __init__(self, text: str, limits: Limits = DEFAULT_LIMITS) -> None:
        self.text = text
        slots = []
        for form in _atoms(read_all(text, limits)):
            if type(form) is String and PLACEHOLDER.search(form.value):
                raise QuerySyntaxError("a placeholder stands for a whole atom: write it unquoted "
                                       "(its value is quoted for you)", form.span, text)
            if type(form) is Symbol and PLACEHOLDER.search(form.name):
                slots.append(_Slot(form.start, form.end, form.name))
        self._slots = tuple(sorted(slots, key=lambda s: s.start))

    @property
    def uses_text(self) -> bool:
        return any(m.group(1) == "q" for s in self._slots for m in PLACEHOLDER.finditer(s.symbol))

    @property
    def uses_key(self) -> bool:
        return any(m.group(1) == "key" for s in self._slots for m in PLACEHOLDER.finditer(s.symbol))

    def render(self, filling: Filling) -> str:
        """The query text with every placeholder filled (the template itself when it has none)."""
        pieces, at = [], 0
        for slot in self._slots:
            pieces += [self.text[at:slot.start], atom_text(self._fill(slot, filling))]
            at = slot.end
        pieces.append(self.text[at:])
        return "".join(pieces)

    def _fill(self, slot: _Slot, filling: Filling) -> str:
        def value(m: re.Match[str]) -> str:
            if m.group(1) == "q":
                return filling.text
            if m.group(1) == "key":
                if filling.key is None:
                    raise self._error("$key needs the request's embedding key: give the searcher "
                                      "one embedder (or name the key)", slot)
                return filling.key
            name = m.group(2)
            found = (filling.context or {}).get(name)
            if found is None:
                raise self._error(f"$ctx.{name} needs {name!r} in the request's context", slot)
            return found

        return PLACEHOLDER.sub(value, slot.symbol)

    def _error(self, message: str, slot: _Slot) -> QuerySyntaxError:
        return QuerySyntaxError(message, Span(slot.start, slot.end), self.text)


def _atoms(forms: list[Form]) -> Iterator[Form]:
    stack = list(forms)
    while stack:
        form = stack.pop()
        if type(form) is FormList:
            stack.extend(form.items)
        else:
            yield form
