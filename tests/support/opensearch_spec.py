"""Lint request bodies against the OpenSearch OpenAPI specification (test support only).

No OpenSearch runs on our development machines, so the bodies the compiler produces are checked
offline against the specification in ``../shared/data/opensearch-api-spec`` (Apache-2.0), or
``$EBR_SHARED_DIR/data/opensearch-api-spec``. This never replaces the container tests: the spec
describes shapes, not semantics (nor which OpenSearch version accepts a key).

Two passes run on every body; ``SpecViolation`` lists the findings of both with JSON paths:

1. JSON Schema validation (Draft 2020-12, the dialect of OpenAPI 3.1) with the cross-file
   ``$ref`` resolved by ``referencing``: wrong types, missing required keys, bad enum values.
2. An unknown-key pass (``strict=True``, the default). Almost no spec object says
   ``additionalProperties: false``, so JSON Schema accepts ``"minimum_shuld_match"`` silently.
   The pass walks the body along the schema (``$ref`` followed, ``allOf`` merged, of
   ``anyOf``/``oneOf`` only the branches that fit) and reports any key that no applicable
   ``properties``/``patternProperties``/``additionalProperties``/``unevaluatedProperties`` admits.

How the spec is read (each point is needed for correct results; see the code for details):

- YAML 1.2 scalars: unquoted ``no``/``yes`` stay strings (PyYAML would make them booleans).
- ``discriminator`` (mapping ``Property`` on ``type``, analysis components) selects the branch,
  as OpenAPI defines; plain JSON Schema would try all 48 field types per mapping field.
- ``oneOf`` is checked as ``anyOf``: the spec's alternatives overlap (sort clauses), OpenSearch
  parses by key, so only "matches no branch" is an error.
- ``KnnVectorProperty`` no longer requires ``dimension`` when ``model_id`` is given (spec bug).

Limits of the unknown-key pass (conservative: it rather misses than invents):

- An object is checked only where an applicable schema declares non-empty ``properties`` (or
  ``patternProperties`` / ``additionalProperties: false``). Free-form objects accept any key, as
  the spec says: ``_meta``, index ``settings`` (custom settings are allowed), script ``params``,
  knn ``method_parameters``, knn method ``parameters`` (so ``{"nprobe": 8}`` is not caught).
- Field-keyed maps (``term``, ``terms``, ``knn``, mapping ``properties``) accept any name: a
  misspelt *field* is invisible, and so is a misspelt ``_name``/``boost`` in ``terms`` (it reads
  as a field; pass 1 usually objects to its value instead).
- If no branch of an ``anyOf``/``oneOf`` fits, keys are checked against the union of the
  branches that at least want the same JSON type; if none does, the pass stops there (pass 1
  reports the mismatch). ``unevaluatedProperties`` counts like a per-schema
  ``additionalProperties``; ``if``/``then``/``else``/``not`` never admit keys.
- Keys OpenSearch accepts but the spec lacks would be false positives: pass ``strict=False``
  and record the spec gap. Known spec gap not worked around: ``FunctionScoreContainer`` allows
  at most one key, so ``{"script_score": ..., "weight": 2}`` in ``function_score.functions``
  fails pass 1.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, urldefrag, urljoin

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

# jsonschema ships no type information (no py.typed); its names are Any to mypy.
from jsonschema import Draft202012Validator, validators  # type: ignore[import-untyped, unused-ignore]
from jsonschema.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ValidationError,
    relevance,
)
from jsonschema.protocols import Validator  # type: ignore[import-untyped, unused-ignore]
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

__all__ = [
    "ENV_VAR",
    "INDEX_CREATE_BODY",
    "KNN_TRAIN_BODY",
    "QUERY",
    "SEARCH_BODY",
    "SPEC_DIR",
    "SpecViolation",
    "Violation",
    "require_spec",
    "spec_violations",
    "validate_against",
    "validate_index_create_body",
    "validate_knn_train_body",
    "validate_query",
    "validate_search_body",
]

# --------------------------------------------------------------------------- locating the spec

ENV_VAR: Final = "EBR_SHARED_DIR"
"""Names the shared folder (the one holding ``data/opensearch-api-spec``); read at import time."""

# tests/support/opensearch_spec.py -> parents[2] is the repository root.
_REPO_ROOT: Final = Path(__file__).resolve().parents[2]


def _spec_dir_candidate() -> Path:
    shared = os.environ.get(ENV_VAR)
    base = Path(shared).expanduser() if shared else _REPO_ROOT.parent / "shared"
    return base / "data" / "opensearch-api-spec"


_SPEC_DIR_CANDIDATE: Final = _spec_dir_candidate()
SPEC_DIR: Final[Path | None] = (
    _SPEC_DIR_CANDIDATE
    if (_SPEC_DIR_CANDIDATE / "spec" / "namespaces" / "_core.yaml").is_file()
    else None
)
"""Root of the OpenAPI spec checkout (contains ``spec/``), or None when it is not available."""


def require_spec() -> Path:
    """Return ``SPEC_DIR``, or skip the calling test with a reason naming the missing path."""
    if SPEC_DIR is None:
        pytest.skip(
            f"OpenSearch API spec not found at {_SPEC_DIR_CANDIDATE}: set {ENV_VAR} to the shared "
            "folder that holds data/opensearch-api-spec"
        )
    return SPEC_DIR


# --------------------------------------------------------------------------- schema locations

# Locations are relative to ``spec/``; '/' inside a JSON-pointer segment is written '~1'.
SEARCH_BODY: Final = (
    "namespaces/_core.yaml#/components/requestBodies/search/content/application~1json/schema"
)
QUERY: Final = "schemas/_common.query_dsl.yaml#/components/schemas/QueryContainer"
INDEX_CREATE_BODY: Final = (
    "namespaces/indices.yaml#/components/requestBodies/indices.create"
    "/content/application~1json/schema"
)
KNN_TRAIN_BODY: Final = (
    "namespaces/knn.yaml#/components/requestBodies/knn.train_model/content/application~1json/schema"
)

# A synthetic, never-resolvable base URI (.invalid is reserved): cross-file refs such as
# ``../schemas/x.yaml#/...`` resolve against it like paths, and no machine path leaks into errors.
_BASE_URI: Final = "https://opensearch-api-spec.invalid/spec/"

# --------------------------------------------------------------------------- violations


@dataclass(frozen=True)
class Violation:
    """One problem in a body: where (JSONPath-like, ``$.query.bool.filter[0]``) and what."""

    path: str
    message: str
    kind: Literal["schema", "unknown-key"]

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SpecViolation(AssertionError):
    """A body does not conform to the OpenSearch API spec; lists every violation found."""

    def __init__(self, what: str, violations: Sequence[Violation]) -> None:
        self.what = what
        self.violations: tuple[Violation, ...] = tuple(violations)
        count = len(self.violations)
        header = f"{what} does not conform to the OpenSearch API spec ({count} violation(s)):"
        lines = [header, *(f"  - {v}" for v in self.violations)]
        super().__init__("\n".join(lines))

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(v.path for v in self.violations)


_PLAIN_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _json_path(parts: Iterable[str | int]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}"
        else:
            out += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _shorten(text: str, limit: int = 240) -> str:
    # jsonschema messages embed repr(instance), which for a whole query is unreadable.
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- loading


def _yaml_loader() -> type[Any]:
    """A safe loader with YAML 1.2 booleans and no timestamps.

    PyYAML implements YAML 1.1, where unquoted ``no``/``yes``/``on``/``off`` are booleans. The
    spec is written for YAML 1.2 tooling, so e.g. ``TermVectorOption`` lists ``no`` meaning the
    string "no"; with 1.1 rules ``"term_vector": "no"`` would be rejected. JSON has no dates either.
    """
    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~8x faster
    bool_tag, timestamp_tag = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"
    loader: type[Any] = type("_SpecYamlLoader", (base,), {})
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (bool_tag, timestamp_tag)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return loader


def _patch_knn_vector_property(document: dict[str, Any]) -> bool:
    """Work around one known spec bug: ``KnnVectorProperty`` requires ``dimension``.

    A model-backed field is ``{"type": "knn_vector", "model_id": "..."}`` and nothing else (the
    dimension comes from the trained model; see docs/architecture.md), but the spec lists
    ``dimension`` as required unconditionally. Only that requirement is relaxed: ``dimension`` stays
    required unless ``model_id`` is present. Returns False (a no-op) once the spec is fixed.
    """
    schema = document.get("components", {}).get("schemas", {}).get("KnnVectorProperty", {})
    for part in schema.get("allOf", []):
        props = part.get("properties", {}) if isinstance(part, dict) else {}
        required = part.get("required", []) if isinstance(part, dict) else []
        if props.get("type", {}).get("enum") == ["knn_vector"] and "dimension" in required:
            part["required"] = [name for name in required if name != "dimension"]
            part["if"] = {"not": {"required": ["model_id"]}}
            part["then"] = {"required": ["dimension"]}
            return True
    return False


# OpenAPI ``discriminator`` (e.g. mapping ``Property`` on ``type``, 48 branches) means "the value of
# this key picks the branch". Plain JSON Schema ignores it and tries every ``oneOf`` branch, which
# (a) is exponential in the nesting of object properties (seconds for a small mapping) and (b)
# turns one bad field deep inside into "not valid under any of the given schemas" at the top.
# So at load time each discriminated ``oneOf`` gets a value -> branch table under this key, and
# both passes select the branch from it.
_DISCRIMINATOR_TABLE: Final = "x-ebr-discriminator-table"


@dataclass(frozen=True)
class _Discriminator:
    property: str
    branches: Mapping[Any, int]  # discriminator value -> index into oneOf
    default: int | None  # branch when the key is absent (``x-default``), if any

    def pick(self, instance: Mapping[str, Any]) -> int | None | ValidationError:
        if self.property not in instance:
            if self.default is None:
                return None  # no way to tell: fall back to plain oneOf
            return self.default
        value = instance[self.property]
        if isinstance(value, str) and value in self.branches:
            return self.branches[value]
        expected = ", ".join(sorted(map(str, self.branches)))
        return ValidationError(
            f"{value!r} is not a known {self.property!r}; the spec knows: {expected}",
            path=[self.property],
        )


def _discriminated_one_of(
    validator: Validator, one_of: list[Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    table = schema.get(_DISCRIMINATOR_TABLE)
    if isinstance(table, _Discriminator) and isinstance(instance, Mapping):
        picked = table.pick(instance)
        if isinstance(picked, ValidationError):
            yield picked
            return
        if picked is not None:
            yield from validator.descend(instance, one_of[picked], schema_path=picked)
            return
    # The spec writes ``oneOf`` for alternatives that overlap (SortCombinations: ``{"_score":
    # {"order": "desc"}}`` is both SortOptions and FieldWithOrder), where OpenSearch's parser just
    # goes by the keys. "Valid under each of" is then a spec artefact, never a bug in our body, so
    # oneOf is checked as anyOf: only "valid under none" is reported.
    yield from _ANY_OF(validator, one_of, instance, schema)


_ANY_OF: Final = Draft202012Validator.VALIDATORS["anyOf"]
_SpecValidator: Final = validators.extend(Draft202012Validator, {"oneOf": _discriminated_one_of})


class _Spec:
    """The parsed spec as a ``referencing`` registry, plus per-location validators."""

    def __init__(self, spec_dir: Path) -> None:
        loader = _yaml_loader()
        documents: dict[str, Any] = {}
        root = spec_dir / "spec"
        self.knn_vector_patched = False
        # Every file (~0.5 s with libyaml), so any component is addressable by validate_against.
        for path in sorted(root.glob("*/*.yaml")):
            document = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
            if path.name == "_common.mapping.yaml":
                self.knn_vector_patched = _patch_knn_vector_property(document)
            documents[_BASE_URI + path.relative_to(root).as_posix()] = document
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT202012.create_resource(doc)) for uri, doc in documents.items()
        )
        self._resolver = self.registry.resolver()
        self._contents: dict[str, Any] = {}
        self._validators: dict[str, Validator] = {}
        # The registry holds these very dicts, so annotating them afterwards is seen by lookups.
        self.discriminators = sum(self._annotate(uri + "#", doc) for uri, doc in documents.items())

    @staticmethod
    def absolute(location: str) -> str:
        """``schemas/x.yaml#/a`` -> absolute URI with an explicit (maybe empty) fragment."""
        return _Spec.join(_BASE_URI, location)

    @staticmethod
    def join(base: str, ref: str) -> str:
        url, fragment = urldefrag(urljoin(base, ref))
        return f"{url}#{fragment}"

    def contents(self, uri: str) -> Any:
        if uri not in self._contents:
            try:
                self._contents[uri] = self._resolver.lookup(uri).contents
            except Unresolvable as error:  # the spec's layout changed under us: say so plainly
                raise LookupError(f"no schema at {uri} in the OpenSearch API spec") from error
        return self._contents[uri]

    def validator(self, uri: str) -> Validator:
        if uri not in self._validators:
            self.contents(uri)  # fail early with a clear LookupError
            self._validators[uri] = _SpecValidator({"$ref": uri}, registry=self.registry)
        return self._validators[uri]

    def static_views(self, uri: str, seen: frozenset[str] = frozenset()) -> list[_View]:
        """Schema objects applying at ``uri`` whatever the instance: ``$ref`` and ``allOf``."""
        schema = self.contents(uri)
        if uri in seen or not isinstance(schema, Mapping):
            return []
        seen |= {uri}
        views: list[_View] = [(uri, schema)]
        if isinstance(schema.get("$ref"), str):
            views += self.static_views(self.join(uri, schema["$ref"]), seen)
        for i in range(len(schema.get("allOf", ()))):
            views += self.static_views(_child(uri, "allOf", i), seen)
        return views

    def _annotate(self, uri: str, node: Any, segments: tuple[str | int, ...] = ()) -> int:
        """Attach a ``_Discriminator`` to every discriminated ``oneOf`` below ``node``."""
        # The URI is only built where a discriminator sits: this walk visits ~70k nodes.
        if isinstance(node, list):
            return sum(self._annotate(uri, item, segments + (i,)) for i, item in enumerate(node))
        if not isinstance(node, dict):
            return 0
        count = sum(self._annotate(uri, v, segments + (k,)) for k, v in node.items())
        discriminator, one_of = node.get("discriminator"), node.get("oneOf")
        if not (isinstance(discriminator, Mapping) and isinstance(one_of, list)):
            return count
        name = discriminator.get("propertyName")
        if not isinstance(name, str):
            return count
        here = _child(uri, *segments)
        branches: dict[Any, int] = {}
        for index in range(len(one_of)):
            values = self._discriminator_values(_child(here, "oneOf", index), name)
            if not values:  # a branch we cannot name: keep plain oneOf semantics
                return count
            for value in values:
                branches.setdefault(value, index)
        default = discriminator.get("x-default")
        node[_DISCRIMINATOR_TABLE] = _Discriminator(name, branches, branches.get(default))
        return count + 1

    def _discriminator_values(self, uri: str, name: str) -> list[Any]:
        values: list[Any] = []
        for view_uri, view in self.static_views(uri):
            prop_uri = _child(view_uri, "properties", name)
            if name not in (view.get("properties") or {}):
                continue
            for _, prop in self.static_views(prop_uri):
                values += list(prop.get("enum", ()))
                if "const" in prop:
                    values.append(prop["const"])
        return values


