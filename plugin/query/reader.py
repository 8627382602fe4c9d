"""The reader: query text -> forms, each carrying its span.

Grammar (one expression per query)::

    form    := list | atom
    list    := "(" form* ")"
    atom    := keyword | string | number | symbol
    keyword := ":" name                      e.g. :radius
    string  := '"' (char | '\\"' | '\\\\' | '\\n' | '\\t')* '"'
    number  := [+-]? (digits ["." [digits]] | "." digits) [("e"|"E") [+-]? digits]
    symbol  := any run of characters but whitespace, parens, '"' and ';'
    comment := ";" to the end of the line (ignored)

The reader is iterative (an explicit stack), so nesting depth is bounded by
:class:`Limits` and can never reach Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ebr.errors import IncompleteInputError, QuerySyntaxError
from ebr.query.span import Span

#: The parser, the rules and the printer recurse about three frames per level; past this
#: depth Python's default recursion limit would be at risk.
MAX_DEPTH_CAP = 200


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on a query's shape; a query past them is refused before any deep work.
    ``max_plan_nodes`` bounds the plan after push-down and nn expansion, which copy
    constraints and add probe terms."""

    max_depth: int = 64
    max_forms: int = 4096
    max_plan_nodes: int = 65536

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH_CAP:
            raise ValueError(f"max_depth must be between 1 and {MAX_DEPTH_CAP}")
        if self.max_forms < 1 or self.max_plan_nodes < 1:
            raise ValueError("max_forms and max_plan_nodes must be positive")


DEFAULT_LIMITS = Limits()


# Forms are NamedTuples rather than frozen dataclasses: a query creates one per token and
# tuple construction costs about half as much.  Forms are never compared; nodes (the AST)
# are the frozen dataclasses.  The reader builds them with ``_new(Kind, (fields...))``,
# which skips the NamedTuple's Python-level ``__new__`` (half the cost again).


class Symbol(NamedTuple):
    name: str
    start: int
    end: int

    @property
    def span(self) -> Span:
        return _new(Span, (self.start, self.end))


class Keyword(NamedTuple):
    name: str  # without the leading colon
    start: int
    end: int

    @property
    def span(self) -> Span:
        return _new(Span, (self.start, self.end))


class Number(NamedTuple):
    value: int | float
    start: int
    end: int

    @property
    def span(self) -> Span:
        return _new(Span, (self.start, self.end))


class String(NamedTuple):
    value: str
    start: int
    end: int

    @property
    def span(self) -> Span:
        return _new(Span, (self.start, self.end))


class FormList(NamedTuple):
    items: tuple[Form, ...]
    start: int
    end: int

    @property
    def span(self) -> Span:
        return _new(Span, (self.start, self.end))


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

