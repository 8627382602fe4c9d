"""The console's session: request settings kept between queries, the last query's response,
and the ``:commands`` that show it.  No terminal here (:mod:`ebr.console.terminal` is the
prompt), so every behaviour is testable by calling :meth:`Session.handle`.

A line is a query (run through the :class:`~ebr.request.Searcher` with the settings) or a
command starting with ``:``.  User errors come back as text (the query's caret included),
never as an exception.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import click
import numpy as np
import numpy.typing as npt

from ebr.cli.inputs import MAX_SIZE, key_value, load_array
from ebr.errors import EbrError, IncompleteInputError, QuerySyntaxError
from ebr.explanation import explain
from ebr.query.printer import pretty
from ebr.query.reader import Form, String, read_all
from ebr.request.searcher import PHASES, Searcher, SearchResponse
from ebr.stores.opensearch.versions import MINIMUM, ServerVersion

F32 = npt.NDArray[np.float32]


class ConsoleError(EbrError):
    """A console command used wrongly."""


@dataclass
class Settings:
    """What every query of the session is sent with (see :meth:`Searcher.search`)."""

    text: str = ""
    vectors: dict[str, F32] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    size: int = 10
    page: int = 1
    rerank: bool = True


@dataclass(frozen=True)
class Reply:
    """What the console prints for one input, and whether the session ends."""

    text: str
    quit: bool = False


HELP = """\
A query, e.g. (and (term country:fr) (nn name-trigrams :k 5)), runs with the settings below;
it may span lines while parentheses are open. $q, $key and $ctx.NAME are filled from them.
Settings (kept between queries; :settings shows them):
  :text "free text"        the request text ($q), embedded for the query's nn keys
  :text                    clear it
  :vector KEY=x,y,..|F.npy a query embedding for KEY (instead of embedding the text)
  :vector KEY              forget KEY's given embedding
  :context NS=VALUE ...    the searcher's context ($ctx.NS); no argument clears it
  :size N                  hits per page
  :page N                  the page shown (from 1)
  :rerank on|off           the searcher's reranker (off: first-stage order)
