"""The quickstart: the trigram projection, the training queries, the cities index, and the
example requests in the reduced mode, with the trained model and with the projection."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.errors import StoreError
from ebr.quickstart import (
    EXAMPLES,
    PROJECTION_KEY,
    ExampleResult,
    Quickstart,
    build_cities_index,
    build_quickstart,
    cities,
    nlist_for,
    render,
    run_examples,
)
from ebr.quickstart.build import SMALL_LIMIT as SMALL
from ebr.quickstart.examples import HELD_OUT_ALIASES, example_city_names, run_request, searcher
from ebr.quickstart.model import SMALL_TRAINING
from ebr.quickstart.queries import Homonyms, fold, misspell, partial, training_pairs
from ebr.stores.protocol import search_text

if TYPE_CHECKING:
    from ebr.encoders.serving.model_directory import EncoderModel
    from ebr.encoders.serving.query_encoder import QueryEncoder

NAMES = ["san francisco", "san fransisco", "marseille", "marseile", "Zürich"]


# -- the trigram projection -----------------------------------------------------------------


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
    "from ebr.quickstart import build_quickstart, run_examples\n"
    "assert callable(char_trigrams)\n"
    "assert CharTrigramFeaturizer(50).ids('drill') == [hash_bucket(g, 50) for g in char_trigrams('drill')]\n"
    "assert TrigramProjection(dimension=8).embed([normalize_text('Paris')]).shape == (1, 8)\n"
)


def test_featurizers_projection_and_quickstart_import_without_torch() -> None:
    loaded = "import sys\n" + TORCH_FREE + "assert 'torch' not in sys.modules, 'torch was imported'\n"
    subprocess.run([sys.executable, "-c", loaded], check=True)
    # As if torch were not installed: importing it raises ImportError.
    absent = "import sys\nsys.modules['torch'] = None\n" + TORCH_FREE
    subprocess.run([sys.executable, "-c", absent], check=True)


def test_projection_docstring_example() -> None:
    import doctest

    import ebr.encoders.features.trigram_projection as module

    assert doctest.testmod(module).failed == 0


# -- the training queries -------------------------------------------------------------------


def test_fold_misspell_partial() -> None:
    assert fold("Córdoba") == "cordoba" and fold("SAN JOSÉ") == "san jose"
    rng = random.Random(3)
    slips = {misspell("springfield", rng) for _ in range(200)}
    assert "springfield" not in slips
    assert all(s[0] == "s" and abs(len(s) - len("springfield")) <= 1 for s in slips)
    assert len(slips) > 30
    assert partial("marseille") == "marsei" and partial("rome") == "rome"


def test_the_searchers_country_decides_between_cities_of_one_name() -> None:
    rows = cities(SMALL, example_city_names())
    homonyms = Homonyms(rows)
    assert (homonyms.intended("san jose", "cr")["countrycode"],
            homonyms.intended("San José", "us")["countrycode"],
            homonyms.intended("san jose", "de")["countrycode"]) == ("CR", "US", "US")
    assert homonyms.intended("Springfield", "us")["admin1code"] == "MO"  # the largest


def test_training_pairs_follow_the_rule_and_leave_out_the_held_out_alias() -> None:
    rows = cities(SMALL, example_city_names())
    pairs = training_pairs(rows, held_out=HELD_OUT_ALIASES)
    assert pairs == training_pairs(rows, held_out=HELD_OUT_ALIASES)  # seeded
    ids = {str(c["geonameid"]): c for c in rows}
    homonyms = Homonyms(rows)
    assert not any(p.query["text"] == "bombay" for p in pairs)
    targets: dict[tuple[str, str], set[str]] = {}
    for p in pairs:
        targets.setdefault((p.query["text"], p.query["country"]), set()).add(p.doc["id"])
    for city in rows:  # each city's name typed in its country: the city the rule says
        country = city["countrycode"].lower()
        intended = str(homonyms.intended(city["name"], country)["geonameid"])
        assert intended in targets[(fold(city["name"]), country)]
    assert {ids[i]["countrycode"] for i in targets[("san jose", "cr")]} == {"CR"}
    assert {ids[i]["countrycode"] for i in targets[("san jose", "us")]} == {"US"}


# -- the cities -----------------------------------------------------------------------------


def test_limit_keeps_the_most_populous_and_the_examples_cities() -> None:
    rows = cities(SMALL, example_city_names())
    populations = [r["population"] for r in rows[:SMALL]]
    assert populations == sorted(populations, reverse=True)
    assert {r["name"] for r in rows[SMALL:]} <= set(example_city_names())
    labels = {f"{r['name']}, {r['countrycode']}.{r['admin1code']}" for r in rows}
    for example in EXAMPLES:
        assert set(example.expect) <= labels
    assert len(cities()) > 30_000


def test_nlist_is_about_the_square_root() -> None:
    assert [nlist_for(n) for n in (1, 3000, 34000, 10**7)] == [1, 55, 184, 256]


def test_build_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    rows = cities(10)
    with pytest.raises(StoreError, match="not an empty directory"):
        build_cities_index(tmp_path, rows, PROJECTION_KEY, TrigramProjection().embed(
            [r["name"] for r in rows]))
    assert (tmp_path / "keep.txt").read_text() == "mine"




# -- the reduced mode, trained and not ------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quickstart]:
    pytest.importorskip("torch", reason="training needs torch (the encoders extra)")
    root = tmp_path_factory.mktemp("qs")
    quickstart = build_quickstart(root / "cities", limit=SMALL, model_dir=root / "cities-model",
                                  training=SMALL_TRAINING)
    with quickstart.store:
        yield quickstart


@pytest.fixture(scope="module")
def projected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quickstart]:
    quickstart = build_quickstart(tmp_path_factory.mktemp("qs") / "cities", limit=SMALL)
    with quickstart.store:
        yield quickstart


@pytest.fixture(scope="module")
def trained_results(trained: Quickstart) -> list[ExampleResult]:
    return run_examples(trained.store, trained.embedding)


@pytest.fixture(scope="module")
def projected_results(projected: Quickstart) -> list[ExampleResult]:
    return run_examples(projected.store, projected.embedding)


def test_the_index_holds_the_cities_and_the_models_key(trained: Quickstart) -> None:
    from ebr.encoders.serving.query_encoder import QueryEncoder

    stats = trained.store.stats()
    assert stats.documents == trained.cities == len(cities(SMALL, example_city_names()))
    key = QueryEncoder(trained.model_dir).key  # type: ignore[arg-type]
    assert trained.embedding.key == key and stats.quantizers == {key: nlist_for(stats.documents)}
    doc = trained.store.get_documents(["5391959"])[0]  # San Francisco's GeoNames id
    assert doc is not None and doc.source["name"] == "San Francisco"
    assert doc.terms["country"] == ("us",) and doc.terms["region"] == ("us.ca",)
    assert doc.terms["continent"] == ("na",) and "frisco" in doc.terms["alias"]
    assert doc.rank == pytest.approx(np.log10(827526 + 1))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(codec="utf-8"), max_size=40),
       country=st.one_of(st.none(), st.sampled_from(["us", "cr", "in", "fr"])))
def test_the_served_query_tower_is_the_trained_models(trained: Quickstart, text: str,
                                                      country: str | None) -> None:
    """The numpy query tower (what ebr query --model and the quickstart serve) against the
    trained model's torch tower, on a real model."""
    served, eager = _served_and_eager(trained.model_dir)  # type: ignore[arg-type]
    assert served.runtime == "numpy"
    record = {"text": text, "country": country}
    np.testing.assert_allclose(served.encode(record), eager.encode_queries([record])[0], atol=1e-5)


