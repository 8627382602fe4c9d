"""``ebr eval`` and the library under it (``ebr.evaluation.judgments``, ``retrieval_paths``,
``trec``) on a small local index: figures against hand-computed values and against
``ebr.evaluation.metrics`` over direct store searches, judged-file errors with their line
numbers, TREC files, the radius sweep, and a reranked path."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_request import CosineReranker

from ebr.cli.main import cli
from ebr.evaluation.judgments import JudgmentsError, read_judgments
from ebr.evaluation.metrics import evaluate_rankings
from ebr.evaluation.retrieval_paths import RERANKED, EvalPath, default_paths, run_path
from ebr.mappings import EmbeddingKey, Namespace, Schema
from ebr.request import Searcher
from ebr.stores.local import LocalStore
from ebr.stores.protocol import IndexDocument, search_text
from support.request_corpus import KEY, build, embedder, projection

#: Query A: p05 and p01 relevant (3), p14 relevant (2.5), p02 judged 1 (gain 0).
#: Query B: p08 relevant, p11 judged 2 (gain 1, not relevant).  Query C: nothing relevant.
JUDGED = """query\tdoc_id\tgrade
deck paint\tp05\t3
deck paint\tp14\t2.5
deck paint\tp01\t3
deck paint\tp02\t1
wood screws\tp11\t2
wood screws\tp08\t3
claw hammer\tp03\t1
"""
#: Every term-only hit scores 0 and the ca documents all have rank 1: ordered by id.
CANADA = ["p02", "p05", "p08", "p11", "p14"]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("eval") / "index"
    build(path).close()
    yield path


@pytest.fixture()
def judged(tmp_path: Path) -> Path:
    path = tmp_path / "judged.tsv"
    path.write_text(JUDGED, encoding="utf-8")
    return path


def run_eval(*args: Any) -> Any:
    result = CliRunner().invoke(cli, ["eval", *map(str, args), "--quiet"])
    return result


def figures(*args: Any) -> dict[str, Any]:
    result = run_eval(*args, "--json", "-")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_figures_are_the_hand_computed_ones(index: Path, judged: Path) -> None:
    got = figures(index, judged, "--path", "ca=(term country:ca)")["paths"]["ca"]
    ndcg_a = (2 / math.log2(3) + 1.5 / math.log2(6)) / (2 + 2 / math.log2(3) + 1.5 / 2)
    ndcg_b = (2 / math.log2(4) + 1 / math.log2(5)) / (2 + 1 / math.log2(3))
    assert got["queries"] == 2 and got["failed"] == 0 and got["template"] == "(term country:ca)"
    for k in (10, 100, 1000):
        assert got[f"recall@{k}"] == pytest.approx((2 / 3 + 1) / 2)
    assert got["ndcg@10"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert got["mrr@10"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_default_paths_score_as_the_metrics_module_scores_direct_searches(index: Path, judged: Path) -> None:
    got = figures(index, judged, "--radius", "0.6", "--nprobe", "2")["paths"]
    assert list(got) == ["terms", "nn", "hybrid"]
    qrels = read_judgments(judged).qrels
    templates = {"terms": '(match title "{q}")', "nn": f"(nn {KEY} :k 1000)",
                 "hybrid": f'(or (match title "{{q}}") (nn {KEY} :radius 0.6 :nprobe 2))'}
    with LocalStore.open(index, readonly=True) as store:
        for name, template in templates.items():
            runs = {q: search_text(store, template.format(q=q), {KEY: projection().embed_one(q)},
                                   1000).ids for q in qrels}
            expected = evaluate_rankings(runs, qrels)
            assert got[name]["queries"] == expected.queries
            for column, value in zip(expected.columns(), expected.values(), strict=True):
                assert got[name][column] == pytest.approx(value), (name, column)


def test_the_table_and_trec_files(index: Path, judged: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = run_eval(index, judged, "--path", "ca=(term country:ca)", "--path",
                      "terms=(match title $q)", "--runs", runs)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| path | queries | recall@10 | recall@100 | recall@1000 | ndcg@10 | mrr@10 | failed |"
    assert lines[2].startswith("| ca | 2 | 0.833 |")
    assert sorted(p.name for p in runs.iterdir()) == ["ca.run", "qrels.txt", "queries.tsv", "terms.run"]
    ca = [line.split() for line in (runs / "ca.run").read_text().splitlines()]
    assert ca[:5] == [["1", "Q0", d, str(r), "0.000000", "ca"] for r, d in enumerate(CANADA, 1)]
    assert len(ca) == 3 * len(CANADA)  # every query, query C (nothing relevant) included
    assert (runs / "qrels.txt").read_text().splitlines()[:2] == ["1 0 p05 3", "1 0 p14 2.5"]
    assert (runs / "queries.tsv").read_text().splitlines()[1:] == [
        "1\tdeck paint", "2\twood screws", "3\tclaw hammer"]


def test_radius_sweep_reports_matched_against_recall(index: Path, judged: Path) -> None:
    report = figures(index, judged, "--path", "near=(nn $key :radius 0.5 :nprobe 4)",
                     "--path", "terms=(match title $q)", "--radius-sweep", "0.2,0.6,1.0")
    sweep = report["radius_sweep"]
    assert [(p["path"], p["radius"]) for p in sweep] == [("near", 0.2), ("near", 0.6), ("near", 1.0)]
    qrels = read_judgments(judged).qrels
    with LocalStore.open(index, readonly=True) as store:
        for point in sweep:
            totals = [search_text(store, f"(nn {KEY} :radius {point['radius']} :nprobe 4)",
                                  {KEY: projection().embed_one(q)}, 1000).stats.total for q in qrels]
            assert point["mean_matched"] == pytest.approx(np.mean(totals))
            assert point["median_matched"] == pytest.approx(np.median(totals))
    matched = [p["mean_matched"] for p in sweep]
    recall = [p["recall"]["1000"] for p in sweep]
    assert matched == sorted(matched) and matched[0] < matched[-1]
    assert recall == sorted(recall)


def test_a_reranked_path_is_the_hybrid_reordered(index: Path, judged: Path) -> None:
    paths = default_paths("title", radius=0.9, nprobe=4, reranked=True)
    assert [p.name for p in paths] == ["terms", "nn", "hybrid", RERANKED]
    assert paths[-1].template == paths[-2].template and paths[-1].rerank
    queries = read_judgments(judged).queries
    with LocalStore.open(index, readonly=True) as store:
        searcher = Searcher(store, [embedder()], reranker=CosineReranker(), candidates=100)
        first = run_path(searcher, paths[-2], queries)
        reranked = run_path(searcher, paths[-1], queries)
        for q in queries:
            vectors = store.get_vectors(first.ranked[q], KEY)
            v = projection().embed_one(q)
            assert reranked.ranked[q] == sorted(first.ranked[q], key=lambda i: (-float(vectors[i] @ v), i))
            assert sorted(reranked.ranked[q]) == sorted(first.ranked[q])


def test_queries_that_fail_are_counted_and_scored_empty(index: Path, tmp_path: Path) -> None:
    judged = tmp_path / "j.jsonl"
    judged.write_text('{"query": "deck paint", "doc_id": "p05", "grade": 3}\n'
                      '{"query": "!!!", "doc_id": "p08", "grade": 3}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(index), str(judged), "--quiet", "--path",
                                      "terms=(match title $q)"])
    assert result.exit_code == 0, result.output
    assert "| terms | 2 | 0.500 |" in result.output and result.output.rstrip().endswith("| 1 |")
    assert "query '!!!' failed: 1:14: match text '!!!' yields no terms" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--path", "x=(match nowhere $q)"], "unknown namespace"),
    (["--path", "x"], "expected KEY=VALUE"),
    (["--path", "x=(term country:ca)", "--path", "x=(term country:us)"], "path names must differ"),
    (["--radius-sweep", "0.2,x"], "expected radii like"),
    (["--radius-sweep", "3"], "radii must be between 0 and 2"),
    (["--namespace", "nowhere"], "the index has no namespace 'nowhere'"),
    (["--path", 'x=(match title "$q")'], "write it unquoted"),
    (["--path", "a b=(term country:ca)"], "a path name is a file name and a TREC run tag"),
    (["--relevant-at", "4"], "no judged query has a document graded >= 4"),
    (["--key", "nokey"], "the index has no embedding key 'nokey' (it has: title-trigrams)"),
])
def test_bad_arguments_are_one_line_errors(index: Path, judged: Path, args: list[str], message: str) -> None:
    result = run_eval(index, judged, *args)
    assert result.exit_code != 0 and message in result.output
    assert isinstance(result.exception, SystemExit)  # a clean error, not an escaped exception


def test_default_paths_need_one_text_namespace(tmp_path: Path, judged: Path) -> None:
    schema = Schema.create("two", (Namespace("title"), Namespace("body"), Namespace("tag", "keyword")),
                           (EmbeddingKey(KEY, 32),))
    with LocalStore.create(tmp_path / "two", schema) as store:
        store.add([IndexDocument("p05", text={"title": "deck paint"})])
    judged.write_text("query\tdoc_id\tgrade\ndeck paint\tp05\t3\n", encoding="utf-8")
    result = run_eval(tmp_path / "two", judged)
    assert result.exit_code == 2 and "has 2 free-text namespaces (title, body)" in result.output
    # past the namespace, the hybrid path needs a quantizer the index has not trained: every
    # query of the path fails alike, so the run stops with that error
    named = run_eval(tmp_path / "two", judged, "--namespace", "title")
    assert named.exit_code == 1 and "no coarse quantizer for key 'title-trigrams'" in named.output
    judged.write_text("query\tdoc_id\tgrade\n", encoding="utf-8")
    assert "no judgments" in run_eval(tmp_path / "two", judged).output


@pytest.mark.parametrize("name, text, lines", [
    ("no-grade.tsv", "query\tdoc_id\nq\tp01\nq\tp02\n",
     ["2 bad line(s)", "line 2: missing grade", "line 3: missing grade"]),
    ("words.tsv", "query\tdoc_id\tgrade\nq\tp01\t3\nq\tp02\thigh\nq\tp03\tnan\n",
     ["2 bad line(s)", "line 3: grade 'high' is not a number", "line 4: grade 'nan' is not a number"]),
    ("unknown.tsv", "query\tdoc_id\tgrade\nq\tp01\t3\nq\tzz\t2\nr\tp01\t1\nr\tzz\t1\n",
     ["2 bad line(s)", "line 3: unknown document id 'zz' (not in the index)", "line 5: unknown"]),
    ("twice.tsv", "query\tdoc_id\tgrade\nq\tp01\t3\nq\tp01\t2\n",
     ["line 3: 'p01' is judged again for 'q' (first on line 2)"]),
    ("columns.tsv", "query\tdoc_id\tgrade\nq\tp01\n", ["line 2: 2 column(s), the header has 3"]),
    ("bad.jsonl", '{"query": "q", "doc_id": "p01", "grade": 3}\n{"query": "q", "doc_id": "p02"\n'
                  '{"query": "q", "id": "p03", "relevance": true}\n["q"]\n',
     ["3 bad line(s)", "line 2: not valid JSON", "line 3: grade True is not a number",
      "line 4: expected a JSON object"]),
])
def test_bad_judged_files_name_their_lines(index: Path, tmp_path: Path, name: str, text: str,
                                           lines: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_eval(index, path)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    for line in lines:
        assert line in result.output
    with pytest.raises(JudgmentsError):
        judgments = read_judgments(path)
        with LocalStore.open(index, readonly=True) as store:
            judgments.check_ids(store)


def test_jsonl_judgments_with_aliases_and_numeric_ids(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"query": "q", "id": 100001, "relevance": "2.5"}\n\n'
                    '{"query": "r", "doc_id": "x", "grade": 0}\n', encoding="utf-8")
    judgments = read_judgments(path)
    assert judgments.qrels == {"q": {"100001": 2.5}, "r": {"x": 0.0}}
    assert judgments.lines == {("q", "100001"): 1, ("r", "x"): 3}


def test_a_path_whose_every_query_fails_raises(index: Path, judged: Path) -> None:
    with LocalStore.open(index, readonly=True) as store:
        with pytest.raises(Exception, match="needs an embedding for"):
            run_path(Searcher(store), EvalPath("nn", "(nn title-trigrams :k 5)"), ["a", "b"])


def test_a_reranker_trained_on_judged_queries_is_evaluated_beside_the_paths(
        index: Path, judged: Path, tmp_path: Path) -> None:
    """`ebr train-reranker` writes a LambdaRank file from the hybrid path's candidates; `ebr
    eval --reranker` adds the hybrid path through it, and 'linear' needs no file."""
    pytest.importorskip("lightgbm")
    hybrid = default_paths("title", radius=0.9, nprobe=4, reranked=False)[-1].template
    output = tmp_path / "reranker.json"
    trained = CliRunner().invoke(cli, ["train-reranker", str(index), str(judged), "--path", hybrid,
                                       "--output", str(output), "--quiet"])
    assert trained.exit_code == 0, trained.output
    assert output.exists() and "trained on 3 queries" in trained.output
    for spec in (str(output), "linear"):
        got = figures(index, judged, "--radius", 0.9, "--nprobe", 4, "--reranker", spec)["paths"]
        assert list(got) == ["terms", "nn", "hybrid", RERANKED]
        assert got[RERANKED]["template"] == got["hybrid"]["template"]
        assert got[RERANKED]["reranked"] and got[RERANKED]["queries"] == got["hybrid"]["queries"]
        # a reranker reorders the candidates: recall at the deepest cut-off cannot change
        assert got[RERANKED]["recall@1000"] == got["hybrid"]["recall@1000"]


def test_a_reranker_file_for_another_index_is_refused(index: Path, judged: Path,
                                                     tmp_path: Path) -> None:
    bogus = tmp_path / "reranker.json"
    bogus.write_text("{}", encoding="utf-8")
    result = run_eval(index, judged, "--reranker", bogus)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "reranker" in result.output.lower()