# A token.  Every character but whitespace starts some token (a comment is a token too), so
# only whitespace lies between consecutive matches.
_TOKEN = re.compile(
    r"""
      [()]
    | "(?:[^"\\]|\\.)*"            # a string
    | "(?:[^"\\]|\\.)*\\?\Z       # an unterminated string
    | ;[^\n]*                    # a comment
    | [^\s()";]+                # an atom
    """,
    re.VERBOSE | re.DOTALL,
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"\Z', re.DOTALL)
#: What reads as a number (ASCII digits only: "٣" is a symbol, not 3).
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NUMBER_START = frozenset("0123456789+-.")
#: First characters of the tokens other than parentheses and plain symbols.
_OTHER_ATOM_STARTS = frozenset(':";') | _NUMBER_START
_new = tuple.__new__
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def read(text: str, limits: Limits = DEFAULT_LIMITS) -> Form:
    """Read exactly one form from ``text``.

    Raises :class:`IncompleteInputError` when the text ends inside a list or string (a
    console can ask for more), :class:`QuerySyntaxError` for anything else that is wrong.
    """
    forms = read_all(text, limits)
    if not forms:
        raise QuerySyntaxError(
            "empty query; expected an expression such as (term ns:value)",
            Span(len(text), len(text)),
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
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            # lone surrogates (bytes that were not UTF-8, under 'surrogateescape'): ingest
            # refuses them in terms, so a query must not match on them either
            raise QuerySyntaxError(f"not valid UTF-8 text ({e.reason})", Span(e.start, e.end),
                                   text) from None
    top: list[Form] = []
    stack: list[tuple[int, list[Form]]] = []  # (offset of "(", items so far)
    items = top
    count = 0
    max_depth, max_forms = limits.max_depth, limits.max_forms
    end = 0
    for token in _tokens(text):
        start = end
        while text[start].isspace():  # only whitespace lies between tokens
            start += 1
        end = start + len(token)
        first = token[0]
        if first == "(":
            if len(stack) >= max_depth:
                raise QuerySyntaxError(
                    f"expression nested deeper than {max_depth} levels",
                    Span(start, end),
                    text,
                )
            stack.append((start, items))
            items = []
            continue
        if first == ")":
            if not stack:
                raise QuerySyntaxError(
                    "unexpected right parenthesis; no expression is open here",
                    Span(start, end),
                    text,
                )
            open_at, parent = stack.pop()
            form: Form = _new(FormList, (tuple(items), open_at, end))
            items = parent
        elif first in _OTHER_ATOM_STARTS:
            if first == ";":
                continue  # a comment
            form = _atom(token, start, end, text)
        else:
            form = _new(Symbol, (token, start, end))
        count += 1
        if count > max_forms:
            raise QuerySyntaxError(
                f"expression larger than {max_forms} forms",
                form.span,
                text,
            )
        items.append(form)
    if stack:
        open_at = stack[-1][0]
        raise IncompleteInputError(
            "unclosed left parenthesis: expected right parenthesis before the end of input",
            Span(open_at, open_at + 1),
            text,
        )
    return top


def token_spans(text: str) -> list[tuple[int, str]]:
    """Each token of ``text`` with its offset, comments and an unterminated string included,
    never raising (for a console's highlighting and completion of text still being typed)."""
    return [(m.start(), m.group()) for m in _TOKEN.finditer(text)]


def _tokens(text: str) -> list[str]:
    """The tokens of ``text`` in order, comments included.

    Most queries hold no string and no comment; their tokens are the parentheses and the
    runs of other non-whitespace characters, which ``str.split`` finds several times faster
    than the regular expression (same whitespace: both use ``str.isspace``)."""
    if '"' in text or ";" in text:
        return _TOKEN.findall(text)
    return text.replace("(", " ( ").replace(")", " ) ").split()


def _atom(token: str, start: int, end: int, text: str) -> Atom:
    """A string, keyword, number, or a symbol that starts like a number (``-x``)."""
    first = token[0]
    if first == '"':
        if not _STRING.match(token):
            raise IncompleteInputError(
                "unterminated string: expected a closing double quote before the end of input",
                Span(start, start + 1),
                text,
            )
        return _new(String, (_unescape(token, start, text), start, end))
    if first == ":":
        if len(token) == 1:
            raise QuerySyntaxError("a keyword needs a name after ':' (e.g. :radius)",
                                   Span(start, end), text)
        return _new(Keyword, (token[1:], start, end))
    if first in _NUMBER_START and NUMBER.match(token):
        is_int = not any(c in token for c in ".eE")
        if is_int and len(token.lstrip("+-0")) > 18:  # int() refuses very long digit strings
            raise QuerySyntaxError("number too large", Span(start, end), text)
        return _new(Number, (int(token) if is_int else float(token), start, end))
    return _new(Symbol, (token, start, end))


def _unescape(token: str, start: int, text: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body

    def replace(m: re.Match[str]) -> str:
        char = m.group(1)
        if char not in _ESCAPES:
            at = start + 1 + m.start()
            raise QuerySyntaxError(
                f"unknown escape \\{char} in string; use \\\", \\\\, \\n or \\t",
                Span(at, at + 2),
                text,
            )
        return _ESCAPES[char]

    return _ESCAPE.sub(replace, body)