@cache
def _served_and_eager(model_dir: Path) -> tuple[QueryEncoder, EncoderModel]:
    from ebr.encoders.serving.model_directory import EncoderModel
    from ebr.encoders.serving.query_encoder import QueryEncoder

    return QueryEncoder(model_dir), EncoderModel.load(model_dir)


@pytest.mark.parametrize("n", range(len(EXAMPLES)), ids=[e.text for e in EXAMPLES])
def test_each_example_finds_its_city_through_its_branch(trained_results: list[ExampleResult],
                                                        n: int) -> None:
    r = trained_results[n]
    assert r.example is EXAMPLES[n]
    assert r.found, "\n".join(render([r]))
    for run in r.runs:
        hit = run.found(r.example.via, r.example.first)
        assert hit is not None
        if r.example.via in ("nn", "both"):
            assert run.expected_distance is not None
            assert hit.distance == pytest.approx(run.expected_distance, abs=1e-5)


def test_two_searcher_countries_rank_different_cities_first(
        trained_results: list[ExampleResult]) -> None:
    [context] = [r for r in trained_results if r.example.first]
    firsts = [run.hits[0].label for run in context.runs]
    assert len(set(firsts)) == len(firsts) == 2, firsts
    assert firsts == list(context.example.expect)


def test_the_radius_leaves_room_around_the_measured_distances(
        trained_results: list[ExampleResult]) -> None:
    radius = trained_results[0].embedding.radius
    typo, alias, _, location = trained_results
    for r in (typo, location):  # the misspellings well inside
        assert r.runs[0].expected_distance is not None and r.runs[0].expected_distance < radius - 0.03
    # the held-out old name well outside: "via terms" is not luck
    assert alias.runs[0].expected_distance is not None and alias.runs[0].expected_distance > radius + 0.03


