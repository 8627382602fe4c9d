"""The analyzer: forms -> typed AST, through a registry of operators with declared shapes.

Each operator declares its positional parameters (with a shape such as ``expr+`` or
``key``) and its keywords (type and range); the analyzer checks a form against that
declaration generically, so messages are uniform and adding an operator is one entry in
:data:`OPERATORS`.  With a schema, namespaces and embedding keys are checked too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ebr.errors import QuerySyntaxError
from ebr.mappings.analysis import ANALYZERS
from ebr.mappings.schema import (
    CLUSTER_SUFFIX,
    KEY_SYNTAX,
    NAMESPACE_SYNTAX,
    Schema,
    is_key_name,
    is_namespace_name,
)
from ebr.mappings.space import MAX_RADIUS, MIN_RADIUS
from ebr.nodes import NN, And, Difference, Node, Or, Term
from ebr.reader import (
    DEFAULT_LIMITS,
    FORM_KINDS,
    Form,
    FormList,
    Keyword,
    Limits,
    Number,
    String,
    Symbol,
    read,
)
from ebr.span import Span

MAX_NPROBE = 65536
MAX_K = 10000


@dataclass(frozen=True, slots=True)
class Param:
    """A positional parameter.  ``shape`` is one of: ``expr`` (a parenthesised expression),
    ``term`` (``ns:value``), ``key`` (an embedding key), ``namespace``, ``text``.
    ``variadic`` takes one or more."""

    name: str
    shape: str
    variadic: bool = False


@dataclass(frozen=True, slots=True)
class KeywordSpec:
    """A keyword option: ``kind`` is ``float``, ``int`` or ``bool``; numbers carry a range."""

    kind: str
    low: float = 0
    high: float = 0


class Call(NamedTuple):
    """What a builder receives: checked positional values and keyword values, and the forms
    each keyword came from (its name and its value) for :meth:`keyword_span`."""

    form: FormList
    args: list[Any]
    keywords: dict[str, Any]
    keyword_forms: dict[str, tuple[Form, Form]]

    def keyword_span(self, name: str) -> Span:
        """From the keyword to the end of its value (built on demand: only errors need it)."""
        key, value = self.keyword_forms[name]
        return Span(key.start, value.end)


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    params: tuple[Param, ...]
    build: Callable[[Call, _Context], Node]
    keywords: Mapping[str, KeywordSpec] = field(default_factory=dict)
    usage: str = ""


@dataclass(slots=True)
class _Context:
    text: str
    schema: Schema | None
    limits: Limits
    nodes: int = 0

    def error(self, message: str, span: Span) -> QuerySyntaxError:
        return QuerySyntaxError(message, span, self.text)


def parse(text: str, schema: Schema | None = None, limits: Limits = DEFAULT_LIMITS) -> Node:
    """Read and analyse one query.  Raises :class:`~ebr.errors.QuerySyntaxError` (or its
    subclass :class:`~ebr.errors.IncompleteInputError`) with the position of the problem."""
    return analyze(read(text, limits), text, schema, limits)


def analyze(
    form: Form, text: str, schema: Schema | None = None, limits: Limits = DEFAULT_LIMITS
) -> Node:
    """Turn a form read from ``text`` into a typed AST."""
    return _expr(form, _Context(text, schema, limits))


def _expr(form: Form, ctx: _Context) -> Node:
    if not isinstance(form, FormList):
        raise ctx.error(
            f"expected a parenthesised expression such as (term ns:value); "
            f"got {FORM_KINDS[type(form)]} {_show(form)}",
            form.span,
        )
    if not form.items:
        raise ctx.error("empty expression (); expected an operator such as and, or, term, nn",
                        form.span)
    head = form.items[0]
    if not isinstance(head, Symbol):
        raise ctx.error(f"expected an operator name; got {FORM_KINDS[type(head)]} {_show(head)}",
                        head.span)
    op = OPERATORS.get(head.name)
    if op is None:
        raise ctx.error(
            f"unknown operator {head.name!r}; expected one of {', '.join(sorted(OPERATORS))}",
            head.span,
        )
    return op.build(_check_call(op, form, ctx), ctx)


def _check_call(op: Operator, form: FormList, ctx: _Context) -> Call:
    items = form.items[1:]
    if Keyword in map(type, items):
        positional, keywords, keyword_forms = _pair_keywords(op, items, ctx)
    else:  # the common case: no keywords to pair up
        positional, keywords, keyword_forms = items, {}, {}
    args: list[Any] = []
    params = op.params
    for p_index, param in enumerate(params):
        if param.variadic:
            rest = positional[p_index:]
            if not rest:
                raise ctx.error(f"{op.name} needs at least one {param.name}; usage: {op.usage}",
                                form.span)
            if param.shape == "expr":  # and, or, difference: skip a call per operand
                args.append([_expr(f, ctx) for f in rest])
            else:
                args.append([_positional(op, param, f, ctx) for f in rest])
            positional = positional[: p_index + 1]
            break
        if p_index >= len(positional):
            raise ctx.error(f"{op.name} is missing its {param.name}; usage: {op.usage}", form.span)
        args.append(_positional(op, param, positional[p_index], ctx))
    if len(positional) > len(params):
        extra = positional[len(params)]
        raise ctx.error(f"{op.name} takes no further argument here; usage: {op.usage}", extra.span)
    return Call(form, args, keywords, keyword_forms)


def _pair_keywords(
    op: Operator, items: tuple[Form, ...], ctx: _Context
) -> tuple[tuple[Form, ...], dict[str, Any], dict[str, tuple[Form, Form]]]:
    """Split ``items`` into positional forms and checked keyword values (with their forms)."""
    positional: list[Form] = []
    keywords: dict[str, Any] = {}
    forms: dict[str, tuple[Form, Form]] = {}
    i = 0
    while i < len(items):
        item = items[i]
        if type(item) is not Keyword:
            positional.append(item)
            i += 1
            continue
        spec = op.keywords.get(item.name)
        if spec is None:
            known = ", ".join(":" + k for k in op.keywords) or "none"
            raise ctx.error(f"{op.name} has no keyword :{item.name}; its keywords: {known}",
                            item.span)
        if item.name in keywords:
            raise ctx.error(f"keyword :{item.name} given twice", item.span)
        if i + 1 >= len(items) or isinstance(items[i + 1], Keyword):
            raise ctx.error(f"keyword :{item.name} needs a value", item.span)
        keywords[item.name] = _keyword_value(op, item.name, spec, items[i + 1], ctx)
        forms[item.name] = (item, items[i + 1])
        i += 2
    return tuple(positional), keywords, forms


def _positional(op: Operator, param: Param, form: Form, ctx: _Context) -> Any:
    shape = param.shape
    if shape == "expr":
        return _expr(form, ctx)
    if shape == "text":
        if isinstance(form, (String, Symbol)):
            return form.value if isinstance(form, String) else form.name
        raise ctx.error(f"{op.name} expects text for its {param.name}; "
                        f"got {FORM_KINDS[type(form)]}", form.span)
    if not isinstance(form, (Symbol, String)):
        raise ctx.error(f"{op.name} expects {_shape_name(shape)} here; "
                        f"got {FORM_KINDS[type(form)]} {_show(form)}", form.span)
    raw = form.name if isinstance(form, Symbol) else form.value
    if shape == "term":
        ns, sep, value = raw.partition(":")
        if not sep or not ns or not value:
            raise ctx.error(f"a term is written namespace:value (e.g. location:seattle); "
                            f"got {raw!r}", form.span)
        if ctx.schema is None or ns not in ctx.schema.query_term_namespaces:
            _check_namespace(ns, form.span, ctx, clusters=True)  # also says what is wrong
        return (ns, value)
    if shape == "namespace":
        _check_namespace(raw, form.span, ctx, clusters=False)
        return raw
    if shape == "key":
        _check_key(raw, form.span, ctx)
        return raw
    raise AssertionError(f"operator {op.name} declares unknown shape {shape!r}")


def _check_namespace(ns: str, span: Span, ctx: _Context, clusters: bool) -> None:
    """Syntax always (the printer must be able to write it back); membership with a schema.
    ``clusters``: also accept an embedding key's cluster namespace ``<key>.cluster``."""
    base = ns.removesuffix(CLUSTER_SUFFIX) if clusters else ns
    if not (is_key_name(base) if base != ns else is_namespace_name(ns)):
        clusters_too = f", or an embedding key followed by {CLUSTER_SUFFIX}" if clusters else ""
        raise ctx.error(f"invalid namespace {ns!r}: a namespace is {NAMESPACE_SYNTAX}"
                        f"{clusters_too}", span)
    schema = ctx.schema
    if schema is None:
        return
    ok = schema.is_term_namespace(ns) if clusters else schema.namespace(ns) is not None
    if not ok:
        known = ", ".join(n.name for n in schema.namespaces) or "none declared"
        raise ctx.error(f"unknown namespace {ns!r}; known namespaces: {known}", span)


