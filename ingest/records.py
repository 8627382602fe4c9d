"""Record files (JSONL objects or TSV with a header row) and how their bad lines are reported.

Used for the documents ``ebr encode`` embeds and the extra corpus ``ebr train`` may be given;
training pairs have their own layout (:mod:`ebr.encoders.training.pairs`) but report skipped
lines the same way: a bad line is skipped, counted and quoted with its number — never dropped
silently — and a file that is mostly bad is refused as the wrong file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ebr.encoders.errors import EncoderInputError

Record = Mapping[str, Any]
FORMATS = ("jsonl", "tsv")
#: How many skipped lines a report quotes; the count is always exact.
QUOTED_SKIPS = 5
#: More bad lines than this share of a file means the wrong file or format, not a few bad records.
MAX_SKIPPED_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class SkippedLine:
    line: int
    reason: str


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


def format_of(path: Path, given: str | None = None) -> str:
    """``given`` if set, else the format the file's suffix names."""
    if given is not None:
        if given not in FORMATS:
            raise EncoderInputError(f"{path}: unknown format {given!r}; expected one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if suffix in ("tsv", "tab", "txt"):
        return "tsv"
    raise EncoderInputError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                            "name the file .jsonl or .tsv, or pass the format")


def skipped_report(path: Path, skipped: Sequence[SkippedLine], kept: int) -> str:
    """One line per quoted skip (the first :data:`QUOTED_SKIPS`); empty when nothing was skipped."""
    if not skipped:
        return ""
    lines = [f"{path}: skipped {len(skipped)} bad line(s) of {len(skipped) + kept}:"]
    lines += [f"  line {s.line}: {s.reason}" for s in skipped[:QUOTED_SKIPS]]
    if len(skipped) > QUOTED_SKIPS:
        lines.append(f"  ... and {len(skipped) - QUOTED_SKIPS} more")
    return "\n".join(lines)


def check_skipped(
    path: Path, skipped: Sequence[SkippedLine], kept: int, max_fraction: float, what: str
) -> None:
    """Refuse a file with nothing usable, or with more than ``max_fraction`` bad lines."""
    total = kept + len(skipped)
    if not kept:
        detail = f"; first problem: line {skipped[0].line}: {skipped[0].reason}" if skipped else ""
        raise EncoderInputError(f"{path}: no valid {what} in {total} line(s){detail}")
    if len(skipped) > max_fraction * total:
        raise EncoderInputError(f"{skipped_report(path, skipped, kept)}\nmore than {max_fraction:.0%} of "
                                "the lines are bad; is this the right file and format?")


@contextmanager
def opened_text(path: Path, what: str) -> Iterator[TextIO]:
    """``path`` open for reading UTF-8 lines; an unreadable or non-UTF-8 file (found while
    reading, too) becomes :class:`EncoderInputError` naming ``what`` and the file."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as e:
        raise EncoderInputError(f"cannot read {what}{path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise EncoderInputError(f"cannot read {what}{path}: not UTF-8 ({e.reason} at byte "
                                f"{e.start})") from None


def json_objects(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Each non-blank line's number with its JSON object, or with why it is not one."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.rstrip("\r\n"))  # a column past the end, not 1 of a next line
        except json.JSONDecodeError as e:
            yield number, f"not valid JSON ({e.msg} at column {e.colno})"
            continue
        yield number, data if isinstance(data, dict) else f"expected a JSON object, got {type(data).__name__}"


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
