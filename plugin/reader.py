"""The reader: query text -> forms, each carrying its span.

Grammar (one expression per query)::

    form    := list | atom
    list    := "(" form* ")"
    atom    := keyword | string | number | symbol
    keyword := ":" name                      e.g. :radius
    string  := '"' (char | '\\"' | '\\\\' | '\\n' | '\\t')* '"'
    number  := [+-]? digits ["." digits] [("e"|"E") [+-]? digits]
    symbol  := any run of characters but whitespace, parens, '"' and ';'
    comment := ";" to the end of the line (ignored)

The reader is iterative (an explicit stack), so nesting depth is bounded by
:class:`Limits` and can never reach Python's recursion limit.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ebr.errors import IncompleteInputError, QuerySyntaxError
from ebr.span import Span


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a query's shape; a query past them is refused before any deep work."""

    max_depth: int = 64
    max_forms: int = 4096


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Symbol:
    name: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str  # without the leading colon
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class String:
    value: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FormList:
    items: tuple[Form, ...]
    span: Span = field(compare=False, repr=False)


Atom = Symbol | Keyword | Number | String
Form = Atom | FormList

# Human names for what the reader expects, used in messages.
FORM_KINDS: dict[type, str] = {
    Symbol: "symbol",
    Keyword: "keyword",
    Number: "number",
    String: "string",
    FormList: "parenthesised expression",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>;[^\n]*)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<open_string>"(?:[^"\\]|\\.)*\\?\Z)
  | (?P<atom>[^\s()";]+)
    """,
    re.VERBOSE | re.DOTALL,
)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


class _Positions:
    """Offset -> (line, column); cheap for the common one-line query."""

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        self._starts = [0]
        if "\n" in text:
            self._starts += [m.end() for m in re.finditer("\n", text)]

    def span(self, start: int, end: int) -> Span:
        if len(self._starts) == 1:
            return Span(start, end, 1, start + 1)
        line = bisect.bisect_right(self._starts, start)
        return Span(start, end, line, start - self._starts[line - 1] + 1)


def read(text: str, limits: Limits = DEFAULT_LIMITS) -> Form:
    """Read exactly one form from ``text``.

    Raises :class:`IncompleteInputError` when the text ends inside a list or string (a
    console can ask for more), :class:`QuerySyntaxError` for anything else that is wrong.
    """
    forms = read_all(text, limits)
    if not forms:
        raise QuerySyntaxError(
            "empty query; expected an expression such as (term ns:value)",
            _Positions(text).span(len(text), len(text)),
            text,
        )
    if len(forms) > 1:
        raise QuerySyntaxError(
            "unexpected text after the end of the expression; a query is one expression",
            forms[1].span,
            text,
        )
    return forms[0]


def read_all(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Form]:
    """Read every top-level form of ``text``."""
    pos = _Positions(text)
    top: list[Form] = []
    stack: list[tuple[int, list[Form]]] = []  # (offset of "(", items so far)
    items = top
    count = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "ws" or kind == "comment":
            continue
        start, end = m.span()
        if kind == "lparen":
            if len(stack) >= limits.max_depth:
                raise QuerySyntaxError(
                    f"expression nested deeper than {limits.max_depth} levels",
                    pos.span(start, end),
                    text,
                )
            stack.append((start, items))
            items = []
            continue
        if kind == "rparen":
            if not stack:
                raise QuerySyntaxError(
                    "unexpected right parenthesis; no expression is open here",
                    pos.span(start, end),
                    text,
                )
            open_at, parent = stack.pop()
            form: Form = FormList(tuple(items), pos.span(open_at, end))
            items = parent
        elif kind == "string":
            form = String(_unescape(m.group(), start, pos, text), pos.span(start, end))
        elif kind == "open_string":
            raise IncompleteInputError(
                "unterminated string: expected a closing double quote before the end of input",
                pos.span(start, start + 1),
                text,
            )
        else:
            form = _atom(m.group(), pos.span(start, end), text)
        count += 1
        if count > limits.max_forms:
            raise QuerySyntaxError(
                f"expression larger than {limits.max_forms} forms",
                form.span,
                text,
            )
        items.append(form)
    if stack:
        open_at = stack[-1][0]
        raise IncompleteInputError(
            "unclosed left parenthesis: expected right parenthesis before the end of input",
            pos.span(open_at, open_at + 1),
            text,
        )
    return top


def _atom(token: str, span: Span, text: str) -> Atom:
    if token[0] == ":":
        return Keyword(token[1:], span)
    if _NUMBER.match(token):
        is_int = not any(c in token for c in ".eE")
        if is_int and len(token) > 18:  # int() refuses very long digit strings; no option needs them
            raise QuerySyntaxError("number too large", span, text)
        return Number(int(token) if is_int else float(token), span)
    return Symbol(token, span)


def _unescape(token: str, start: int, pos: _Positions, text: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body

    def replace(m: re.Match[str]) -> str:
        char = m.group(1)
        if char not in _ESCAPES:
            at = start + 1 + m.start()
            raise QuerySyntaxError(
                f"unknown escape \\{char} in string; use \\\", \\\\, \\n or \\t",
                pos.span(at, at + 2),
                text,
            )
        return _ESCAPES[char]

    return _ESCAPE.sub(replace, body)
