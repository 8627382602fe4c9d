"""The parser: forms -> typed AST, through a registry of operators with declared shapes.

Each operator declares its positional parameters (with a shape such as ``expr+`` or
``key``) and its keywords (type and range); the parser checks a form against that
declaration generically, so messages are uniform and adding an operator is one entry in
:data:`OPERATORS`.  With a schema, namespaces and embedding keys are checked too.  (Text
*analyzers*, which turn free text into terms for ``match`` and ingest, are
:mod:`ebr.mappings.text_analysis`.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ebr.errors import QuerySyntaxError
from ebr.mappings.schema import (
    KEY_SYNTAX,
    NAMESPACE_SYNTAX,
    Schema,
    cluster_key,
    cluster_namespace,
    is_key_name,
    is_namespace_name,
)
from ebr.mappings.space import MAX_RADIUS, MIN_RADIUS
from ebr.mappings.text_analysis import ANALYZERS
from ebr.query.kept import Same, kept
from ebr.query.nodes import NN, And, Difference, Match, Node, Or, Term, size
from ebr.query.reader import (
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
from ebr.query.span import Span

_new = tuple.__new__

MAX_NPROBE = 65536
MAX_K = 10000
MAX_MATCH_TERMS = 1024


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
    #: The declaration above turned into checking code, once (see :func:`_call_checker`).
    check: Callable[[FormList, _Context], Call] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", _call_checker(self))


@dataclass(slots=True)
class _Context:
    text: str
    schema: Schema | None
    limits: Limits
    nodes: int = 0

    def error(self, message: str, span: Span) -> QuerySyntaxError:
        return QuerySyntaxError(message, span, self.text)


def parse(text: str, schema: Schema | None = None, limits: Limits = DEFAULT_LIMITS) -> Node:
    """Read and parse one query.  Raises :class:`~ebr.errors.QuerySyntaxError` (or its
    subclass :class:`~ebr.errors.IncompleteInputError`) with the position of the problem.
    The ASTs of recent texts are kept (:mod:`ebr.query.kept`): the same text, schema and
    limits give the same AST object."""
    return _kept(text, Same(schema), Same(limits))


def parse_uncached(text: str, schema: Schema | None = None,
                   limits: Limits = DEFAULT_LIMITS) -> Node:
    """:func:`parse` without keeping or looking up anything (the work itself)."""
    return parse_form(read(text, limits), text, schema, limits)


@kept(size)
def _kept(text: str, schema: Same[Schema | None], limits: Same[Limits]) -> Node:
    return parse_uncached(text, schema.value, limits.value)


def parse_form(
    form: Form, text: str, schema: Schema | None = None, limits: Limits = DEFAULT_LIMITS
) -> Node:
    """Turn a form read from ``text`` into a typed AST."""
    return _expr(form, _Context(text, schema, limits))


def _expr(form: Form, ctx: _Context) -> Node:
    if type(form) is FormList and form.items and type(form.items[0]) is Symbol:
        op = OPERATORS.get(form.items[0].name)
        if op is not None:
            return op.build(op.check(form, ctx), ctx)
    raise _not_an_operation(form, ctx)


def _not_an_operation(form: Form, ctx: _Context) -> QuerySyntaxError:
    """What is wrong with a form that should be an operation ``(operator argument...)``."""
    if not isinstance(form, FormList):
        return ctx.error(
            f"expected a parenthesised expression such as (term ns:value); "
            f"got {FORM_KINDS[type(form)]} {_show(form)}",
            form.span,
        )
    if not form.items:
        return ctx.error("empty expression (); expected an operator such as and, or, term, nn",
                         form.span)
    head = form.items[0]
    if not isinstance(head, Symbol):
        return ctx.error(f"expected an operator name; got {FORM_KINDS[type(head)]} {_show(head)}",
                         head.span)
    return ctx.error(
        f"unknown operator {head.name!r}; expected one of {', '.join(sorted(OPERATORS))}",
        head.span,
    )


_ValueChecker = Callable[[Form, _Context], Any]


def _call_checker(op: Operator) -> Callable[[FormList, _Context], Call]:
    """The function checking a form against ``op``'s declaration, made once per operator.

    Each parameter's shape is resolved here to the function checking it, so analysing a
    form runs only those.  Operators without keywords get a shorter function for their usual
    call (``and``/``or`` with expression operands, ``term`` with its one term), with the
    same outcome; anything unusual goes to the general checker, which says what is wrong."""
    if any(param.variadic for param in op.params[:-1]):
        raise ValueError(f"operator {op.name}: only its last parameter may be variadic")
    general = _general_checker(op)
    if op.keywords or len(op.params) != 1:
        return general
    param = op.params[0]
    if param.variadic and param.shape == "expr":
        return _operands_checker(general)
    if not param.variadic:
        return _one_argument_checker(_value_checker(op, param), general)
    return general


def _operands_checker(general: Callable[[FormList, _Context], Call]
                      ) -> Callable[[FormList, _Context], Call]:
    """For an operator taking one or more expressions and nothing else."""

    def check_operands(form: FormList, ctx: _Context) -> Call:
        items = form.items
        if len(items) == 1 or Keyword in map(type, items):
            return general(form, ctx)  # for its error
        return _new(Call, (form, [[_expr(item, ctx) for item in items[1:]]], {}, {}))

    return check_operands


def _one_argument_checker(check_value: _ValueChecker, general: Callable[[FormList, _Context], Call]
                          ) -> Callable[[FormList, _Context], Call]:
    """For an operator taking exactly one positional argument and no keywords."""

    def check_one(form: FormList, ctx: _Context) -> Call:
        items = form.items
        if len(items) != 2 or type(items[1]) is Keyword:
            return general(form, ctx)  # for its error
        return _new(Call, (form, [check_value(items[1], ctx)], {}, {}))

    return check_one


def _general_checker(op: Operator) -> Callable[[FormList, _Context], Call]:
    """Keywords first, then positional parameters in order (a sub-expression's own error
    comes before a missing later parameter)."""
    fixed = tuple((param, _value_checker(op, param)) for param in op.params
                  if not param.variadic)
    variadic = op.params[-1] if op.params and op.params[-1].variadic else None
    check_each = _value_checker(op, variadic) if variadic else None
    variadic_name = variadic.name if variadic else ""
    n_fixed = len(fixed)

    def check(form: FormList, ctx: _Context) -> Call:
        items = form.items[1:]
        positional: tuple[Form, ...]
        if Keyword in map(type, items):
            positional, keywords, keyword_forms = _pair_keywords(op, items, ctx)
        else:  # the common case: no keywords to pair up
            positional, keywords, keyword_forms = items, {}, {}
        args: list[Any] = [check_value(item, ctx)
                           for item, (_, check_value) in zip(positional, fixed, strict=False)]
        if len(args) < n_fixed:
            raise ctx.error(f"{op.name} is missing its {fixed[len(args)][0].name}; "
                            f"usage: {op.usage}", form.span)
        if check_each is not None:
            rest = positional[n_fixed:]
            if not rest:
                raise ctx.error(f"{op.name} needs at least one {variadic_name}; "
                                f"usage: {op.usage}", form.span)
            args.append([check_each(item, ctx) for item in rest])
        elif len(positional) > n_fixed:
            raise ctx.error(f"{op.name} takes no further argument here; usage: {op.usage}",
                            positional[n_fixed].span)
        return _new(Call, (form, args, keywords, keyword_forms))

    return check


def _pair_keywords(
    op: Operator, items: tuple[Form, ...], ctx: _Context
) -> tuple[tuple[Form, ...], dict[str, Any], dict[str, tuple[Form, Form]]]:
    """Split ``items`` into positional forms and checked keyword values (with their forms)."""
    positional: list[Form] = []
    keywords: dict[str, Any] = {}
    forms: dict[str, tuple[Form, Form]] = {}
    rest = iter(items)
    for item in rest:
        if type(item) is not Keyword:
            positional.append(item)
            continue
        name = item.name
        spec = op.keywords.get(name)
        if spec is None:
            known = ", ".join(":" + k for k in op.keywords) or "none"
            raise ctx.error(f"{op.name} has no keyword :{name}; its keywords: {known}",
                            item.span)
        if name in keywords:
            raise ctx.error(f"keyword :{name} given twice", item.span)
        value = next(rest, None)
        if value is None or type(value) is Keyword:
            raise ctx.error(f"keyword :{name} needs a value", item.span)
        keywords[name] = _keyword_value(op, name, spec, value, ctx)
        forms[name] = (item, value)
    return tuple(positional), keywords, forms


def _value_checker(op: Operator, param: Param) -> _ValueChecker:
    """The function checking one positional form against ``param``'s shape."""
    shape = param.shape
    if shape == "expr":
        return _expr
    if shape == "text":
        def text(form: Form, ctx: _Context) -> str:
            if isinstance(form, (String, Symbol)):
                return form.value if isinstance(form, String) else form.name
            raise ctx.error(f"{op.name} expects text for its {param.name}; "
                            f"got {FORM_KINDS[type(form)]}", form.span)

        return text
    check_name = _NAME_CHECKERS.get(shape)
    if check_name is None:
        raise ValueError(f"operator {op.name} declares unknown shape {shape!r}")

    def name(form: Form, ctx: _Context) -> Any:
        if type(form) is Symbol:
            return check_name(form.name, form, ctx)
        if type(form) is String:
            return check_name(form.value, form, ctx)
        raise ctx.error(f"{op.name} expects {_shape_name(shape)} here; "
                        f"got {FORM_KINDS[type(form)]} {_show(form)}", form.span)

    return name


