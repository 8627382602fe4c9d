"""The console's session logic without a terminal: settings kept between queries, the
commands on the last query, errors as text, completion and highlighting."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from ebr.console.completion import QueryCompleter, QueryLexer, Vocabulary
from ebr.console.session import HELP, Session
from ebr.ranking.protocol import RankedHit, RerankRequest
from ebr.request.embedders import embedders_for
from ebr.request.searcher import Searcher
from ebr.stores.local import LocalStore
from ebr.stores.protocol import Hit, Store
from support.console_index import build

HYBRID = '(and (term country:fr) (or (match name "paris") (nn m-trigrams :radius 0.5 :nprobe 2)))'


class ReverseReranker:
    """Reverses the first-stage order, so a test sees whether the reranker ran."""

    def rerank(self, request: RerankRequest, hits: tuple[Hit, ...], store: Store) -> list[RankedHit]:
        return [RankedHit(h, float(n), {"position": float(n)}, {"position": float(n)})
                for n, h in enumerate(hits)][::-1]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    with LocalStore.open(build(tmp_path_factory.mktemp("console") / "idx"), readonly=True) as s:
        yield s


@pytest.fixture
def session(store: LocalStore) -> Session:
    return Session(Searcher(store, embedders_for(store.schema, {}), reranker=ReverseReranker()))


def ids(reply: str) -> list[str]:
    return [line.split()[1] for line in reply.splitlines() if line[0].isdigit() and ". " in line]


def test_a_query_lists_its_hits_with_their_branches_and_sources(session: Session) -> None:
    assert session.handle(":vector m-trigrams=1,0.2").text == "m-trigrams: a given 2-d vector"
    assert session.handle(":rerank off").text == "rerank off"
    reply = session.handle(HYBRID).text.splitlines()
    # the within clause (2 - distance) plus the match clause's BM25
    assert reply[0].startswith("1. paris  score 2.4264  via q q.0 q.1 q.1.0 q.1.1")
    assert reply[0].endswith('{"name": "Paris"}')
    assert reply[1].startswith("2. lyon ") and "q.1.0" not in reply[1]
    assert reply[2].startswith("2 hits of 2 matched (page 1, size 10); ")


def test_settings_persist_between_queries(session: Session) -> None:
    session.handle(':text "paris"')
    session.handle(":context country=fr")
    assert ids(session.handle("(or (match name $q) (term country:$ctx.country))").text) == ["lyon", "paris"]
    session.handle(":rerank off")
    assert ids(session.handle("(or (match name $q) (term country:$ctx.country))").text) == ["paris", "lyon"]
    session.handle(":size 1")
    session.handle(":page 2")
    reply = session.handle("(term country:$ctx.country)").text
    assert ids(reply) == ["lyon"] and reply.startswith("2. lyon") and "(page 2, size 1)" in reply
    assert session.handle(":settings").text.splitlines() == [
        'text     "paris"', "vectors  none", "context  country=fr", "size     1", "page     2",
        "rerank   off"]
    session.handle(":context")
    session.handle(":text")
    assert session.settings.context == {} and session.settings.text == ""


def test_text_is_embedded_by_the_searcher_and_vectors_replace_it(session: Session) -> None:
    # The index's key m-trigrams is 2-d: the trigram projection embeds the text for it.
    session.handle(':text "rome"')
    session.handle(":rerank off")
    assert ids(session.handle("(nn $key :k 3)").text) != []
    session.handle(":vector m-trigrams=0,1")
    assert ids(session.handle("(nn m-trigrams :k 1)").text) == ["rome"]
    session.handle(":vector m-trigrams=1,0")
    assert ids(session.handle("(nn m-trigrams :k 1)").text) == ["paris"]
    assert session.handle(":vector m-trigrams").text == "m-trigrams: embedded from the text"
    assert "m-trigrams" not in session.settings.vectors


def test_commands_show_the_last_query(session: Session) -> None:
    assert session.handle(":plan").text.startswith("Error: no query yet")
    session.handle(":vector m-trigrams=1,0.2")
    session.handle(HYBRID)
    assert "(within m-trigrams 0.5 :over" in session.handle(":plan").text
    request = session.handle(":request").text
    head, _, body = request.partition("\n")
    assert head == "POST /tiny/_search"
    compiled = json.loads(body)
    assert compiled["size"] == 10 and compiled["query"]["bool"]["_name"] == "q"
    script = compiled["query"]["bool"]["must"][0]["bool"]["should"][1]["script_score"]["script"]
    assert [round(x, 4) for x in script["params"]["query_value"]] == [1.0, 0.2]  # the :vector given
    explained = session.handle(":explain").text
    assert "q.1.1 m-trigrams: distance 0.0194" in explained and "position = " in explained
    timings = session.handle(":timings").text.splitlines()
    assert [t.split()[0] for t in timings[:4]] == ["embed", "plan", "retrieve", "rerank"]
    assert timings[-1].startswith("total")


def test_errors_are_text_with_the_caret_and_the_session_goes_on(session: Session) -> None:
    reply = session.handle("(nn m-trigrams :radius 7)").text.splitlines()
    assert reply == ["Error: 1:24: :radius must be between 0 and 2; got 7",
                     "  (nn m-trigrams :radius 7)", "                         ^"]
    assert session.handle("(term nowhere:x)").text.startswith("Error: 1:7: ")
    assert session.handle(":size -1").text == "Error: :size must be between 0 and 10000; got -1"
    assert session.handle(":page x").text == "Error: usage: :page N; got 'x'"
    assert session.handle(":rerank maybe").text == "Error: usage: :rerank on|off; got 'maybe'"
    assert session.handle(":vector nokey=1,2").text.startswith("Error: the index has no embedding key")
    assert "cannot read 'a,b'" in session.handle(":vector m-trigrams=a,b").text
    assert session.handle(":context country").text.startswith("Error: ")
    assert session.handle(":nope").text == "Error: unknown command :nope; :help lists them"
    # No :text and no :vector: the searcher's embedder refuses the empty text.
    assert session.handle("(nn m-trigrams :k 1)").text.startswith(
        "Error: trigram projection: '' has no letters")
    assert session.handle(':text "a').text.startswith("Error: usage: :text")
    session.handle(":rerank off")  # (with the reranker, the searcher embeds the empty text too)
    assert ids(session.handle("(term country:it)").text) == ["rome"]


def test_help_lists_every_command_and_quit_ends(session: Session) -> None:
    assert session.handle(":help").text == HELP
    for command in session.commands:
        assert command in HELP
    assert session.handle(":quit").quit and not session.handle(":help").quit


@pytest.mark.parametrize(("text", "complete"), [
    ("(and (term a:b)", False), ('(match name "par', False), ("(term a:b))", True),
    ("(term a:b)", True), (":text (", True), ("", True), ("(and\n  (term a:b)\n", False)])
def test_input_is_complete_once_its_parentheses_close(text: str, complete: bool) -> None:
    assert Session.is_complete(text) is complete


def completions(store: LocalStore, text: str) -> list[str]:
    completer = QueryCompleter(Vocabulary(store, [":help", ":plan", ":text"], sample=10))
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_completion_offers_what_the_grammar_and_the_index_allow(store: LocalStore) -> None:
    assert completions(store, "(") == ["and", "difference", "match", "nn", "or", "term"]
    assert completions(store, "(and (te") == ["term"]
    assert completions(store, "(term ") == ["country:", "name:", "m-trigrams.cluster:"]
    assert completions(store, "(term cou") == ["country:"]
    assert completions(store, "(and (term country:") == ["country:fr", "country:it"]
    assert completions(store, "(term country:f") == ["country:fr"]
    assert completions(store, "(match ") == ["country", "name"]
    assert completions(store, "(nn ") == ["m-trigrams"]
    assert completions(store, "(nn m-trigrams :") == [":radius", ":k", ":nprobe", ":exact"]
    assert completions(store, "(and (nn m-trigrams :k 3) (term country:fr) ") == []
    assert completions(store, ":p") == [":plan"]
    assert completions(store, ":context c") == ["country="]
    assert completions(store, ":context country=") == ["country=fr", "country=it"]
    assert completions(store, ":rerank ") == ["on", "off"]


def test_term_values_are_a_bounded_sample_most_frequent_first(store: LocalStore) -> None:
    assert store.sample_terms("country", 1) == ["fr"]
    assert store.sample_terms("country", 5) == ["fr", "it"]
    assert store.sample_terms("name", 5) == ["lyon", "paris", "rome"]
    assert store.sample_terms("nowhere", 5) == []


def test_the_lexer_colours_the_readers_tokens() -> None:
    text = '(nn m-trigrams :k 3) ; c\n(match name "a b")'
    lexer = QueryLexer().lex_document(Document(text))
    first = [(style, token) for style, token in lexer(0) if token.strip()]
    assert first == [("class:paren", "("), ("class:operator", "nn"), ("", "m-trigrams"),
                     ("class:keyword", ":k"), ("class:number", "3"), ("class:paren", ")"),
                     ("class:comment", "; c")]
    assert "".join(t for _, t in lexer(1)) == '(match name "a b")'
    assert ("class:string", '"a b"') in lexer(1)
    assert QueryLexer().lex_document(Document(":size 3"))(0)[0] == ("class:command", ":size")
