"""Checking a batch of documents against the schema before anything is written.

Every check of the bad-input policy happens here, on the whole batch, before a store opens a
transaction: a batch either passes whole or raises the first problem found, in batch order.
Nothing here depends on a store's storage, so every store applies the same policy.

Bad input policy: the whole batch is rejected, nothing of it is written, earlier batches are
untouched, and the error (a :class:`DocumentError` subclass) names the document id, its
position in the batch and the field:

- :class:`UnknownFieldError`: a namespace or embedding key the schema does not declare (or a
  cluster namespace, which the store fills itself);
- :class:`DimensionError`: a vector whose shape is not ``(dimension,)``;
- :class:`InvalidVectorError`: a vector with NaN or infinite values, a zero vector (cosine
  is undefined), or one that is not finite as float32;
- :class:`DuplicateIdError`: the same id twice in one batch (which one should win is a
  guess we do not make);
- :class:`InvalidTextError`: an id, term, text or source string that is not valid UTF-8
  text (``bytes``, lone surrogates), or an empty term value;
- :class:`InvalidDocumentError`: anything else malformed (id missing or longer than 512
  UTF-8 bytes, a rank that is not a finite number, a source that is not a JSON object).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, SupportsFloat

import numpy as np
import numpy.typing as npt
import orjson

from ebr.errors import EbrError
from ebr.mappings.schema import Namespace, Schema
from ebr.mappings.text_analysis import ANALYZERS
from ebr.stores.protocol import IndexDocument

#: Longest document id in UTF-8 bytes (OpenSearch's ``_id`` limit, so both stores agree).
MAX_ID_BYTES = 512


class DocumentError(EbrError):
    """A document of a batch that cannot be stored; the whole batch was rejected.

    ``doc_id`` is the document's id (``repr`` of whatever was given when the id itself is
    the problem), ``position`` its 0-based place in the batch, ``field`` the offending field
    (``terms.location``, ``embeddings.m``, ``id``...).
    """

    def __init__(self, doc_id: str, position: int, field: str, problem: str) -> None:
        self.doc_id = doc_id
        self.position = position
        self.field = field
        self.problem = problem
        super().__init__(f"document {doc_id!r} (record {position} of the batch), {field}: "
                         f"{problem}; the batch was rejected and nothing of it written")


class UnknownFieldError(DocumentError):
    """A namespace or embedding key the schema does not declare."""


class DimensionError(DocumentError):
    """A vector of the wrong dimension."""


class InvalidVectorError(DocumentError):
    """A vector with NaN/infinite values, or a zero vector."""


class DuplicateIdError(DocumentError):
    """The same id twice in one batch."""


class InvalidTextError(DocumentError):
    """Text that is not valid UTF-8 (bytes, lone surrogates), or an empty term value."""


class InvalidDocumentError(DocumentError):
    """A malformed id, rank or source."""


@dataclass(frozen=True)
class PreparedDocument:
    """A checked document: terms as ``"ns:value"`` strings (sorted, unique, cluster terms not
    yet assigned), float32 vectors by key, the source as compact JSON."""

    id: str
    terms: tuple[str, ...]
    vectors: Mapping[str, npt.NDArray[np.float32]]
    rank: float
    source_json: str


def prepare_batch(schema: Schema, documents: Iterable[IndexDocument | PreparedDocument]
                  ) -> list[PreparedDocument]:
    """Check and normalise a batch; raises a :class:`DocumentError` subclass.  Documents
    prepared already (by an earlier call: the ingest pipeline checks a batch before it hands
    it to a store) are only checked for ids repeated in the batch."""
    prepared: list[PreparedDocument] = []
    seen: dict[str, int] = {}
    batch = list(documents)  # the caller's iterator runs outside the errstate below
    # Overflows are reported as non-finite vectors (``_vector``), not warned of: one
    # errstate for the batch, as entering one costs more than a vector's checks.
    with np.errstate(over="ignore"):
        for position, doc in enumerate(batch):
            if isinstance(doc, PreparedDocument):
                _check_repeat(seen, doc.id, position)
                prepared.append(doc)
                continue
            if not isinstance(doc, IndexDocument):
                raise InvalidDocumentError(repr(doc)[:80], position, "document",
                                           f"expected an IndexDocument, got {type(doc).__name__}")
            doc_id = check_id(doc.id, position)
            _check_repeat(seen, doc_id, position)
            prepared.append(_prepare(schema, doc, doc_id, position))
    return prepared


def _check_repeat(seen: dict[str, int], doc_id: str, position: int) -> None:
    if doc_id in seen:
        raise DuplicateIdError(doc_id, position, "id",
                               f"the id appears twice in the batch (first at record "
                               f"{seen[doc_id]}); send one version per batch")
    seen[doc_id] = position


def check_id(value: object, position: int) -> str:
    """A document id: non-empty UTF-8 text of at most :data:`MAX_ID_BYTES` bytes."""
    if not isinstance(value, str):
        problem = (InvalidTextError if isinstance(value, bytes | bytearray)
                   else InvalidDocumentError)
        raise problem(repr(value), position, "id",
                      f"expected text (str), got {type(value).__name__}")
    size = len(value) if value.isascii() else len(_utf8(value, value, position, "id"))
    if not value:
        raise InvalidDocumentError(value, position, "id", "the id is empty")
    if size > MAX_ID_BYTES:
        raise InvalidDocumentError(value[:40] + "...", position, "id",
                                   f"the id is {size} UTF-8 bytes; at most "
                                   f"{MAX_ID_BYTES} are allowed")
    return value


def _prepare(schema: Schema, doc: IndexDocument, doc_id: str, position: int) -> PreparedDocument:
    terms: set[str] = set()
    for ns, values in _items(doc.terms, doc_id, position, "terms"):
        _check_namespace(schema, ns, doc_id, position, "terms")
        where = f"terms.{ns}"
        if isinstance(values, str | bytes):  # a lone string would be split into characters
            raise InvalidDocumentError(doc_id, position, where,
                                       "expected a list of term values, got a single "
                                       f"{type(values).__name__}")
        try:
            items = list(values)
        except TypeError:
            raise InvalidDocumentError(doc_id, position, where, "expected a list of term "
                                       f"values, got {type(values).__name__}") from None
        for value in items:
            text = _text(value, doc_id, position, where)
            if not text:
                raise InvalidTextError(doc_id, position, where, "empty term value")
            terms.add(f"{ns}:{text}")
    for ns, value in _items(doc.text, doc_id, position, "text"):
        namespace = _check_namespace(schema, ns, doc_id, position, "text")
        text = _text(value, doc_id, position, f"text.{ns}")
        terms.update(f"{ns}:{t}" for t in ANALYZERS[namespace.analyzer](text))

    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for key, value in _items(doc.embeddings, doc_id, position, "embeddings"):
        spec = schema.key(key)
        if spec is None:
            known = ", ".join(k.name for k in schema.keys) or "none"
            raise UnknownFieldError(doc_id, position, f"embeddings.{key}",
                                    f"unknown embedding key {key!r}; the schema declares: {known}")
        vectors[key] = _vector(value, spec.dimension, doc_id, position, f"embeddings.{key}")

    rank = doc.rank
    number = type(rank) is float or (isinstance(rank, Real) and not isinstance(rank, bool))
    if not number or not math.isfinite(_float(rank)):
        raise InvalidDocumentError(doc_id, position, "rank",
                                   f"expected a finite number, got {rank!r}")
    return PreparedDocument(doc_id, tuple(sorted(terms)), vectors, float(rank),
                            _source_json(doc.source, doc_id, position))


def _items(mapping: object, doc_id: str, position: int, where: str) -> list[tuple[str, Any]]:
    if type(mapping) is not dict and not isinstance(mapping, Mapping):
        raise InvalidDocumentError(doc_id, position, where,
                                   f"expected a mapping, got {type(mapping).__name__}")
    items = list(mapping.items())
    for name, _ in items:
        if not isinstance(name, str):
            raise InvalidDocumentError(doc_id, position, where,
                                       f"names must be text, got {name!r}")
        if not name.isascii():
            _utf8(name, doc_id, position, where)
    return items


def _check_namespace(schema: Schema, ns: str, doc_id: str, position: int,
                     where: str) -> Namespace:
    namespace = schema.namespace(ns)
    if namespace is None:
        if schema.is_term_namespace(ns):
            raise UnknownFieldError(doc_id, position, f"{where}.{ns}",
                                    f"{ns!r} holds cluster terms, which the store assigns "
                                    "from the embedding; do not send them")
        known = ", ".join(n.name for n in schema.namespaces) or "none"
        raise UnknownFieldError(doc_id, position, f"{where}.{ns}",
                                f"unknown namespace {ns!r}; the schema declares: {known}")
    return namespace


def _text(value: object, doc_id: str, position: int, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidTextError(doc_id, position, where,
                               f"expected text (str), got {type(value).__name__}"
                               + ("; decode it as UTF-8 first" if isinstance(value, bytes)
                                  else ""))
    if not value.isascii():
        _utf8(value, doc_id, position, where)
    return value


def _utf8(value: str, doc_id: str, position: int, where: str) -> bytes:
    """``value`` in UTF-8, or the error naming what is not UTF-8 text (a string of ASCII
    needs no check: callers skip it after ``str.isascii``, a fraction of the cost)."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        # Lone surrogates: what bytes that were not UTF-8 become under 'surrogateescape'.
        raise InvalidTextError(doc_id, position, where,
                               f"not valid UTF-8 text ({e.reason} at character {e.start})"
                               ) from None


