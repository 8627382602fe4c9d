"""The examples in module docstrings are tests too (each rewrite rule documents itself)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import ebr
import ebr.mappings

MODULES = sorted(
    info.name
    for package in (ebr, ebr.mappings)
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    if not info.name.startswith("ebr.encoders")  # torch-heavy; its own tests cover it
)


def test_modules_are_found() -> None:
    assert {"ebr.planning.rules.flatten", "ebr.planning.rules.pushdown",
            "ebr.planning.implied_terms"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
