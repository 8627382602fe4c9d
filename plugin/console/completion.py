"""What the console completes and how it colours a query, read from ebr's own grammar: the
operators and their keywords from the parser's registry, namespaces and embedding keys from
the index's schema, term values from a bounded sample of the index's terms, and tokens from
the reader (so completion and highlighting never disagree with what the parser reads)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.lexers import Lexer

from ebr.query.parser import OPERATORS
from ebr.query.printer import atom_text
from ebr.query.reader import NUMBER, token_spans
from ebr.stores.protocol import Store

#: Term values of one namespace offered for completion (the most frequent in the index).
TERM_SAMPLE = 200


class Vocabulary:
    """The names a query on ``store`` can use.  Term values are read from the index on first
    use, per namespace, at most ``sample`` of them."""

    def __init__(self, store: Store, commands: Iterable[str] = (), sample: int = TERM_SAMPLE) -> None:
        schema = store.schema
        self.commands = sorted(commands)
        self.namespaces = [n.name for n in schema.namespaces]
        self.keys = [k.name for k in schema.keys]
        self.term_namespaces = self.namespaces + [k.cluster_namespace for k in schema.keys]
        self._store = store
        self._sample = sample
        self._values: dict[str, list[str]] = {}

    def values(self, namespace: str) -> list[str]:
        if namespace not in self._values:
            known = namespace in self.term_namespaces and self._sample > 0
            self._values[namespace] = self._store.sample_terms(namespace, self._sample) if known else []
        return self._values[namespace]


@dataclass
class _Form:
    """An open form while scanning: its operator and how many items it holds so far."""

    head: str | None = None
    items: int = 0


class QueryCompleter(Completer):
    """Completes the word before the cursor: a command, an operator after ``(``, a keyword
    of the enclosing operator, a namespace or ``ns:value`` in ``term``, a namespace in
    ``match``, an embedding key in ``nn``, ``NS=VALUE`` after ``:context``."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        word = "" if not before or before[-1].isspace() or before[-1] in "()" else \
            before.split()[-1].rsplit("(", 1)[-1]
        for text in self.candidates(before[: len(before) - len(word)], word):
            if text.startswith(word) and text != word:
                yield Completion(text, -len(word))

    def candidates(self, before: str, word: str) -> list[str]:
        """Every completion of ``word`` after the text ``before`` it (unfiltered)."""
        v = self.vocabulary
        if before.lstrip().startswith(":"):
            return self._command_arguments(before.split(), word)
        if not before.strip() and word.startswith(":"):
            return v.commands
        stack: list[_Form] = []
        for _, token in token_spans(before):
            if token == "(":
                if stack:
                    stack[-1].items += 1
                stack.append(_Form())
            elif token == ")":
                if stack:
                    stack.pop()
            elif stack and not token.startswith(";"):
                form = stack[-1]
                form.head = token if form.items == 0 else form.head
                form.items += 1
        if not stack:
            return []
        form = stack[-1]
        operator = OPERATORS.get(form.head or "")
        if form.items == 0:
            return sorted(OPERATORS)
        if operator is None:
            return []
        if word.startswith(":"):
            return [":" + k for k in operator.keywords]
        if form.items != 1:
            return []
        if operator.name == "term":
            namespace, colon, _ = word.lstrip('"').partition(":")
            if colon:
                return [atom_text(f"{namespace}:{value}") for value in v.values(namespace)]
            return [ns + ":" for ns in v.term_namespaces]
        if operator.name == "match":
            return v.namespaces
        if operator.name == "nn":
            return v.keys
        return []

    def _command_arguments(self, words: list[str], word: str) -> list[str]:
        v = self.vocabulary
        command = words[0]
        if command == ":context":
            namespace, equals, _ = word.partition("=")
            if equals:
                return [f"{namespace}={value}" for value in v.values(namespace) if " " not in value]
            return [ns + "=" for ns in v.namespaces]
        if command == ":vector":
            return [k + "=" for k in v.keys]
        if command == ":rerank":
            return ["on", "off"]
        return []


class QueryLexer(Lexer):
    """Colours the reader's tokens: parentheses, the operator after ``(``, keywords,
    strings, numbers, comments, and a command's name."""

    def lex_document(self, document: Document) -> Callable[[int], StyleAndTextTuples]:
        lines = document.lines

        def line(number: int) -> StyleAndTextTuples:
            return _styled(lines[number]) if number < len(lines) else []

        return line


def _styled(text: str) -> StyleAndTextTuples:
    if text.lstrip().startswith(":"):
        name, space, rest = text.partition(" ")
        return [("class:command", name), ("", space + rest)]
    out: StyleAndTextTuples = []
    end = 0
    previous = ""
    for start, token in token_spans(text):
        out.append(("", text[end:start]))
        out.append((_style(token, previous), token))
        end = start + len(token)
        previous = token
    out.append(("", text[end:]))
    return out


def _style(token: str, previous: str) -> str:
    first = token[0]
    if first in "()":
        return "class:paren"
    if first == ";":
        return "class:comment"
    if first == '"':
        return "class:string"
    if first == ":":
        return "class:keyword"
    if NUMBER.match(token):
        return "class:number"
    return "class:operator" if previous == "(" else ""
