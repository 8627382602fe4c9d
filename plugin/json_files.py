"""Reading JSON configuration (schemas, encoder configs) with errors a user can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ebr.errors import EbrError


def parse_json_object(text: str, what: str, error: type[EbrError]) -> dict[str, Any]:
    """``text`` as a JSON object, or ``error`` saying what is wrong and where."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise error(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def load_json_object(path: str | Path, what: str, error: type[EbrError]) -> dict[str, Any]:
    """The JSON object in the UTF-8 file ``path``, or ``error`` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise error(f"cannot read {what} {path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_json_object(text, f"{what} {path}", error)
