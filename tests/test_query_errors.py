"""The error table: every way a query can be wrong, with the line, column and message a user
sees.  Messages are matched as substrings so wording can improve without churn, but the
position must be exact."""

from __future__ import annotations

import numpy as np
import pytest

from ebr import IncompleteInputError, Limits, QuerySyntaxError, compile_search, parse, plan, to_text
from ebr.mappings import EmbeddingKey, Namespace, Schema

SCHEMA = Schema.create(
    "people",
    (Namespace("text"), Namespace("location", "lowercase")),
    (EmbeddingKey("model-141795009", 8),),
)

ERRORS = [
    # reader
    ("", 1, 1, "empty query"),
    ("   ; only a comment", 1, 20, "empty query"),
    (")", 1, 1, "unexpected right parenthesis"),
    ("(term text:a))", 1, 14, "unexpected right parenthesis"),
    ("(term text:a) (term text:b)", 1, 15, "a query is one expression"),
    ('(term "text:a\\q")', 1, 14, "unknown escape \\q"),
    ("(term text:99999999999999999999)", 1, 7, None),  # a symbol, not a number: valid
    ("(nn model-141795009 :k 99999999999999999999)", 1, 24, "number too large"),
    # parser: structure
    ("text:a", 1, 1, "expected a parenthesised expression"),
    ("()", 1, 1, "empty expression"),
    ("(42 a)", 1, 2, "expected an operator name; got number 42"),
    ("(frobnicate (term text:a))", 1, 2, "unknown operator 'frobnicate'"),
    ("(and)", 1, 1, "and needs at least one operand"),
    ("(or (term text:a) text:b)", 1, 19, "expected a parenthesised expression"),
    ("(difference (term text:a))", 1, 1, "difference needs at least one operand to subtract"),
    ("(term)", 1, 1, "term is missing its term"),
    ("(term text:a text:b)", 1, 14, "term takes no further argument"),
    ("(term text)", 1, 7, "a term is written namespace:value"),
    ("(term text:)", 1, 7, "a term is written namespace:value"),
    ("(term :a)", 1, 7, "keyword :a"),
    ("(term (term text:a))", 1, 7, "expects a term ns:value"),
    # parser: schema
    ("(term shoe:red)", 1, 7, "unknown namespace 'shoe'; known namespaces: text, location"),
    ("(match shoe \"red\")", 1, 8, "unknown namespace 'shoe'"),
    ('(match text "!!!")', 1, 13, "yields no terms"),
    ("(match text (term text:a))", 1, 13, "match expects text"),
    ('(match text "a b" :minimum-should-match 0)', 1, 41, ":minimum-should-match must be between 1"),
    ('(match text "a b" :k 0)', 1, 22, ":k must be between 1 and 10000"),
    ('(match text "a" :radius 0.2)', 1, 17, "match has no keyword :radius"),
    ('(match text "a" :minimum-should-match 1.5)', 1, 39, ":minimum-should-match expects an integer"),
    ("(nn model-1 :radius 0.2)", 1, 5, "unknown embedding key 'model-1'; known keys: "),
    ("(nn \"my key\" :k 3)", 1, 5, "invalid embedding key 'my key'"),
    ("(term Text:a)", 1, 7, "invalid namespace 'Text'"),
    ("(match \"a:b\" \"x\")", 1, 8, "invalid namespace 'a:b'"),
    ("(nn model-141795009 : 3)", 1, 21, "a keyword needs a name after ':'"),
    ("(nn model-141795009 :k ٣)", 1, 24, ":k expects an integer"),
    # parser: nn keywords and ranges
    ("(nn model-141795009)", 1, 1, "exactly one of :radius (radius mode) or :k"),
    ("(nn model-141795009 :radius 0.2 :k 5)", 1, 33, "exactly one of :radius"),
    ("(nn model-141795009 :radius 2.5)", 1, 29, ":radius must be between 0 and 2"),
    ("(nn model-141795009 :radius -0.1)", 1, 29, ":radius must be between 0 and 2"),
    ("(nn model-141795009 :radius 1e999)", 1, 29, ":radius must be between 0 and 2"),
    ("(nn model-141795009 :radius near)", 1, 29, ":radius expects a number"),
    ("(nn model-141795009 :radius)", 1, 21, "keyword :radius needs a value"),
    ("(nn model-141795009 :radius :k)", 1, 21, "keyword :radius needs a value"),
    ("(nn model-141795009 :radius 0.2 :radius 0.3)", 1, 33, "keyword :radius given twice"),
    ("(nn model-141795009 :radius 0.2 :nprobe 0)", 1, 41, ":nprobe must be between 1 and 65536"),
    ("(nn model-141795009 :radius 0.2 :nprobe 100000)", 1, 41, ":nprobe must be between 1"),
    ("(nn model-141795009 :radius 0.2 :nprobe 2.5)", 1, 41, ":nprobe expects an integer"),
    ("(nn model-141795009 :k 0)", 1, 24, ":k must be between 1 and 10000"),
    ("(nn model-141795009 :radius 0.2 :exact yes)", 1, 40, ":exact expects true or false"),
    ("(nn model-141795009 :k 5 :exact true)", 1, 26, ":exact applies to radius mode"),
    ("(nn model-141795009 :radius 0.2 :exact true :nprobe 4)", 1, 45, ":nprobe has no effect"),
    ("(nn model-141795009 :radius 0.2 :probes 4)", 1, 33, "nn has no keyword :probes"),
    ("(nn :radius 0.2)", 1, 1, "nn is missing its embedding key"),
    ("(and (term text:a) :radius 0.2)", 1, 20, "and has no keyword :radius"),
    # multi-line: the line and column of the culprit, not of the start
    ("(and (term text:a)\n     (nn model-141795009 :radius 3))", 2, 34, ":radius must be between"),
    ("(and\n  ; a comment (with parens)\n  (term text:a)\n  (oops))", 4, 4, "unknown operator"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS,
                         ids=[e[0][:40] or "<empty>" for e in ERRORS])
def test_error_table(text: str, line: int, column: int, message: str | None) -> None:
    if message is None:
        parse(text, SCHEMA)
        return
    with pytest.raises(QuerySyntaxError) as info:
        parse(text, SCHEMA)
    err = info.value
    assert message in err.message
    assert (err.line, err.column) == (line, column)
    assert not isinstance(err, IncompleteInputError)


INCOMPLETE = [
    ("(and (term text:a)", 1, 1, "unclosed left parenthesis"),
    ("(and (term text:a)\n  (or (term text:b)", 2, 3, "unclosed left parenthesis"),
    ('(term "text:a', 1, 7, "unterminated string"),
    ('(term "text:a\\', 1, 7, "unterminated string"),
    ("(", 1, 1, "unclosed left parenthesis"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), INCOMPLETE)
def test_incomplete_input_is_its_own_error(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(IncompleteInputError) as info:
        parse(text, SCHEMA)
    assert message in info.value.message
    assert (info.value.line, info.value.column) == (line, column)


def test_message_shows_the_line_and_a_caret() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse("(and (term text:a)\n     (nn model-141795009 :radius 3))", SCHEMA)
    assert str(info.value).splitlines() == [
        "2:34: :radius must be between 0 and 2; got 3",
        "       (nn model-141795009 :radius 3))",
        "  " + " " * 33 + "^",
    ]


def test_unknown_operator_lists_the_known_ones() -> None:
    with pytest.raises(QuerySyntaxError, match="expected one of and, difference, match, nn, "
                                               "or, term"):
        parse("(xor (term text:a))")


@pytest.mark.parametrize("depth", [63, 64, 10_000])
def test_depth_limit_is_an_error_never_a_recursion_error(depth: int) -> None:
    text = "(and " * depth + "(term text:a)" + ")" * depth  # depth + 1 levels of parens
    if depth + 1 <= Limits().max_depth:
        assert parse(text) is not None
        return
    with pytest.raises(QuerySyntaxError, match="nested deeper than 64 levels") as info:
        parse(text)
    assert info.value.column == 5 * 64 + 1


def test_the_deepest_allowed_query_never_hits_the_recursion_limit() -> None:
    from ebr.planning.rules.simplify import simplify
    from ebr.query.reader import MAX_DEPTH_CAP

    limits = Limits(max_depth=MAX_DEPTH_CAP)
    depth = MAX_DEPTH_CAP - 2  # plus the or and the nn: exactly the cap
    text = "(and " * depth + "(or (term text:a) (nn model-141795009 :k 3))" + ")" * depth
    ast = parse(text, SCHEMA, limits)
    vectors = {"model-141795009": np.ones(8, np.float32)}
    executable = plan(ast, vectors, {}, SCHEMA, limits)
    assert simplify(executable) == executable
    assert parse(to_text(ast), SCHEMA, limits) == ast
    assert compile_search(executable, SCHEMA, vectors).body["size"] == 10
    with pytest.raises(ValueError, match="max_depth must be between 1 and"):
        Limits(max_depth=MAX_DEPTH_CAP + 1)


def test_limits_are_configurable() -> None:
    text = "(or " + " ".join(f"(term text:t{i})" for i in range(50)) + ")"
    parse(text, limits=Limits(max_forms=200))
    with pytest.raises(QuerySyntaxError, match="larger than 40 forms"):
        parse(text, limits=Limits(max_forms=40))
    with pytest.raises(QuerySyntaxError, match="nested deeper than 1 levels"):
        parse("(and (term text:a))", limits=Limits(max_depth=1))


def test_match_expansion_counts_against_the_size_limit() -> None:
    words = " ".join(f"w{i}" for i in range(100))
    with pytest.raises(QuerySyntaxError, match="larger than 50 nodes"):
        parse(f'(match text "{words}")', limits=Limits(max_forms=50))
