"""Reader and printer: forms and spans, the canonical text, round trips, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebr import (
    NN,
    And,
    EbrError,
    Limits,
    Match,
    Node,
    Or,
    Term,
    logical_plan,
    parse,
    pretty,
    read,
    to_text,
)
from ebr.mappings import EmbeddingKey, Namespace, Schema
from ebr.mappings.text_analysis import standard
from ebr.query.nodes import Difference
from ebr.query.reader import FormList, Keyword, Number, String, Symbol

PAPER_TERMS = ("(and (or (term location:seattle) (term location:menlo_park)) "
               "(and (term text:john) (term text:smithe)))")
PAPER_HYBRID = ("(and (or (term location:seattle) (term location:menlo_park)) "
                "(or (and (term text:john) (term text:smithe)) "
                "(nn model-141795009 :radius 0.24 :nprobe 16)))")


def test_reader_forms_and_spans() -> None:
    form = read('(nn key :radius 0.24 :k 3 "a \\"b\\"") ; trailing comment')
    assert isinstance(form, FormList)
    head, key, kw, num, kw2, num2, s = form.items
    assert isinstance(head, Symbol) and head.name == "nn" and isinstance(key, Symbol)
    assert isinstance(kw, Keyword) and kw.name == "radius"
    assert isinstance(num, Number) and num.value == 0.24 and isinstance(num.value, float)
    assert isinstance(num2, Number) and num2.value == 3 and isinstance(num2.value, int)
    assert isinstance(s, String) and s.value == 'a "b"'
    assert (num.start, num.end, num.span.location("(nn key :radius 0.24")) == (16, 20, (1, 17))
    assert isinstance(kw2, Keyword)


def test_paper_examples_parse_to_the_expected_tree() -> None:
    ast = parse(PAPER_HYBRID)
    seattle, menlo = Term("location", "seattle"), Term("location", "menlo_park")
    assert ast == And((
        Or((seattle, menlo)),
        Or((And((Term("text", "john"), Term("text", "smithe"))),
            NN("model-141795009", radius=0.24, nprobe=16))),
    ))


@pytest.mark.parametrize("text", [PAPER_TERMS, PAPER_HYBRID,
                                  '(term "text:john smith")',
                                  '(term "title:say \\"hi\\"\\\\")',
                                  "(difference (term a:1) (term a:2) (term a:3))",
                                  "(nn k :radius 0.0 :exact true)",
                                  "(nn k :k 10 :nprobe 8)"])
def test_canonical_text_round_trips(text: str) -> None:
    ast = parse(text)
    assert parse(to_text(ast)) == ast
    assert parse(pretty(ast, width=30)) == ast
    if "\\" not in text and "exact" not in text:
        assert to_text(ast) == text


def test_pretty_breaks_long_lines_only() -> None:
    ast = parse(PAPER_HYBRID)
    assert pretty(ast, width=200) == to_text(ast)
    lines = pretty(ast, width=60).splitlines()
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)


def test_match_uses_the_namespace_analyzer() -> None:
    from ebr.mappings import Namespace, Schema

    schema = Schema.create("x", (Namespace("text"), Namespace("city", "lowercase"),
                                 Namespace("title", "english")))
    assert parse('(match text "John  SMITH, john")', schema) == Match(
        "text", ("john", "smith"), 2)
    assert parse('(match city "Menlo Park")', schema) == Match("city", ("menlo park",), 1)
    assert parse('(match title "The Cordless Drills" :minimum-should-match 1 :k 20)',
                 schema) == Match("title", ("cordless", "drill"), 1, 20)


def test_match_asks_for_all_terms_unless_told_and_at_most_all() -> None:
    assert parse('(match text "a b c")').minimum_should_match == 3  # type: ignore[attr-defined]
    assert parse('(match text "a b c" :minimum-should-match 9)') == Match(
        "text", ("a", "b", "c"), 3)
    printed = to_text(parse('(match text "New York!" :minimum-should-match 1 :k 5)'))
    assert printed == '(match text "New York!" :minimum-should-match 1 :k 5)'


def test_a_match_prints_its_text_so_stemming_reads_back_the_same() -> None:
    """Snowball stems are not always stems of themselves: the printer keeps the text."""
    from ebr.mappings import Namespace, Schema
    from ebr.mappings.text_analysis import english

    schema = Schema.create("x", (Namespace("title", "english"),))
    ast = parse('(match title "agreed")', schema)
    assert english(" ".join(ast.values)) != list(ast.values)  # type: ignore[attr-defined]
    assert parse(to_text(ast), schema) == ast


# -- properties ------------------------------------------------------------------------------

_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                  max_size=8)
# The whole name syntax (ebr.mappings.schema), number-like keys such as "12" included.
_keys = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,6}", fullmatch=True)
_namespaces = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,5}", fullmatch=True),
                        _keys.map(lambda k: k + ".cluster"))
_user_terms = st.builds(Term, _namespaces, _values)
_user_nn = st.one_of(
    st.builds(lambda key, r, p: NN(key, radius=r, nprobe=p), _keys,
              st.floats(0, 2, allow_nan=False), st.none() | st.integers(1, 65536)),
    st.builds(lambda key, r: NN(key, radius=r, exact=True), _keys, st.floats(0, 2)),
    st.builds(lambda key, k, p: NN(key, k=k, nprobe=p), _keys, st.integers(1, 10000),
              st.none() | st.integers(1, 64)),
)


_words = st.lists(st.from_regex(r"[A-Za-z0-9éß]{1,5}", fullmatch=True), min_size=1, max_size=4)


@st.composite
def _user_matches(draw: st.DrawFn) -> Match:
    text = draw(st.sampled_from([" ", ", ", "-", "'s "])).join(draw(_words))
    values = tuple(standard(text))
    return Match(draw(_namespaces.filter(lambda n: not n.endswith(".cluster"))), values,
                 draw(st.integers(1, len(values))), draw(st.none() | st.integers(1, 10000)),
                 text=text)


def _user_exprs() -> st.SearchStrategy[Node]:
    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        ops = st.lists(children, min_size=1, max_size=3).map(tuple)
        return st.one_of(st.builds(And, ops), st.builds(Or, ops),
                         st.builds(lambda a, b: Difference((a, *b)), children,
                                   st.lists(children, min_size=1, max_size=2)))

    return st.recursive(st.one_of(_user_terms, _user_nn, _user_matches()), extend,
                        max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_user_exprs(), st.integers(10, 120))
def test_printer_round_trips_any_ast(ast: Node, width: int) -> None:
    assert parse(to_text(ast)) == ast
    assert parse(pretty(ast, width)) == ast


_GRAMMARISH = st.lists(st.sampled_from(list('()":;\\ \n\tabnm0.1-e+xt') +
                                       ["term", "nn", "and", "or", "difference", "match",
                                        ":radius", ":k", ":nprobe", ":exact", "true", "1e999",
                                        "text:a", "é", "\x00"]), max_size=60).map("".join)


_SCHEMA = Schema.create("x", (Namespace("text"), Namespace("a")), (EmbeddingKey("nn", 3),))


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=80), _GRAMMARISH, _GRAMMARISH.map(lambda s: "(and " + s)),
       st.sampled_from([None, _SCHEMA]), st.sampled_from([Limits(), Limits(3, 12, 40)]))
def test_reader_and_parser_raise_only_ebr_errors(text: str, schema: Schema | None,
                                                   limits: Limits) -> None:
    """Arbitrary text: an EbrError or a query that plans and prints back to itself."""
    try:
        ast = parse(text, schema, limits)
    except EbrError:
        return
    assert parse(to_text(ast), schema) == ast
    assert logical_plan(ast) is not None
