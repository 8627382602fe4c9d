"""TREC files, for ``trec_eval`` and other tools: run files (``qid Q0 docid rank score run``)
and the qrels they are scored against (``qid 0 docid grade``).  Query ids are the queries'
numbers in the judged file (from 1), since query texts hold spaces; ``queries.tsv`` maps them
back (``qid<TAB>query``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def query_ids(queries: Sequence[str]) -> dict[str, str]:
    return {q: str(n) for n, q in enumerate(queries, 1)}


def write_run(path: Path, name: str, ranked: Mapping[str, Sequence[str]],
              scores: Mapping[str, Sequence[float]], qids: Mapping[str, str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for query, ids in ranked.items():
            for rank, (doc, s) in enumerate(zip(ids, scores[query], strict=True), 1):
                out.write(f"{qids[query]} Q0 {doc} {rank} {s:.6f} {name}\n")


def write_qrels(directory: Path, qrels: Mapping[str, Mapping[str, float]],
                qids: Mapping[str, str]) -> None:
    with (directory / "qrels.txt").open("w", encoding="utf-8") as out:
        for query, judged in qrels.items():
            out.writelines(f"{qids[query]} 0 {doc} {grade:g}\n" for doc, grade in judged.items())
    with (directory / "queries.tsv").open("w", encoding="utf-8") as out:
        out.write("qid\tquery\n")
        out.writelines(f"{qids[q]}\t{q}\n" for q in qrels)
