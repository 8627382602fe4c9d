"""The reader's and the parser's short paths give what their general paths give."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebr import EbrError
from ebr.query.parser import OPERATORS, _Context, _general_checker
from ebr.query.reader import _TOKEN, DEFAULT_LIMITS, FormList, read, read_all

_TEXT = st.lists(st.sampled_from(list("() \t\n\x0b\x1c\xa0\u3000ab:.1-+e") + ["term", "and"]),
                max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_split_tokens_are_the_regex_tokens(text: str) -> None:
    """Without strings or comments, str.split finds the tokens the regular expression finds."""
    assert text.replace("(", " ( ").replace(")", " ) ").split() == _TOKEN.findall(text)


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_offsets_match_the_text(text: str) -> None:
    try:
        forms = read_all(text)
    except EbrError:
        return
    stack = list(forms)
    while stack:
        form = stack.pop()
        assert text[form.start:form.end].strip() == text[form.start:form.end]
        if isinstance(form, FormList):
            assert text[form.start] == "(" and text[form.end - 1] == ")"
            stack.extend(form.items)


@pytest.mark.parametrize("text", ["(term text:a)", "(term)", "(term text:a text:b)",
                                  "(term :a 1)", "(and (term a:b) (term c:d))", "(and)",
                                  "(or (term a:b) :k 3)", "(and (frob) :k 3)"])
def test_short_checkers_agree_with_the_general_one(text: str) -> None:
    form = read(text)
    assert isinstance(form, FormList)
    op = OPERATORS[form.items[0].name]  # type: ignore[union-attr]

    def outcome(check: object) -> object:
        try:
            return check(form, _Context(text, None, DEFAULT_LIMITS))  # type: ignore[operator]
        except EbrError as err:
            return str(err)

    assert outcome(op.check) == outcome(_general_checker(op))