def _vector(value: object, dimension: int, doc_id: str, position: int,
            where: str) -> npt.NDArray[np.float32]:
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"dtype {arr.dtype}")
        if arr.dtype == np.float32:  # an encoder's output: nothing to cast (the common case)
            v32 = np.ascontiguousarray(arr)
        else:  # an overflow is reported below as non-finite (prepare_batch's errstate)
            v32 = np.ascontiguousarray(arr, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidVectorError(doc_id, position, where,
                                 f"expected a list or array of numbers ({e})") from None
    if v32.shape != (dimension,):
        raise DimensionError(doc_id, position, where,
                             f"expected shape ({dimension},), got {v32.shape}")
    # A finite, non-zero sum of squares proves every value finite (a square is never
    # negative, so an infinite or NaN one cannot cancel): the common case in one call.
    squares = float(v32.dot(v32))
    if math.isfinite(squares) and squares:
        v32.setflags(write=False)
        return v32
    # NaN and infinities survive the cast, and values beyond float32's range become infinite.
    if not np.isfinite(v32).all():
        raise InvalidVectorError(doc_id, position, where,
                                 "NaN or infinite values (or values beyond float32's range)")
    norm = np.sqrt(v32.dot(v32))  # np.linalg.norm's own formula, without its overhead
    if not np.isfinite(norm) or norm == 0:
        raise InvalidVectorError(doc_id, position, where,
                                 "a zero vector (or one whose float32 length under- or "
                                 "overflows): cosine is undefined for it")
    v32.setflags(write=False)
    return v32


def _float(value: SupportsFloat) -> float:
    """``float(value)``, or NaN for a number no float holds (``10**400``)."""
    try:
        return float(value)
    except OverflowError:
        return math.nan


#: How sources are stored when orjson cannot tell (one encoder: ``json.dumps`` with options
#: builds one per call).
_SOURCE_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
#: orjson hands anything the standard encoder might write differently to ``default`` (which
#: refuses it, so the standard path decides): subclasses, dates, dataclasses.  UUIDs and
#: enums, which the standard encoder refuses, orjson writes natively: kept as their text and
#: value.
_ORJSON_STRICT = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
                  | orjson.OPT_PASSTHROUGH_DATACLASS)


