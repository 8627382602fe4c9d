"""Every node class has an entry in each table that dispatches on node types (the printer,
the reference evaluator, the OpenSearch compiler, the local store's execution), so a new node
class cannot be forgotten by one of them."""

from __future__ import annotations

import pytest

import ebr.query.nodes as nodes
from ebr.query import printer
from ebr.stores import reference
from ebr.stores.local import execution
from ebr.stores.opensearch import compiler

NODE_CLASSES = {cls for cls in vars(nodes).values()
                if isinstance(cls, type) and issubclass(cls, nodes.Node) and cls is not nodes.Node}


def test_the_node_classes_are_the_language_and_plan_nodes() -> None:
    assert {c.__name__ for c in NODE_CLASSES} == {
        "Term", "And", "Or", "Difference", "NN", "Match", "Within", "Nothing"}


@pytest.mark.parametrize("module", [printer, reference, compiler, execution],
                         ids=lambda m: m.__name__)
def test_every_node_class_has_a_handler(module: object) -> None:
    table = module.NODE_HANDLERS  # type: ignore[attr-defined]
    assert set(table) == NODE_CLASSES
    assert all(callable(handler) for handler in table.values())
