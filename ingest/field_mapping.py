"""How a record's fields become an indexed document: the field mapping.

A mapping names, for an index's schema, the record field holding the id, the static rank,
each namespace's free text (analysed by the namespace's analyzer) or exact term values, each
embedding key's vector (when the records carry vectors), and which fields are kept as the
document's source.  JSON, e.g.::

    {"id": "product_id", "rank": "popularity",
     "text": {"title": "product_title"}, "terms": {"brand": "brand", "category": "categories"},
     "vectors": {"model-141795009": "embedding"}, "source": ["product_title", "url"]}

Without a mapping file, :meth:`FieldMapping.for_schema` reads each namespace from the field of
its name (as text when its analyzer splits words, as terms otherwise), each key's vector from
the field of its name, the id from ``id`` and the rank from ``rank``, and keeps every field
but the vectors as the source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ebr.config_files import ConfigReader, load_json_object
from ebr.errors import SchemaError
from ebr.mappings.schema import Schema
from ebr.mappings.text_analysis import WORD_ANALYZERS
from ebr.stores.protocol import IndexDocument

#: ``source`` naming every field of the record.
ALL_FIELDS = "*"


class MappingError(SchemaError):
    """A field mapping that does not fit the index's schema, or cannot be read."""


@dataclass(frozen=True)
class FieldMapping:
    """Record field names per part of a document (see the module docstring)."""

    id: str = "id"
    rank: str | None = "rank"
    text: Mapping[str, str] = field(default_factory=dict)
    terms: Mapping[str, str] = field(default_factory=dict)
    vectors: Mapping[str, str] = field(default_factory=dict)
    source: tuple[str, ...] | str = ALL_FIELDS

    @classmethod
    def for_schema(cls, schema: Schema) -> FieldMapping:
        text = {n.name: n.name for n in schema.namespaces if n.analyzer in WORD_ANALYZERS}
        terms = {n.name: n.name for n in schema.namespaces if n.name not in text}
        return cls(text=text, terms=terms, vectors={k.name: k.name for k in schema.keys})

    @classmethod
    def load(cls, path: str | Path) -> FieldMapping:
        return cls.from_dict(load_json_object(path, "field mapping", MappingError))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMapping:
        r = ConfigReader(data, "mapping", MappingError)
        parts = {}
        for part in ("text", "terms", "vectors"):
            o = r.obj(part, {})
            parts[part] = {name: o.text(name) for name in o.data}
            o.done()
        source = r.value("source", list, None)
        mapping = cls(r.text("id", "id"), r.value("rank", str, None), parts["text"],
                      parts["terms"], parts["vectors"],
                      ALL_FIELDS if source is None or source == [ALL_FIELDS] else tuple(source))
        r.done()
        return mapping

    def check(self, schema: Schema) -> None:
        """Refuse names the schema does not declare (before any record is read)."""
        for part, names in (("text", self.text), ("terms", self.terms)):
            for ns in names:
                if schema.namespace(ns) is None:
                    known = ", ".join(n.name for n in schema.namespaces) or "none"
                    raise MappingError(f"mapping.{part}: the index has no namespace {ns!r} "
                                       f"(it has: {known})")
        for key in self.vectors:
            if schema.key(key) is None:
                known = ", ".join(k.name for k in schema.keys) or "none"
                raise MappingError(f"mapping.vectors: the index has no embedding key {key!r} "
                                   f"(it has: {known})")

    def document(self, record: Mapping[str, Any],
                 embeddings: Mapping[str, Any] | None = None) -> IndexDocument | str:
        """The record as a document, or why it cannot be one (a missing id).  Value checks
        are the store's (:mod:`ebr.stores.documents`); ``embeddings`` are vectors computed
        for this record (by a model), added to those the record carries."""
        doc_id = record.get(self.id)
        if doc_id is None or doc_id == "":
            return f"no id (field {self.id!r})"
        text = {ns: _text(record[f]) for ns, f in self.text.items() if record.get(f) not in (None, "")}
        terms = {ns: _values(record[f]) for ns, f in self.terms.items()
                 if record.get(f) not in (None, "", [])}
        vectors = {key: _vector(record[f]) for key, f in self.vectors.items()
                   if record.get(f) not in (None, "")}
        vectors.update(embeddings or {})
        rank = record.get(self.rank, 0.0) if self.rank else 0.0
        if isinstance(rank, str):
            try:
                rank = float(rank)
            except ValueError:
                return f"rank (field {self.rank!r}) is not a number: {rank!r}"
        vector_fields = set(self.vectors.values())  # kept as embeddings, not twice
        source = ({f: v for f, v in record.items() if f not in vector_fields}
                  if self.source == ALL_FIELDS
                  else {f: record[f] for f in self.source if f in record})
        return IndexDocument(str(doc_id), terms, text, vectors, rank, source)


def _text(value: Any) -> Any:
    """Lists of strings are joined (several text fields into one namespace); the rest is the
    store's to check."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return value


def _vector(value: Any) -> Any:
    """A vector as JSON numbers, or as the text of a TSV/CSV cell (``0.1,0.2`` or ``[0.1 0.2]``)."""
    if isinstance(value, str):
        parts = value.strip().strip("[]").replace(",", " ").split()
        try:
            return [float(p) for p in parts]
        except ValueError:
            return value  # the store says what is wrong with it
    return value


def _values(value: Any) -> Any:
    """One value or a list of them; numbers become their text (ids, codes, years)."""
    items = value if isinstance(value, list) else [value]
    return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in items]
