from __future__ import annotations

import ebr
import ebr.ingest
import ebr.mappings
import ebr.ranking
import ebr.stores

#: Every name ``ebr`` exported before the layout change (it must keep working).
EBR_NAMES = {
    "NN", "And", "CentroidQuantizer", "CoarseQuantizer", "CompiledSearch", "Difference",
    "Document", "EbrError", "Explanation", "IncompleteInputError", "Limits", "Node", "Nothing",
    "Or", "PlanError", "QuerySyntaxError", "SchemaError", "ServerVersion", "Term",
    "UnsupportedError", "Within", "compile_filter", "compile_rescore", "compile_search",
    "evaluate", "explain", "logical_plan", "named_branches", "parse", "plan", "pretty", "read",
    "to_text",
}
MAPPINGS_NAMES = {"CoarseQuantizerSpec", "EmbeddingKey", "Hnsw", "IvfPq", "Namespace", "Schema",
                  "Space"}


def test_all_names_exist_and_are_unique() -> None:
    for module in (ebr, ebr.mappings, ebr.stores, ebr.ingest, ebr.ranking):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_earlier_public_names_still_work() -> None:
    assert EBR_NAMES <= set(ebr.__all__)
    assert MAPPINGS_NAMES <= set(ebr.mappings.__all__)
    assert ebr.Document is ebr.ReferenceDocument
    assert ebr.evaluate is ebr.reference_matches


def test_functions_are_not_shadowed_by_modules() -> None:
    """Importing every subpackage leaves ``ebr.plan`` and ``ebr.explain`` the functions."""
    import ebr.explanation  # noqa: F401
    import ebr.planning.planner  # noqa: F401

    assert callable(ebr.plan) and callable(ebr.explain)


def test_one_error_root() -> None:
    for name in ("QuerySyntaxError", "IncompleteInputError", "SchemaError", "PlanError",
                 "UnsupportedError", "StoreError", "RerankerError"):
        assert issubclass(getattr(ebr, name), ebr.EbrError)
    assert issubclass(ebr.IncompleteInputError, ebr.QuerySyntaxError)
    assert issubclass(ebr.stores.DocumentError, ebr.EbrError)
