"""The trigram projection and the quickstart's cities index and example queries."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.errors import StoreError
from ebr.quickstart import (
    EXAMPLES,
    KEY,
    ExampleResult,
    build_cities_index,
    cities,
    nlist_for,
    render,
    run_examples,
)
from ebr.stores.local import LocalStore
from ebr.stores.protocol import search_text

LIMIT = 3000
NAMES = ["san francisco", "san fransisco", "marseille", "marseile", "Zürich"]


def test_projection_is_deterministic_across_processes() -> None:
    here = TrigramProjection().embed(NAMES)
    code = ("import sys; from ebr.encoders.features.trigram_projection import TrigramProjection; "
            f"sys.stdout.buffer.write(TrigramProjection().embed({NAMES!r}).tobytes())")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert np.frombuffer(there, dtype=np.float32).reshape(here.shape).tobytes() == here.tobytes()


def test_projection_rows_are_unit_float32_and_seeded() -> None:
    v = TrigramProjection(dimension=32).embed(NAMES)
    assert v.shape == (5, 32) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    other = TrigramProjection(dimension=32, seed=7).embed(NAMES)
    assert not np.allclose(v, other)


def test_misspellings_are_closer_than_other_names() -> None:
    sf, typo, marseille, marseile, _ = TrigramProjection().embed(NAMES)
    assert sf @ typo > sf @ marseille
    assert marseille @ marseile > marseille @ typo
    assert sf @ typo > 0.7


@pytest.mark.parametrize("text", ["", "  ", "!?-"])
def test_text_without_trigrams_is_a_clear_error(text: str) -> None:
    with pytest.raises(EncoderInputError, match="no character trigrams"):
        TrigramProjection().embed(["paris", text])


def test_bad_projection_settings() -> None:
    with pytest.raises(EncoderConfigError, match="dimension"):
        TrigramProjection(dimension=0)
    with pytest.raises(EncoderConfigError, match="buckets"):
        TrigramProjection(buckets=0)
    with pytest.raises(EncoderInputError, match="sequence of texts"):
        TrigramProjection().embed("paris")


TORCH_FREE = (
    "import ebr.encoders, ebr.encoders.features.trigrams, ebr.encoders.features.hashing, "
    "ebr.encoders.features.trigram_projection, ebr.ingest, ebr.quickstart\n"
    "from ebr.ingest import read_records\n"
    "from ebr.encoders import CharTrigramFeaturizer, TrigramProjection, char_trigrams, hash_bucket, "
    "normalize_text\n"
    "assert callable(char_trigrams)\n"
    "assert CharTrigramFeaturizer(50).ids('drill') == [hash_bucket(g, 50) for g in char_trigrams('drill')]\n"
    "assert TrigramProjection(dimension=8).embed([normalize_text('Paris')]).shape == (1, 8)\n"
)


def test_featurizers_and_projection_import_without_torch() -> None:
    loaded = "import sys\n" + TORCH_FREE + "assert 'torch' not in sys.modules, 'torch was imported'\n"
    subprocess.run([sys.executable, "-c", loaded], check=True)
    # As if torch were not installed: importing it raises ImportError.
    absent = "import sys\nsys.modules['torch'] = None\n" + TORCH_FREE
    subprocess.run([sys.executable, "-c", absent], check=True)


def test_limit_keeps_the_most_populous() -> None:
    rows = cities(LIMIT)
    assert len(rows) == LIMIT
    populations = [r["population"] for r in rows]
    assert populations == sorted(populations, reverse=True)
    names = {(r["name"], r["countrycode"]) for r in rows}
    for example in EXAMPLES:
        assert example.expect in names


def test_nlist_is_about_the_square_root() -> None:
    assert [nlist_for(n) for n in (1, 3000, 34000, 10**7)] == [1, 55, 184, 256]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStore]:
    reports: list[tuple[int, int]] = []
    with build_cities_index(tmp_path_factory.mktemp("qs") / "cities", limit=LIMIT,
                            progress=lambda done, total: reports.append((done, total))) as s:
        assert reports[-1] == (LIMIT, LIMIT)
        yield s


@pytest.fixture(scope="module")
def results(store: LocalStore) -> list[ExampleResult]:
    return run_examples(store)


def test_index_holds_the_cities(store: LocalStore) -> None:
    stats = store.stats()
    assert stats.documents == LIMIT
    assert stats.quantizers == {KEY: nlist_for(LIMIT)}
    doc = store.get_documents(["5391959"])[0]  # San Francisco's GeoNames id
    assert doc is not None and doc.source["name"] == "San Francisco"
    assert doc.terms["country"] == ("us",) and doc.terms["continent"] == ("na",)
    assert "frisco" in doc.terms["alias"]
    assert doc.rank == pytest.approx(np.log10(827526 + 1))


@pytest.mark.parametrize("n", range(len(EXAMPLES)), ids=[e.text for e in EXAMPLES])
def test_examples_find_their_city_through_the_expected_branch(
        results: list[ExampleResult], n: int) -> None:
    r = results[n]
    assert r.example is EXAMPLES[n]
    assert r.found is not None, list(render([r]))
    if r.example.via in ("nn", "both"):
        assert r.expected_distance is not None and r.found.distance == pytest.approx(
            r.expected_distance, abs=1e-5)


def test_the_misspelling_is_missed_by_the_terms_alone(store: LocalStore) -> None:
    assert search_text(store, '(and (term country:us) (match name "san fransisco"))', {}).ids == []
    assert search_text(store, '(and (term country:us) (match name "san francisco"))', {}).ids


def test_radius_leaves_room_around_the_measured_distances(results: list[ExampleResult]) -> None:
    # The radius examples use 0.3: the misspelling must sit well inside it and the alias
    # example's embedding well outside (so "via terms" is not luck).
    typo, _, _, bombay = results
    assert typo.expected_distance is not None and typo.expected_distance < 0.25
    assert bombay.expected_distance is not None and bombay.expected_distance > 0.6


def test_render_says_how_each_hit_matched(results: list[ExampleResult]) -> None:
    text = "\n".join(render(results))
    assert "San Francisco found via nn" in text and "Marseille found via nn" in text
    assert "NOT found" not in text
    assert "probe rank 0" in text and "vectors verified" in text


def test_build_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an empty directory"):
        build_cities_index(tmp_path, limit=10)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_projection_docstring_example() -> None:
    import doctest

    import ebr.encoders.features.trigram_projection as module

    assert doctest.testmod(module).failed == 0
