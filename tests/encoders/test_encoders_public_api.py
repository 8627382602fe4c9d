"""The public names of ``ebr.encoders`` exist, are unique, and its errors share ebr's root."""

from __future__ import annotations

import importlib
import pkgutil
import types

import ebr.encoders
from ebr.errors import EbrError


def _submodules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(ebr.encoders.__path__, "ebr.encoders."))


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(ebr.encoders.__all__)) == len(ebr.encoders.__all__)
    for name in ebr.encoders.__all__:
        assert hasattr(ebr.encoders, name), name


def test_every_public_name_resolves_lazily_from_the_module_that_defines_it() -> None:
    lazy = ebr.encoders._SUBMODULES
    assert set(lazy) == set(ebr.encoders.__all__)
    for name, module in lazy.items():
        assert getattr(ebr.encoders, name) is getattr(importlib.import_module(module, "ebr.encoders"), name)


def test_read_records_is_ebr_ingests() -> None:
    import ebr.ingest

    assert ebr.encoders.read_records is ebr.ingest.read_records


def test_no_module_is_named_like_a_public_name() -> None:
    # Importing ebr.encoders.x sets the package attribute x, which would hide a public x.
    modules = _submodules()
    assert {"ebr.encoders.features.trigrams", "ebr.encoders.serving.query_encoder"} <= set(modules)
    clashes = {m for m in modules if set(m.split(".")[2:]) & set(ebr.encoders.__all__)}
    assert not clashes
    for module in modules:
        importlib.import_module(module)
    for name in ebr.encoders.__all__:
        assert not isinstance(getattr(ebr.encoders, name), types.ModuleType), name


def test_errors_derive_from_the_package_root() -> None:
    assert issubclass(ebr.encoders.EncoderError, EbrError)
    for error in (ebr.encoders.EncoderConfigError, ebr.encoders.EncoderInputError):
        assert issubclass(error, ebr.encoders.EncoderError)
