"""Line files (JSONL objects or TSV with a header row) and how their bad lines are reported.

What every reader of such a file shares — the records of :mod:`ebr.ingest.records` and the
training pairs of :mod:`ebr.encoders.training.pairs`: the format named by the suffix, UTF-8
reading with clean errors, one JSON object per line, and the report of skipped lines.  A bad
line is skipped, counted and quoted with its number — never dropped silently — and a file that
is mostly bad is refused as the wrong file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ebr.encoders.errors import EncoderInputError

FORMATS = ("jsonl", "tsv")
#: What record files may also be (training pairs stay JSONL or TSV).
RECORD_FORMATS = ("jsonl", "tsv", "csv", "parquet")
#: How many skipped lines a report quotes; the count is always exact.
QUOTED_SKIPS = 5
#: More bad lines than this share of a file means the wrong file or format, not a few bad records.
MAX_SKIPPED_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class SkippedLine:
    line: int
    reason: str


_SUFFIXES = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "tsv": "tsv", "tab": "tsv",
             "txt": "tsv", "csv": "csv", "parquet": "parquet", "pq": "parquet"}


def format_of(path: Path, given: str | None = None, formats: Sequence[str] = FORMATS) -> str:
    """``given`` if set, else the format the file's suffix names (one of ``formats``)."""
    if given is not None:
        if given not in formats:
            raise EncoderInputError(f"{path}: unknown format {given!r}; expected one of {', '.join(formats)}")
        return given
    found = _SUFFIXES.get(path.suffix.lower().lstrip("."), "")
    if found in formats:
        return found
    raise EncoderInputError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
                            f"name the file .{' or .'.join(formats)}, or pass the format")


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