def test_the_misspelling_is_missed_by_the_terms_alone(trained: Quickstart) -> None:
    store = trained.store
    assert search_text(store, '(and (term country:us) (match name "san franciso"))', {}).ids == []
    assert search_text(store, '(and (term country:us) (match name "san francisco"))', {}).ids


def test_render_says_how_each_hit_matched_and_scored(trained_results: list[ExampleResult]) -> None:
    text = "\n".join(render(trained_results))
    assert "San Francisco, US.CA found via nn" in text and "Mumbai, IN.16 found via terms" in text
    assert "first ranked by searcher country: US: San Jose, US.CA / CR: San José, CR.08" in text
    assert "NOT" not in text
    assert "= nn " in text and "= bm25 " in text and "probe rank 0" in text
    assert "reranked " in text and "cosine:" in text  # the reranker's score and its makings


def test_a_request_goes_through_the_request_api_and_is_reranked(projected: Quickstart) -> None:
    requests = searcher(projected.store, projected.embedding)
    response = run_request(requests, "(and (term country:$ctx.country) "
                                     "(or (match name $q) (nn $key :k 3)))",
                           'say "hi"', {"country": "us"}, 3)
    assert response.query == ('(and (term country:us) (or (match name "say \\"hi\\"") '
                              f"(nn {PROJECTION_KEY} :k 3)))")  # the text quoted, never a form
    assert len(response.hits) == 3 and all(h.features for h in response.hits)
    scores = [h.score for h in response.hits]
    assert scores == sorted(scores, reverse=True)  # in the reranker's order


def test_the_projection_finds_the_cities_but_ignores_the_country(
        projected: Quickstart, projected_results: list[ExampleResult]) -> None:
    assert projected.embedding.key == PROJECTION_KEY and projected.model_dir is None
    for r in projected_results:
        if r.example.first:  # the same cities whatever the searcher's country
            assert [h.label for h in r.runs[0].hits] == [h.label for h in r.runs[1].hits]
            assert "does not read the searcher's country" in "\n".join(render([r]))
        else:
            assert r.found, "\n".join(render([r]))


def test_via_counts_only_the_ors_that_offer_terms_and_nn(projected: Quickstart) -> None:
    from ebr.planning.planner import plan
    from ebr.query.parser import parse
    from ebr.quickstart.examples import via

    store = projected.store
    vectors = {PROJECTION_KEY: TrigramProjection().embed_one("springfield")}
    query = ("(and (or (term region:us.il) (term region:us.mo)) "
             f"(or (match name springfield) (nn {PROJECTION_KEY} :radius 0.5 :nprobe 16)))")
    root = plan(parse(query, store.schema), vectors, store.quantizers, store.schema)
    hits = store.search(root, vectors, 10).hits
    assert {h.branches for h in hits} == {("q", "q.0", "q.0.0", "q.1", "q.1.0", "q.1.1"),
                                          ("q", "q.0", "q.0.1", "q.1", "q.1.0", "q.1.1")}
    # the region or is a constraint, not a way of matching; the name or is one
    assert via(root, hits[0].branches) == "both"
    assert via(root, ("q", "q.0", "q.0.1", "q.1", "q.1.1")) == "nn"
    assert via(root, ("q", "q.0", "q.0.1", "q.1", "q.1.0")) == "terms"
