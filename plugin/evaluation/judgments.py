"""Judged query files: graded relevance of documents for queries, as ``ebr eval`` reads them.

A TSV (or CSV) file with a header naming the columns ``query``, ``doc_id`` and ``grade``, or
JSONL objects with those fields; ``id`` is read as ``doc_id`` and ``relevance`` as ``grade``
where the file names them so.  Grades are numbers (graded, e.g. the 1-3 scale of the Home
Depot protocol, or 0/1).  Unlike records for ingest, a judged file is read whole or not at
all: every bad line (a missing field, a grade that is not a number, a pair judged twice, an
id the index does not hold) is an error, reported with its line number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ebr.errors import EbrError
from ebr.ingest.records import stream_records
from ebr.stores.protocol import Store

#: Accepted names of each field, the first the one documented.
FIELDS = {"query": ("query",), "doc_id": ("doc_id", "id"), "grade": ("grade", "relevance")}
#: How many bad lines an error quotes; the count is always exact.
QUOTED = 5
#: Ids asked of the store at once when checking them.
CHECK_BATCH = 1000


class JudgmentsError(EbrError):
    """A judged file that cannot be used as it is, with the numbers of its bad lines."""


@dataclass
class Judgments:
    """``qrels``: ``{query: {doc id: grade}}`` with queries in file order; ``lines``: the line
    of each judgment."""

    path: Path
    qrels: dict[str, dict[str, float]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def queries(self) -> list[str]:
        return list(self.qrels)

    def check_ids(self, store: Store) -> None:
        """Refuse judgments of ids the store does not hold (a judged file for another index,
        or ids spelt otherwise)."""
        pairs = sorted(self.lines.items(), key=lambda item: item[1])
        ids = list(dict.fromkeys(doc for (_, doc), _ in pairs))
        unknown: set[str] = set()
        for start in range(0, len(ids), CHECK_BATCH):
            batch = ids[start: start + CHECK_BATCH]
            unknown.update(i for i, d in zip(batch, store.get_documents(batch), strict=True) if d is None)
        _raise(self.path, [(line, f"unknown document id {doc!r} (not in the index)")
                           for (_, doc), line in pairs if doc in unknown])


def read_judgments(path: str | Path, *, format: str | None = None) -> Judgments:
    """The judgments of ``path`` (format from the suffix unless given: jsonl, tsv or csv)."""
    path = Path(path)
    judgments = Judgments(path)
    problems: list[tuple[int, str]] = []
    for line, record in stream_records(path, format=format):
        if isinstance(record, str):
            problems.append((line, record))
            continue
        values = {name: next((record[a] for a in aliases if a in record), None)
                  for name, aliases in FIELDS.items()}
        missing = [name for name, v in values.items() if v is None or v == ""]
        if missing:
            problems.append((line, f"missing {', '.join(missing)} (every line needs query, doc_id "
                                   "and grade)"))
            continue
        grade = _grade(values["grade"])
        if grade is None:
            problems.append((line, f"grade {values['grade']!r} is not a number"))
            continue
        query, doc = str(values["query"]), str(values["doc_id"])
        earlier = judgments.lines.get((query, doc))
        if earlier is not None:
            problems.append((line, f"{doc!r} is judged again for {query!r} (first on line {earlier})"))
            continue
        judgments.qrels.setdefault(query, {})[doc] = grade
        judgments.lines[(query, doc)] = line
    _raise(path, problems)
    if not judgments.qrels:
        raise JudgmentsError(f"{path}: no judgments")
    return judgments


def _grade(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        grade = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return grade if math.isfinite(grade) else None


def _raise(path: Path, problems: Sequence[tuple[int, str]]) -> None:
    if not problems:
        return
    lines = [f"{path}: {len(problems)} bad line(s):"]
    lines += [f"  line {n}: {why}" for n, why in problems[:QUOTED]]
    if len(problems) > QUOTED:
        lines.append(f"  ... and {len(problems) - QUOTED} more")
    raise JudgmentsError("\n".join(lines))