def _check_key(key: str, span: Span, ctx: _Context) -> None:
    if not is_key_name(key):
        raise ctx.error(f"invalid embedding key {key!r}: a key is {KEY_SYNTAX}", span)
    schema = ctx.schema
    if schema is not None and schema.key(key) is None:
        known = ", ".join(k.name for k in schema.keys) or "none declared"
        raise ctx.error(f"unknown embedding key {key!r}; known keys: {known}", span)


def _keyword_value(op: Operator, name: str, spec: KeywordSpec, form: Form, ctx: _Context) -> Any:
    if spec.kind == "bool":
        if isinstance(form, Symbol) and form.name in ("true", "false"):
            return form.name == "true"
        raise ctx.error(f":{name} expects true or false; got {_show(form)}", form.span)
    if not isinstance(form, Number) or (spec.kind == "int" and not isinstance(form.value, int)):
        kind = "an integer" if spec.kind == "int" else "a number"
        raise ctx.error(f":{name} expects {kind}; got {_show(form)}", form.span)
    value = form.value
    if not spec.low <= value <= spec.high:  # also refuses nan
        low, high = _fmt(spec.low), _fmt(spec.high)
        raise ctx.error(f":{name} must be between {low} and {high}; got {_show(form)}", form.span)
    return float(value) if spec.kind == "float" else value


