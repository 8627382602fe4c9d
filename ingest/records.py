"""Record files: the documents ``ebr encode`` embeds and the extra corpus ``ebr train`` may be
given, as JSONL objects or TSV rows keyed by a header row.

Bad lines are skipped and reported as :mod:`ebr.ingest.lines` describes; training pairs have
their own layout (:mod:`ebr.encoders.training.pairs`) but read and report lines the same way.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
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

#: A record: field name → value (``{"title": "cordless drill", "country": "us"}``).
Record = Mapping[str, Any]


@dataclass(slots=True)
class RecordFile:
    """The records of one file, the line each came from, and the lines that could not be read."""

    path: Path
    records: list[Record] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)

    def skipped_report(self) -> str:
        return skipped_report(self.path, self.skipped, len(self.records))

    def drop_unusable(self, problem: Callable[[Record], str | None]) -> None:
        """Move the records ``problem`` finds fault with to :attr:`skipped`, with its reason."""
        kept: list[tuple[Record, int]] = []
        for record, line in zip(self.records, self.lines, strict=True):
            reason = problem(record)
            if reason is None:
                kept.append((record, line))
            else:
                self.skipped.append(SkippedLine(line, reason))
        self.skipped.sort(key=lambda s: s.line)
        self.records = [r for r, _ in kept]
        self.lines = [n for _, n in kept]


def read_records(
    path: str | Path, *, format: str | None = None, max_skipped_fraction: float = MAX_SKIPPED_FRACTION
) -> RecordFile:
    """Every record of ``path``: JSONL objects, or TSV rows keyed by the header's column names
    (an empty cell is an absent field)."""
    path = Path(path)
    fmt = format_of(path, format)
    result = RecordFile(path)
    with opened_text(path, "") as handle:
        if fmt == "jsonl":
            _jsonl(handle, result)
        else:
            _tsv(handle, result)
    check_skipped(path, result.skipped, len(result.records), max_skipped_fraction, "record")
    return result


def _jsonl(handle: TextIO, result: RecordFile) -> None:
    for number, data in json_objects(handle):
        if isinstance(data, str) or not data:
            result.skipped.append(SkippedLine(number, data if isinstance(data, str) else "expected a "
                                              "non-empty JSON object"))
        else:
            result.records.append(data)
            result.lines.append(number)


def _tsv(handle: Any, result: RecordFile) -> None:
    reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if not header or any(not name for name in header) or len(set(header)) != len(header):
        raise EncoderInputError(f"{result.path}: the first row must name every column, once each; "
                                f"got {header}")
    for row in reader:
        if not row or row == [""]:
            continue
        if len(row) != len(header):
            reason = f"{len(row)} column(s), the header has {len(header)}"
            result.skipped.append(SkippedLine(reader.line_num, reason))
            continue
        record = {k: v for k, v in zip(header, row, strict=True) if v != ""}
        if not record:  # as in JSONL, an empty record is a bad line
            result.skipped.append(SkippedLine(reader.line_num, "every cell is empty"))
            continue
        result.records.append(record)
        result.lines.append(reader.line_num)