@functools.cache
def _load(spec_dir: Path) -> _Spec:
    return _Spec(spec_dir)


def _spec() -> _Spec:
    return _load(require_spec())


# --------------------------------------------------------------------------- pass 1: JSON Schema


def _wrong_kind(error: ValidationError) -> bool:
    """The instance is not even the JSON type this (branch) schema describes."""
    if error.relative_path:
        return False
    if error.validator == "type":
        return True
    return error.validator in ("anyOf", "oneOf") and all(_wrong_kind(e) for e in error.context)


def _branches(error: ValidationError) -> list[list[ValidationError]]:
    grouped: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        grouped.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(grouped.values())


def _schema_violations(error: ValidationError) -> list[Violation]:
    """Flatten an error: follow the one anyOf/oneOf branch that fits, else summarise branches.

    (``jsonschema.best_match`` keeps only one error and, inside a context, prefers weak
    anyOf/oneOf errors over e.g. a missing required key, so it is not used.)
    """
    if not error.context:
        return [Violation(_json_path(error.absolute_path), _shorten(error.message), "schema")]
    branches = _branches(error)
    plausible = [errs for errs in branches if not any(_wrong_kind(e) for e in errs)]
    if len(plausible) == 1:
        return [v for e in plausible[0] for v in _schema_violations(e)]
    wanted = []
    for errs in plausible or branches:
        best = max(errs, key=relevance)  # the shallowest, most specific error of that branch
        where = _json_path(best.relative_path)
        wanted.append(("" if where == "$" else where[1:] + ": ") + _shorten(best.message, 100))
    shown = "; ".join(wanted[:6]) + ("; …" if len(wanted) > 6 else "")
    message = f"{_shorten(error.message, 160)} [branches: {shown}]"
    return [Violation(_json_path(error.absolute_path), message, "schema")]