def _count(ctx: _Context, form: FormList, n: int = 1) -> None:
    ctx.nodes += n
    if ctx.nodes > ctx.limits.max_forms:
        raise ctx.error(f"expression larger than {ctx.limits.max_forms} nodes", form.span)


# -- builders -----------------------------------------------------------------------------


def _build_term(call: Call, ctx: _Context) -> Node:
    _count(ctx, call.form)
    ns, value = call.args[0]
    return Term(ns, value, call.form.span)


def _boolean(cls: type[And] | type[Or] | type[Difference]) -> Callable[[Call, _Context], Node]:
    def build(call: Call, ctx: _Context) -> Node:
        _count(ctx, call.form)
        return cls(tuple(call.args[0]), call.form.span)

    return build


def _build_difference(call: Call, ctx: _Context) -> Node:
    _count(ctx, call.form)
    return Difference((call.args[0], *call.args[1]), call.form.span)


def _build_nn(call: Call, ctx: _Context) -> Node:
    _count(ctx, call.form)
    kw = call.keywords
    radius, k = kw.get("radius"), kw.get("k")
    if (radius is None) == (k is None):
        where = call.keyword_span("k") if "k" in kw else call.form.span
        raise ctx.error("nn takes exactly one of :radius (radius mode) or :k (top-K mode); "
                        f"usage: {OPERATORS['nn'].usage}", where)
    exact = kw.get("exact", False)
    if exact and k is not None:
        raise ctx.error(":exact applies to radius mode; top-K mode is tuned with :nprobe",
                        call.keyword_span("exact"))
    if exact and "nprobe" in kw:
        raise ctx.error(":nprobe has no effect with :exact true (exact search probes no "
                        "clusters); drop one of them", call.keyword_span("nprobe"))
    return NN(call.args[0], radius=radius, k=k, nprobe=kw.get("nprobe"), exact=exact,
              span=call.form.span)


def _build_match(call: Call, ctx: _Context) -> Node:
    ns, text = call.args
    namespace = ctx.schema.namespace(ns) if ctx.schema else None
    analyzer = ANALYZERS[namespace.analyzer if namespace else "standard"]
    values = analyzer(text)
    if not values:
        raise ctx.error(f"match text {text!r} yields no terms in namespace {ns!r}",
                        call.form.items[2].span)
    _count(ctx, call.form, len(values) + 1)
    span = call.form.span
    terms = tuple(Term(ns, v, span) for v in values)
    return terms[0] if len(terms) == 1 else And(terms, span)


OPERATORS: dict[str, Operator] = {
    "term": Operator("term", (Param("term", "term"),), _build_term,
                     usage="(term ns:value)"),
    "and": Operator("and", (Param("operand", "expr", variadic=True),), _boolean(And),
                    usage="(and e1 e2 ...)"),
    "or": Operator("or", (Param("operand", "expr", variadic=True),), _boolean(Or),
                   usage="(or e1 e2 ...)"),
    "difference": Operator(
        "difference",
        (Param("first operand", "expr"), Param("operand to subtract", "expr", variadic=True)),
        _build_difference, usage="(difference e1 e2 ...)"),
    "nn": Operator(
        "nn", (Param("embedding key", "key"),), _build_nn,
        keywords={
            "radius": KeywordSpec("float", MIN_RADIUS, MAX_RADIUS),
            "k": KeywordSpec("int", 1, MAX_K),
            "nprobe": KeywordSpec("int", 1, MAX_NPROBE),
            "exact": KeywordSpec("bool"),
        },
        usage="(nn key :radius r [:nprobe n] [:exact true]) or (nn key :k K [:nprobe n])"),
    "match": Operator("match", (Param("namespace", "namespace"), Param("text", "text")),
                      _build_match, usage='(match ns "free text")'),
}


def _show(form: Form) -> str:
    if isinstance(form, Symbol):
        return repr(form.name)
    if isinstance(form, Keyword):
        return ":" + form.name
    if isinstance(form, Number):
        return repr(form.value)
    if isinstance(form, String):
        return repr(form.value)
    return "(...)"


def _shape_name(shape: str) -> str:
    return {"term": "a term ns:value", "key": "an embedding key",
            "namespace": "a namespace"}.get(shape, shape)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
