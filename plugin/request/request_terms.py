"""The terms a query's ``match`` clauses ask for, per namespace: what a reranker counts in a
document (:attr:`ebr.ranking.RerankRequest.terms`).

Read from the query's forms rather than its AST, so the answer does not depend on how the
parser represents ``match`` (a conjunction of terms, or a scored text clause): the text is
analysed with the namespace's analyzer, as the parser and ingest analyse it.
"""

from __future__ import annotations

from ebr.mappings.schema import Schema
from ebr.mappings.text_analysis import ANALYZERS
from ebr.query.reader import Form, FormList, String, Symbol, read_all


def match_terms(text: str, schema: Schema) -> dict[str, tuple[str, ...]]:
    """``{namespace: analysed terms}`` of every ``(match ns "text" ...)`` in ``text`` (a query
    the parser accepted), terms in order of first appearance."""
    found: dict[str, dict[str, None]] = {}
    stack: list[Form] = list(reversed(read_all(text)))  # pre-order, left to right
    while stack:
        form = stack.pop()
        if type(form) is not FormList:
            continue
        items = form.items
        if (len(items) >= 3 and type(items[0]) is Symbol and items[0].name == "match"
                and type(items[1]) in (Symbol, String) and type(items[2]) in (Symbol, String)):
            ns = _text(items[1])
            declared = schema.namespace(ns)
            analyzer = ANALYZERS[declared.analyzer if declared else "standard"]
            found.setdefault(ns, {}).update(dict.fromkeys(analyzer(_text(items[2]))))
        stack.extend(reversed(items))
    return {ns: tuple(terms) for ns, terms in found.items()}


def _text(form: Form) -> str:
    return form.name if isinstance(form, Symbol) else str(form.value)  # type: ignore[union-attr]