# --------------------------------------------------------------------------- pass 2: unknown keys

_View = tuple[str, Mapping[str, Any]]  # (absolute URI of a schema object, the schema object)


def _child(uri: str, *segments: str | int) -> str:
    escaped = (quote(str(s).replace("~", "~0").replace("/", "~1"), safe="") for s in segments)
    return uri + "".join("/" + s for s in escaped)


def _expand(spec: _Spec, uri: str, instance: Any, seen: frozenset[str]) -> list[_View] | None:
    """All schema objects that apply to ``instance`` at ``uri``; None if no branch fits."""
    if uri in seen:  # a $ref/allOf cycle that consumes no instance
        return []
    seen = seen | {uri}
    schema = spec.contents(uri)
    if not isinstance(schema, Mapping):  # boolean schemas admit nothing by themselves
        return []
    views: list[_View] = [(uri, schema)]
    subschemas: list[str] = []
    if isinstance(schema.get("$ref"), str):
        subschemas.append(spec.join(uri, schema["$ref"]))
    subschemas += [_child(uri, "allOf", i) for i in range(len(schema.get("allOf", ())))]
    for keyword in ("anyOf", "oneOf"):
        branches = [_child(uri, keyword, i) for i in range(len(schema.get(keyword, ())))]
        if not branches:
            continue
        table = schema.get(_DISCRIMINATOR_TABLE)
        picked = (
            table.pick(instance)
            if keyword == "oneOf"
            and isinstance(table, _Discriminator)
            and isinstance(instance, Mapping)
            else None
        )
        if isinstance(picked, ValidationError):
            return None  # unknown discriminator value: pass 1 reports it
        fitting = [branches[picked]] if picked is not None else _fitting(spec, branches, instance)
        if fitting is None:
            return None
        subschemas += fitting
    for sub in subschemas:
        expanded = _expand(spec, sub, instance, seen)
        if expanded is None:
            return None
        views += expanded
    return views


