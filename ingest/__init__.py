"""ebr.ingest: reading the records to index and encode (batch encoding, bulk writers: later issues).

- :mod:`~ebr.ingest.lines`: JSONL and TSV line files, and the report of their bad lines;
- :mod:`~ebr.ingest.records`: record files (:func:`read_records`).

Nothing here needs torch.
"""

from __future__ import annotations

from ebr.ingest.records import read_records

__all__ = ["read_records"]
