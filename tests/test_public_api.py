from __future__ import annotations

import ebr
import ebr.ingest
import ebr.mappings


def test_all_names_exist_and_are_unique() -> None:
    for module in (ebr, ebr.mappings, ebr.ingest):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_one_error_root() -> None:
    for name in ("QuerySyntaxError", "IncompleteInputError", "SchemaError", "PlanError",
                 "UnsupportedError"):
        assert issubclass(getattr(ebr, name), ebr.EbrError)
    assert issubclass(ebr.IncompleteInputError, ebr.QuerySyntaxError)