def _term_value(raw: str, form: Form, ctx: _Context) -> tuple[str, str]:
    ns, sep, value = raw.partition(":")
    if not sep or not ns or not value:
        raise ctx.error(f"a term is written namespace:value (e.g. location:seattle); "
                        f"got {raw!r}", form.span)
    if ctx.schema is None or ns not in ctx.schema.query_term_namespaces:
        _check_namespace(ns, form.span, ctx, clusters=True)  # also says what is wrong
    return (ns, value)


def _namespace_value(raw: str, form: Form, ctx: _Context) -> str:
    _check_namespace(raw, form.span, ctx, clusters=False)
    return raw


def _key_value(raw: str, form: Form, ctx: _Context) -> str:
    _check_key(raw, form.span, ctx)
    return raw


#: The checks of the shapes naming something, given the symbol's or string's text.
_NAME_CHECKERS: dict[str, Callable[[str, Form, _Context], Any]] = {
    "term": _term_value,
    "namespace": _namespace_value,
    "key": _key_value,
}


def _check_namespace(ns: str, span: Span, ctx: _Context, clusters: bool) -> None:
    """Syntax always (the printer must be able to write it back); membership with a schema.
    ``clusters``: also accept an embedding key's cluster namespace ``<key>.cluster``."""
    key = cluster_key(ns) if clusters else None
    if not (is_key_name(key) if key is not None else is_namespace_name(ns)):
        suffix = cluster_namespace("")  # what follows a key in its cluster namespace
        clusters_too = f", or an embedding key followed by {suffix}" if clusters else ""
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


