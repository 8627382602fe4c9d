"""Training pairs read from TSV or JSONL: a query record, a document record, an optional label.

JSONL, one object per line::

    {"query": {"text": "cordless drill", "country": "us"}, "doc": {"id": "1002", "title": "..."}, "label": 3}
    {"query": "angle bracket", "doc": "Simpson Strong-Tie 12-Gauge Angle"}

A string in place of a record is shorthand for ``{"text": ...}``.  TSV has a header row whose
columns are ``query.<field>``, ``doc.<field>`` and optionally ``label``; a bare ``query`` or
``doc`` column means ``query.text`` / ``doc.text``.  A document's optional ``id`` field names it
(otherwise its fields do): the trainer keeps a document once per batch and once in the corpus.

``label`` is a relevance grade or 0/1 click label; a pair is a positive when its label is at
least the configured threshold (pairs without a label are positives).  Pairs below it are kept
as labelled negatives for ROC AUC.

A bad line (malformed JSON, missing side, wrong type, wrong number of columns) is skipped and
reported with its line number in :attr:`PairFile.skipped`; it is never dropped silently.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ebr.encoders.errors import EncoderInputError
from ebr.ingest.lines import (
    MAX_SKIPPED_FRACTION,
    SkippedLine,
    check_skipped,
    format_of,
    json_objects,
    opened_text,
    skipped_report,
)
from ebr.ingest.records import Record


@dataclass(frozen=True, slots=True)
class Pair:
    """One (query, document) example; ``label`` is None when the file gives none."""

    query: Record
    doc: Record
    label: float | None = None
    line: int = 0

    @property
    def doc_key(self) -> str:
        """The document's identity: its ``id`` field, else its fields as canonical JSON."""
        return doc_key(self.doc)


def doc_key(doc: Record) -> str:
    """A document record's identity (see :class:`Pair`)."""
    ident = doc.get("id")
    if isinstance(ident, str | int) and not isinstance(ident, bool):
        return f"id:{ident}"
    return "fields:" + json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(slots=True)
class PairFile:
    """The pairs of one file and the lines that could not be read."""

    path: Path
    pairs: list[Pair] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)

    def skipped_report(self) -> str:
        """What was skipped, line by line (the first few); empty when nothing was."""
        return skipped_report(self.path, self.skipped, len(self.pairs))

    def drop_unusable(self, query_problem: Callable[[Record], str | None],
                      doc_problem: Callable[[Record], str | None]) -> None:
        """Move the pairs whose query or document the towers cannot read to :attr:`skipped`."""
        kept: list[Pair] = []
        for pair in self.pairs:
            reason = query_problem(pair.query)
            reason = f"query: {reason}" if reason else (f"doc: {r}" if (r := doc_problem(pair.doc)) else None)
            if reason is None:
                kept.append(pair)
            else:
                self.skipped.append(SkippedLine(pair.line, reason))
        self.skipped.sort(key=lambda s: s.line)
        self.pairs = kept


def read_pairs(
    path: str | Path, *, format: str | None = None, max_skipped_fraction: float = MAX_SKIPPED_FRACTION
) -> PairFile:
    """Read every pair of ``path`` (format from the suffix unless given).

    Raises :class:`EncoderInputError` when the file cannot be read, holds no valid pair, or more
    than ``max_skipped_fraction`` of its lines are bad (a sign of the wrong file or format, not
    of a few bad records).
    """
    path = Path(path)
    fmt = format_of(path, format)
    result = PairFile(path)
    with opened_text(path, "pairs ") as handle:
        for number, item in _jsonl(handle) if fmt == "jsonl" else _tsv(handle, path):
            if isinstance(item, Pair):
                result.pairs.append(item)
            else:
                result.skipped.append(SkippedLine(number, item))
    check_skipped(path, result.skipped, len(result.pairs), max_skipped_fraction, "pair")
    return result


def _jsonl(handle: TextIO) -> Iterator[tuple[int, Pair | str]]:
    for number, data in json_objects(handle):
        if isinstance(data, str):
            yield number, data
            continue
        unknown = sorted(set(data) - {"query", "doc", "label"})
        if unknown:
            yield number, f"unknown key {unknown[0]!r} (known: query, doc, label)"
            continue
        yield number, _pair(data.get("query"), data.get("doc"), data.get("label"), number)


def _tsv(handle: Any, path: Path) -> Iterator[tuple[int, Pair | str]]:
    reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise EncoderInputError(f"{path}: empty file (a TSV pair file starts with a header row)")
    columns = [_column(name, path) for name in header]
    repeated = sorted({name for name, column in zip(header, columns, strict=True)
                       if columns.count(column) > 1})
    if repeated:  # e.g. "doc" and "doc.text", or "label" twice: one would silently overwrite the other
        raise EncoderInputError(f"{path}: header columns {', '.join(map(repr, repeated))} name the same "
                                "field; keep one")
    if not any(side == "query" for side, _ in columns) or not any(side == "doc" for side, _ in columns):
        raise EncoderInputError(f"{path}: the header needs query and doc columns (query, doc, "
                                f"query.<field>, doc.<field>, label); got {header}")
    for row in reader:
        number = reader.line_num
        if not row or row == [""]:
            continue
        if len(row) != len(columns):
            yield number, f"{len(row)} column(s), the header has {len(columns)}"
            continue
        query: dict[str, Any] = {}
        doc: dict[str, Any] = {}
        label: Any = None
        for (side, name), value in zip(columns, row, strict=True):
            if side == "label":
                label = value
            elif value != "":  # an empty cell is an absent field
                (query if side == "query" else doc)[name] = value
        yield number, _pair(query, doc, label, number, label_text=True)


def _column(name: str, path: Path) -> tuple[str, str]:
    if name == "label":
        return "label", ""
    if name in ("query", "doc"):
        return name, "text"
    side, dot, rest = name.partition(".")
    if side in ("query", "doc") and dot and rest:
        return side, rest
    raise EncoderInputError(f"{path}: header column {name!r} is not query, doc, query.<field>, "
                            "doc.<field> or label")


def _pair(query: Any, doc: Any, label: Any, number: int, *, label_text: bool = False) -> Pair | str:
    sides: list[Record] = []
    for side, value in (("query", query), ("doc", doc)):
        if isinstance(value, str):
            value = {"text": value}
        if not isinstance(value, dict) or not value:
            got = "nothing" if value is None else "an empty record" if value == {} else type(value).__name__
            return f"{side}: expected a record (object) or a string, got {got}"
        sides.append(value)
    parsed: float | None = None
    if label is not None and label != "":
        if label_text and isinstance(label, str):
            try:
                label = float(label)
            except ValueError:
                return f"label: expected a number, got {label!r}"
        if isinstance(label, bool) or not isinstance(label, int | float) or not math.isfinite(label):
            return f"label: expected a finite number, got {label!r}"
        parsed = float(label)
    return Pair(sides[0], sides[1], parsed, number)
