"""The ``ebr`` command line, through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ebr.cli.main import cli
from support.golden import SCHEMA

HYBRID = ("(and (or (term location:seattle) (term location:menlo_park)) "
          "(or (and (term text:john) (term text:smithe)) "
          "(nn model-141795009 :radius 0.24 :nprobe 2)))")


def test_explain_shows_every_stage() -> None:
    result = CliRunner().invoke(cli, ["explain", HYBRID])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in ("AST", "Logical plan", "Plan (radius nn", "OpenSearch request: POST /ebr/_search",
                    "Branches"):
        assert heading in out
    assert ":where" in out and "within model-141795009 0.24" in out
    assert "random unit vector" in result.stderr  # says when inputs are made up


def test_explain_shows_the_request_resolving_a_top_k_match_first() -> None:
    result = CliRunner().invoke(cli, [
        "explain", '(and (term location:seattle) (match text "John Smithe" :k 5))'])
    assert result.exit_code == 0, result.output
    out = result.stdout
    first, main = out.index("First, q.1's top K: POST /ebr/_search"), out.index(
        "OpenSearch request")
    assert first < out.index('"size": 5') < main  # the resolving request: its k best
    assert '"<hits of q.1>"' in out[main:]  # the main request stands for them


def test_explain_with_schema_vectors_and_centroids(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(SCHEMA.to_json())
    centroids = tmp_path / "c.npy"
    np.save(centroids, np.concatenate([np.eye(4), -np.eye(4)]).astype(np.float32))
    result = CliRunner().invoke(cli, [
        "explain", "--schema", str(schema), "--json", "--vector",
        "model-141795009=0.5,0.5,0.5,0.5", "--centroids", f"model-141795009={centroids}",
        "--vector", "title-ivf=1,0,0,0", "--centroids", f"title-ivf={centroids}", HYBRID])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    golden = Path(__file__).parent / "golden" / "compile" / "paper_hybrid.json"
    expected = json.loads(golden.read_text())
    # same request as the golden file except the probes (nprobe 2 here, 16 there)
    within = body["query"]["bool"]["must"][0]["bool"]["should"][1]["script_score"]
    assert within["query"]["bool"]["filter"][1] == {"terms": {"clusters.model-141795009":
                                                              ["0", "1"]}}
    assert body["query"]["bool"]["filter"] == expected["query"]["bool"]["filter"]
    assert result.stderr == ""


def test_query_errors_are_one_clean_message() -> None:
    result = CliRunner().invoke(cli, ["explain", "(and (term text:a) (nn m :radius 7))"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: 1:34: :radius must be between 0 and 2; got 7",
        "  (and (term text:a) (nn m :radius 7))",
        "  " + " " * 33 + "^",
    ]
    assert "Traceback" not in result.output


def test_bad_options() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["explain", "--vector", "oops", "(nn m :k 3)"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.stderr
    result = runner.invoke(cli, ["explain", "--vector", "m=a,b", "(nn m :k 3)"])
    assert result.exit_code == 2 and "cannot read 'a,b'" in result.stderr
    result = runner.invoke(cli, ["explain", "--server-version", "2.11.0", "(nn m :k 3)"])
    assert result.exit_code == 1 and "too old" in result.stderr
    result = runner.invoke(cli, ["explain", "--vector", "m=0,0,0", "(nn m :k 3)"])
    assert result.exit_code == 1 and "finite and non-zero" in result.stderr


def test_explain_reads_stdin() -> None:
    result = CliRunner().invoke(cli, ["explain", "--json", "-"], input="(term text:a)\n")
    assert result.exit_code == 0, result.output
    # a term-only root is wrapped in filter context: it must not score (no BM25 noise)
    assert json.loads(result.stdout)["query"] == {"bool": {"filter": [
        {"term": {"terms.text": {"value": "a", "_name": "q"}}}]}}


def test_option_values_are_checked(tmp_path: Path) -> None:
    runner = CliRunner()
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones(4, np.float32))  # 1-D: not a centroid matrix
    result = runner.invoke(cli, ["explain", "--centroids", f"m={flat}", "(nn m :radius 0.2)"])
    assert result.exit_code == 2 and "centroids must be a non-empty (nlist, d) matrix" in result.stderr
    result = runner.invoke(cli, ["explain", "--vector", "m=1,2,3", "(nn m :radius 0.2)"])
    assert result.exit_code == 1 and "dimension 3; the schema says 16" in result.stderr
    result = runner.invoke(cli, ["explain", "--size", "10001", "(term a:b)"])
    assert result.exit_code == 2 and "10001" in result.stderr
    result = runner.invoke(cli, ["explain", "--server-version", "2.19", "--json", "(term a:b)"])
    assert result.exit_code == 0, result.output


def test_names_are_checked_with_a_position_even_without_a_schema() -> None:
    result = CliRunner().invoke(cli, ["explain", "(term Location:Seattle)"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: 1:7: invalid namespace 'Location'")