def _fitting(spec: _Spec, branches: Sequence[str], instance: Any) -> list[str] | None:
    """The anyOf/oneOf branches whose keys apply: the valid ones; if none is valid, every branch
    that failed for a reason other than a wrong JSON type, so a bad value deep inside does not hide
    a typo next to it (the body already fails then, so a wider union cannot turn a pass into a
    failure); None if every branch wants another JSON type (pass 1 reports that)."""
    valid, plausible = [], []
    for branch in branches:
        errors = list(spec.validator(branch).iter_errors(instance))
        if not errors:
            valid.append(branch)
        elif not any(_wrong_kind(e) for e in errors):
            plausible.append(branch)
    return valid or plausible or None


_MISSING: Final = object()


def _unknown_keys(
    spec: _Spec, instance: Any, uris: Sequence[str], path: tuple[str | int, ...]
) -> list[Violation]:
    views: list[_View] = []
    for uri in uris:
        expanded = _expand(spec, uri, instance, frozenset())
        if expanded is None:
            return []
        views += expanded
    found: list[Violation] = []
    if isinstance(instance, Mapping):
        closed = any(
            view.get("properties")
            or view.get("patternProperties")
            or view.get("additionalProperties") is False
            for _, view in views
        )
        known = sorted({name for _, view in views for name in view.get("properties") or {}})
        for key, value in instance.items():
            admitted, children = False, []
            for uri, view in views:
                matched = False
                if key in (view.get("properties") or {}):
                    matched = True
                    children.append(_child(uri, "properties", key))
                for pattern in view.get("patternProperties") or {}:
                    if re.search(pattern, key):
                        matched = True
                        children.append(_child(uri, "patternProperties", pattern))
                if matched:
                    admitted = True
                    continue
                for keyword in ("additionalProperties", "unevaluatedProperties"):
                    sub = view.get(keyword, _MISSING)
                    if sub is _MISSING or sub is False:
                        continue
                    admitted = True
                    if isinstance(sub, Mapping):
                        children.append(_child(uri, keyword))
            if closed and not admitted:
                found.append(_unknown_key(path + (key,), key, known))
            elif children:
                found += _unknown_keys(spec, value, children, path + (key,))
    elif isinstance(instance, list):
        items = [
            _child(uri, "items") for uri, view in views if isinstance(view.get("items"), Mapping)
        ]
        if items:
            for index, item in enumerate(instance):
                found += _unknown_keys(spec, item, items, path + (index,))
    return found


