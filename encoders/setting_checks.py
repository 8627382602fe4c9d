"""Range checks shared by the encoder and training configurations: one wording for every setting."""

from __future__ import annotations

import math
from typing import Any

from ebr.encoders.errors import EncoderConfigError


def check_int(name: str, value: Any, low: int, high: int) -> None:
    """``value`` is an integer (not a bool) in [low, high], or :class:`EncoderConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EncoderConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def check_number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> None:
    """``value`` is a finite number in [low, high] (or (low, high] with ``open_low``)."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if ok and (value < low or value > high or (open_low and value == low)):
        ok = False
    if not ok:
        bracket = "(" if open_low else "["
        raise EncoderConfigError(f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}")
