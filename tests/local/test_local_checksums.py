"""The row checksums written for every document and embedding are :func:`checksum` of their
values, spelled out for speed: they must stay equal to it (indexes written before they were
spelled out hold its values)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ebr.stores.local.database import (
    assignment_checksum,
    checksum,
    document_checksum,
    embedding_checksum,
    format_2_embedding_checksum,
)

# any code point, lone surrogates included (a damaged id must still get a checksum)
TEXT = st.text(st.characters(blacklist_categories=()), max_size=12)


@given(TEXT, st.floats(allow_nan=False), TEXT, st.lists(TEXT, max_size=4))
def test_a_document_checksum_is_the_checksum_of_its_values(
        doc_id: str, rank: float, source: str, terms: list[str]) -> None:
    assert document_checksum(doc_id, rank, source, terms) == checksum(
        doc_id, rank, source, *sorted(terms))


@given(TEXT, TEXT, st.lists(st.floats(width=32), max_size=8),
       st.none() | st.integers(0, 1 << 20), st.none() | st.binary(max_size=8))
def test_a_format_2_embedding_checksum_is_the_checksum_of_its_values(
        doc_id: str, key: str, vector: list[float], cluster: int | None,
        code: bytes | None) -> None:
    blob = np.array(vector, np.float32).tobytes()
    assert format_2_embedding_checksum(doc_id, key, blob, cluster, code) == checksum(
        doc_id, key, blob, None if cluster is None else float(cluster), code)


@given(TEXT, TEXT, st.integers(0, 1 << 40), st.lists(st.floats(width=32), max_size=8))
def test_an_embedding_checksum_is_the_checksum_of_its_values(
        doc_id: str, key: str, slot: int, vector: list[float]) -> None:
    blob = np.array(vector, np.float32).tobytes()
    assert embedding_checksum(doc_id, key, slot, memoryview(blob)) == checksum(
        doc_id, key, float(slot), blob)


@given(TEXT, TEXT, st.integers(0, 1 << 20), st.none() | st.binary(max_size=8))
def test_an_assignment_checksum_is_the_checksum_of_its_values(
        doc_id: str, key: str, cluster: int, code: bytes | None) -> None:
    assert assignment_checksum(doc_id, key, cluster, code) == checksum(
        doc_id, key, float(cluster), code)