def _node_span(ctx: _Context, form: FormList, n: int = 1) -> Span:
    """The span of the ``n`` nodes built from ``form``, after counting them against the limit
    (one function for both: every builder needs both)."""
    ctx.nodes += n
    if ctx.nodes > ctx.limits.max_forms:
        raise ctx.error(f"expression larger than {ctx.limits.max_forms} nodes", form.span)
    return _new(Span, (form.start, form.end))


# -- builders -----------------------------------------------------------------------------


def _build_term(call: Call, ctx: _Context) -> Node:
    ns, value = call.args[0]
    return Term(ns, value, _node_span(ctx, call.form))


def _boolean(cls: type[And] | type[Or] | type[Difference]) -> Callable[[Call, _Context], Node]:
    def build(call: Call, ctx: _Context) -> Node:
        return cls(tuple(call.args[0]), _node_span(ctx, call.form))

    return build


def _build_difference(call: Call, ctx: _Context) -> Node:
    return Difference((call.args[0], *call.args[1]), _node_span(ctx, call.form))


def _build_nn(call: Call, ctx: _Context) -> Node:
    span = _node_span(ctx, call.form)
    kw = call.keywords
    radius, k = kw.get("radius"), kw.get("k")
    if (radius is None) == (k is None):
        where = call.keyword_span("k") if "k" in kw else span
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
              span=span)


def _build_match(call: Call, ctx: _Context) -> Node:
    ns, text = call.args
    namespace = ctx.schema.namespace(ns) if ctx.schema else None
    analyzer = ANALYZERS[namespace.analyzer if namespace else "standard"]
    values = tuple(analyzer(text))
    if not values:
        raise ctx.error(f"match text {text!r} yields no terms in namespace {ns!r}",
                        call.form.items[2].span)
    kw = call.keywords
    # More than the text has terms asks for all of them (a template's text varies in length).
    least = min(kw.get("minimum-should-match", len(values)), len(values))
    # A match costs as much as its terms (one clause each in OpenSearch): count them all.
    return Match(ns, values, least, kw.get("k"), None, text,
                 _node_span(ctx, call.form, len(values) + 1))


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
    "match": Operator(
        "match", (Param("namespace", "namespace"), Param("text", "text")), _build_match,
        keywords={
            "minimum-should-match": KeywordSpec("int", 1, MAX_MATCH_TERMS),
            "k": KeywordSpec("int", 1, MAX_K),
        },
        usage='(match ns "free text" [:minimum-should-match n] [:k K])'),
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
