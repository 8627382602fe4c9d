"""Record files: the documents ``ebr ingest`` writes, ``ebr encode`` embeds and the extra corpus
``ebr train`` may be given, as JSONL objects, TSV or CSV rows keyed by a header row, or
Parquet rows.

Bad lines are skipped and reported as :mod:`ebr.ingest.lines` describes; training pairs have
their own layout (:mod:`ebr.encoders.training.pairs`) but read and report lines the same way.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ebr.encoders.errors import EncoderInputError
from ebr.ingest.lines import (
    MAX_SKIPPED_FRACTION,
    RECORD_FORMATS,
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
    """Every record of ``path`` (see :func:`stream_records`), read whole; a file that is mostly
    bad lines is refused."""
    path = Path(path)
    result = RecordFile(path)
    for number, record in stream_records(path, format=format):
        if isinstance(record, str):
            result.skipped.append(SkippedLine(number, record))
        else:
            result.records.append(record)
            result.lines.append(number)
    check_skipped(path, result.skipped, len(result.records), max_skipped_fraction, "record")
    return result


def stream_records(path: str | Path, *, format: str | None = None,
                   start: int = 0) -> Iterator[tuple[int, Record | str]]:
    """Each record of ``path`` with its line number (the row number for Parquet), or with why
    that line is not a record: JSONL objects, TSV or CSV rows keyed by the header's column names
    (an empty cell is an absent field), Parquet rows (``pip install pyarrow``).  Lines up to
    ``start`` are passed over (a resumed ingest)."""
    path = Path(path)
    fmt = format_of(path, format, RECORD_FORMATS)
    if fmt == "parquet":
        yield from _parquet(path, start)
        return
    with opened_text(path, "") as handle:
        rows = _jsonl(handle) if fmt == "jsonl" else _delimited(path, handle, fmt)
        for number, record in rows:
            if number > start:
                yield number, record


def _jsonl(handle: TextIO) -> Iterator[tuple[int, Record | str]]:
    for number, data in json_objects(handle):
        if isinstance(data, str) or not data:
            yield number, data if isinstance(data, str) else "expected a non-empty JSON object"
        else:
            yield number, data


def _delimited(path: Path, handle: Any, fmt: str) -> Iterator[tuple[int, Record | str]]:
    if fmt == "tsv":
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(handle)
    header = next(reader, None)
    if not header or any(not name for name in header) or len(set(header)) != len(header):
        raise EncoderInputError(f"{path}: the first row must name every column, once each; "
                                f"got {header}")
    for row in reader:
        if not row or row == [""]:
            continue
        if len(row) != len(header):
            yield reader.line_num, f"{len(row)} column(s), the header has {len(header)}"
            continue
        record = {k: v for k, v in zip(header, row, strict=True) if v != ""}
        # as in JSONL, an empty record is a bad line
        yield reader.line_num, record if record else "every cell is empty"


def _parquet(path: Path, start: int) -> Iterator[tuple[int, Record | str]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise EncoderInputError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow"
                                ) from None
    try:
        table = pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow's errors derive from these
        raise EncoderInputError(f"cannot read {path}: {e}") from None
    number = 0
    for batch in table.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            if number > start:
                record = {k: v for k, v in row.items() if v is not None}
                yield number, record if record else "every column is null"