def _unknown_key(path: tuple[str | int, ...], key: str, known: Sequence[str]) -> Violation:
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    if close:
        message += " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    shown = ", ".join(known[:20]) + (", …" if len(known) > 20 else "")
    message += f"; the spec allows here: {shown}"
    return Violation(_json_path(path), message, "unknown-key")


# --------------------------------------------------------------------------- public API


def spec_violations(location: str, instance: Any, *, strict: bool = True) -> list[Violation]:
    """Every violation of ``instance`` against the schema at ``location`` (relative to ``spec/``,
    e.g. ``"schemas/_core.search.yaml#/components/schemas/Rescore"``), ordered by path.

    Skips the calling test when the spec is absent.
    """
    spec = _spec()
    uri = spec.absolute(location)
    found = [v for e in spec.validator(uri).iter_errors(instance) for v in _schema_violations(e)]
    if strict:
        found += _unknown_keys(spec, instance, [uri], ())
    return sorted(set(found), key=lambda v: (v.path, v.kind, v.message))


def validate_against(
    location: str, instance: Any, *, what: str | None = None, strict: bool = True
) -> None:
    """Raise ``SpecViolation`` listing every violation of ``instance`` against ``location``."""
    violations = spec_violations(location, instance, strict=strict)
    if violations:
        raise SpecViolation(what or location, violations)


def validate_search_body(body: dict[str, Any], *, strict: bool = True) -> None:
    """Check a ``POST /{index}/_search`` request body."""
    validate_against(SEARCH_BODY, body, what="search request body", strict=strict)


def validate_query(query: dict[str, Any], *, strict: bool = True) -> None:
    """Check one query clause (a ``QueryContainer`` such as ``{"bool": {...}}``)."""
    validate_against(QUERY, query, what="query clause", strict=strict)


def validate_index_create_body(body: dict[str, Any], *, strict: bool = True) -> None:
    """Check a ``PUT /{index}`` body (settings, mappings, aliases)."""
    validate_against(INDEX_CREATE_BODY, body, what="indices.create body", strict=strict)


def validate_knn_train_body(body: dict[str, Any], *, strict: bool = True) -> None:
    """Check a ``POST /_plugins/_knn/models/{model_id}/_train`` body."""
    validate_against(KNN_TRAIN_BODY, body, what="knn.train_model body", strict=strict)
