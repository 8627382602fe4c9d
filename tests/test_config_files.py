"""ebr.config_files.ConfigReader: unchecked reading and refusing unknown keys up front."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ebr.config_files import ConfigReader
from ebr.errors import EbrError


@dataclass(frozen=True)
class Sample:
    size: int = 1
    rate: float = 0.5
    band: tuple[int, int] = (1, 2)


def test_unchecked_fields_convert_but_pass_other_types_on() -> None:
    r = ConfigReader({"size": "3", "rate": 2, "band": [4, "x"]}, "c", EbrError)
    assert r.fields(Sample, check=False) == {"size": "3", "rate": 2.0, "band": (4, "x")}
    with pytest.raises(EbrError, match=r"^c\.size: expected an integer, got '3'$"):
        ConfigReader({"size": "3"}, "c", EbrError).fields(Sample)


def test_unchecked_tuple_still_needs_a_list_of_its_length() -> None:
    with pytest.raises(EbrError, match=r"^c\.band: expected a list of two values, got 3$"):
        ConfigReader({"band": 3}, "c", EbrError).fields(Sample, check=False)


def test_only_refuses_unknown_keys_before_anything_is_read() -> None:
    r = ConfigReader({"sise": 3}, "c", EbrError)
    with pytest.raises(EbrError, match=r"^c: unknown key 'sise'; known: band, rate, size$"):
        r.only("size", "rate", "band")
    r = ConfigReader({"size": 3}, "c", EbrError)
    r.only("size", "rate", "band")
    assert r.fields(Sample) == {"size": 3, "rate": 0.5, "band": (1, 2)}
    r.done()