def _source_json(source: object, doc_id: str, position: int) -> str:
    if not isinstance(source, Mapping):
        raise InvalidDocumentError(doc_id, position, "source",
                                   f"expected a JSON object, got {type(source).__name__}")
    if not source:
        return "{}"
    # The common case through orjson, a fifth of the standard encoder's time (and no walk for
    # keys: orjson refuses a key that is not a string).  The same JSON text but for how
    # exponents are written (``1e16``, not ``1e+16``), the same values.  Whatever orjson
    # refuses (a key that is not a string, a lone surrogate, an integer beyond 64 bits...) or
    # writes as ``null`` (NaN, infinities: it does not refuse them) takes the standard path,
    # which decides and words the error as it always has.
    try:
        fast = orjson.dumps(source if type(source) is dict else dict(source),
                            option=_ORJSON_STRICT)
    except TypeError:  # orjson.JSONEncodeError too
        pass
    else:
        if b"null" not in fast:
            return fast.decode()
    return _standard_source_json(source, doc_id, position)


def _standard_source_json(source: Mapping[Any, Any], doc_id: str, position: int) -> str:
    try:
        text = _SOURCE_JSON.encode(dict(source))
    except (TypeError, ValueError) as e:
        raise InvalidDocumentError(doc_id, position, "source",
                                   f"not serialisable as JSON: {e}") from None
    except RecursionError:
        raise InvalidDocumentError(doc_id, position, "source",
                                   "nested too deeply to serialise as JSON") from None
    # json.dumps turns the key 1 into "1": {1: "x", "1": "y"} would read back as one key
    stack: list[object] = [source]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            bad = [k for k in value if type(k) is not str]
            if bad:
                raise InvalidDocumentError(doc_id, position, "source",
                                           f"object keys must be strings, got {bad[0]!r}")
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    _utf8(text, doc_id, position, "source")
    return text


__all__ = [
    "MAX_ID_BYTES",
    "DimensionError",
    "DocumentError",
    "DuplicateIdError",
    "InvalidDocumentError",
    "InvalidTextError",
    "InvalidVectorError",
    "PreparedDocument",
    "UnknownFieldError",
    "check_id",
    "prepare_batch",
]