For the last query:
  :plan                    the plan the store executed
  :request                 the compiled OpenSearch request
  :explain                 each hit: branches, distances, BM25, reranker features, score
  :timings                 the time of each phase
  :help                    this text
  :quit                    leave (or Ctrl-D); Ctrl-C cancels the input being typed"""


@dataclass(frozen=True)
class _Last:
    expression: str
    response: SearchResponse


class Session:
    """One console session on ``searcher``'s store.  ``:request`` compiles for the
    OpenSearch release ``version`` and index ``index`` (default: the schema's index name)."""

    def __init__(self, searcher: Searcher, *, version: ServerVersion = MINIMUM,
                 index: str | None = None) -> None:
        self.searcher = searcher
        self.version = version
        self.index = index or searcher.store.schema.index
        self.settings = Settings()
        self.last: _Last | None = None
        self._commands: dict[str, Callable[[str], str]] = {
            "text": self._text, "vector": self._vector, "context": self._context,
            "size": self._size, "page": self._page, "rerank": self._rerank,
            "settings": lambda _: self.show_settings(), "plan": self._plan,
            "request": self._request, "explain": self._explain, "timings": self._timings,
            "help": lambda _: HELP,
        }

    @property
    def commands(self) -> list[str]:
        """Every command's name with its colon (for completion)."""
        return sorted(":" + c for c in [*self._commands, "quit"])

    @staticmethod
    def is_complete(text: str) -> bool:
        """False while ``text`` is a query with an open parenthesis or string (the console
        then asks for another line); a command or a wrong query is complete (it runs, or its
        error shows)."""
        if text.lstrip().startswith(":") or not text.strip():
            return True
        try:
            read_all(text)
        except IncompleteInputError:
            return False
        except QuerySyntaxError:
            pass
        return True

    def handle(self, line: str) -> Reply:
        """Run one input: a query or a command."""
        line = line.strip()
        if not line:
            return Reply("")
        try:
            if line.startswith(":"):
                name, _, args = line[1:].partition(" ")
                if name == "quit":
                    return Reply("", quit=True)
                command = self._commands.get(name)
                if command is None:
                    raise ConsoleError(f"unknown command :{name}; :help lists them")
                return Reply(command(args.strip()))
            return Reply(self.run(line))
        except EbrError as e:
            return Reply(f"Error: {e}")
        except click.ClickException as e:  # a bad value read through ebr.cli.inputs
            return Reply(f"Error: {e.format_message()}")

    def run(self, expression: str) -> str:
        """Search for ``expression`` with the settings; the hits, one per line."""
        s = self.settings
        response = self.searcher.search(expression, text=s.text, context=s.context, size=s.size,
                                        page=s.page, vectors=s.vectors, rerank=s.rerank)
        self.last = _Last(expression, response)
        docs = self.searcher.store.get_documents(response.ids)
        lines = []
        for n, (ranked, doc) in enumerate(zip(response.hits, docs, strict=True),
                                          (s.page - 1) * s.size + 1):
            source = json.dumps(dict(doc.source), ensure_ascii=False) if doc and doc.source else ""
            lines.append(f"{n}. {ranked.hit.id}  score {ranked.score:.4f}  "
                         f"via {' '.join(ranked.hit.branches)}  {source}".rstrip())
        total = sum(response.timings.values()) * 1000
        lines.append(f"{len(response.hits)} hits of {response.total} matched "
                     f"(page {s.page}, size {s.size}); {total:.2f} ms")
        return "\n".join(lines)

    # -- settings -----------------------------------------------------------------------------

    def show_settings(self) -> str:
        s = self.settings
        vectors = ", ".join(f"{k} ({len(v)}-d)" for k, v in sorted(s.vectors.items())) or "none"
        context = " ".join(f"{k}={v}" for k, v in sorted(s.context.items())) or "none"
        reranker = "on" if s.rerank else "off"
        if self.searcher.reranker is None:
            reranker += " (the searcher has no reranker: first-stage order)"
        return "\n".join([f"text     {json.dumps(s.text, ensure_ascii=False)}",
                          f"vectors  {vectors}", f"context  {context}", f"size     {s.size}",
                          f"page     {s.page}", f"rerank   {reranker}"])

    def _text(self, args: str) -> str:
        if not args:
            self.settings.text = ""
            return "text cleared"
        forms = _read_args(args, ':text "free text"')
        self.settings.text = (forms[0].value if len(forms) == 1 and isinstance(forms[0], String)
                              else args)
        return f"text {json.dumps(self.settings.text, ensure_ascii=False)}"

    def _vector(self, args: str) -> str:
        if not args:
            raise ConsoleError("usage: :vector KEY=x,y,.. | KEY=file.npy | KEY (to forget it)")
        if "=" not in args:
            self.settings.vectors.pop(args, None)
            return f"{args}: embedded from the text"
        key, value = key_value(args, ":vector")
        if self.searcher.store.schema.key(key) is None:
            names = ", ".join(k.name for k in self.searcher.store.schema.keys) or "none"
            raise ConsoleError(f"the index has no embedding key {key!r} (it has: {names})")
        self.settings.vectors[key] = load_array(value, ":vector")
        return f"{key}: a given {len(self.settings.vectors[key])}-d vector"

    def _context(self, args: str) -> str:
        try:
            pairs = [key_value(p, ":context") for p in shlex.split(args)]
        except ValueError as e:  # shlex: an unclosed quote
            raise ConsoleError(f":context: {e}") from None
        self.settings.context = dict(pairs)
        return "context " + (" ".join(f"{k}={v}" for k, v in pairs) or "cleared")

    def _size(self, args: str) -> str:
        self.settings.size = _integer(args, ":size", 0, MAX_SIZE)
        return f"size {self.settings.size}"

    def _page(self, args: str) -> str:
        self.settings.page = _integer(args, ":page", 1, MAX_SIZE)
        return f"page {self.settings.page}"

    def _rerank(self, args: str) -> str:
        if args not in ("on", "off"):
            raise ConsoleError(f"usage: :rerank on|off; got {args!r}")
        self.settings.rerank = args == "on"
        if self.settings.rerank and self.searcher.reranker is None:
            return "rerank on (the searcher has no reranker: hits keep their first-stage order)"
        return f"rerank {args}"

    # -- the last query -----------------------------------------------------------------------

    def _last(self) -> _Last:
        if self.last is None:
            raise ConsoleError("no query yet: type one, e.g. (term ns:value)")
        return self.last

    def _plan(self, args: str) -> str:
        return pretty(self._last().response.plan)

    def _request(self, args: str) -> str:
        last = self._last()
        s = self.settings
        # The embeddings the query used: the first stage again (embeddings come from the cache).
        found = self.searcher.retrieve(last.expression, text=s.text, context=s.context, size=0,
                                       vectors=s.vectors, for_reranker=False)
        store = self.searcher.store
        explained = explain(found.query, store.schema, found.request.vectors, store.quantizers,
                            size=s.page * s.size, version=self.version)
        return (f"POST /{self.index}/_search\n"
                + json.dumps(explained.compiled.body, indent=2, ensure_ascii=False))

    def _explain(self, args: str) -> str:
        return "\n".join(self._last().response.explain())

    def _timings(self, args: str) -> str:
        response = self._last().response
        lines = [f"{p:<10}{response.timings[p] * 1000:9.3f} ms" for p in PHASES]
        lines += [f"  store {k:<8}{v * 1000:7.3f} ms" for k, v in response.stats.seconds.items()]
        lines.append(f"{'total':<10}{sum(response.timings.values()) * 1000:9.3f} ms")
        return "\n".join(lines)


def _read_args(args: str, usage: str) -> list[Form]:
    try:
        return list(read_all(args))
    except QuerySyntaxError as e:
        raise ConsoleError(f"usage: {usage}\n{e}") from None


def _integer(args: str, command: str, low: int, high: int) -> int:
    try:
        value = int(args)
    except ValueError:
        raise ConsoleError(f"usage: {command} N; got {args!r}") from None
    if not low <= value <= high:
        raise ConsoleError(f"{command} must be between {low} and {high}; got {value}")
    return value

