"""The OpenSearch store on a real cluster: ingest throughput and query latency, side by side.

Data: ``--docs`` synthetic titles (words drawn Zipf-like from a fixed vocabulary, seeded) with a
location term; the embedding of each title is ebr's training-free trigram projection
(``--dim``), so "encode" is real work measured apart.  One run prints, per figure, one line:

- ingest end to end (read JSONL + encode + quantize + write in batches) into the local store
  and into the cluster through ``ebr.ingest``, records/s, with the encoding share;
- raw ``_bulk`` of the same documents (bodies built beforehand, opensearch-py's bulk helper,
  same chunks) into the same mapping, docs/s, and the ratio ebr / raw;
- ``--queries`` hybrid radius queries ``(and (term loc:X) (nn key :radius r :nprobe 16))``
  through the store, ``--size`` hits each: the client's time (embed + plan + compile + map
  hits) beside the server's ``took`` and their ratio; recall of all matches against the exact
  answer; then the engine's own radial
  ``knn`` search (``min_score``) with the same filter: ``took`` and recall.

    python bench/opensearch_store.py --url http://127.0.0.1:9200 [--docs 50000] [--dim 128]

The cluster needs the k-NN plugin; the index uses the Lucene engine unless ``--engine faiss``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ebr import parse, plan
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.ingest.pipeline import ingest
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.store import OpenSearchStore

KEY = "title-trigrams"
WORDS = [f"w{i}" for i in range(2000)]
LOCATIONS = [f"city{i}" for i in range(20)]


class Projection:
    """The trigram projection as the pipeline's document encoder."""

    key = KEY

    def __init__(self, dim: int) -> None:
        self.projection = TrigramProjection(dim)

    def encode(self, records: Any) -> np.ndarray:
        return np.stack([self.projection.embed_one(r["title"]) for r in records])


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()
    with path.open("w") as f:
        for i in range(n):
            words = rng.choice(WORDS, rng.integers(3, 9), p=weights)
            f.write(json.dumps({"id": f"d{i}", "title": " ".join(words),
                                "loc": LOCATIONS[int(rng.zipf(1.5)) % len(LOCATIONS)]}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--nlist", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--radius", type=float, default=0.35)
    parser.add_argument("--size", type=int, default=10, help="hits per timed request")
    parser.add_argument("--engine", default="lucene", choices=["lucene", "faiss"])
    args = parser.parse_args()
    schema = Schema.create("bench", (Namespace("title"), Namespace("loc", "keyword")),
                           (EmbeddingKey(KEY, args.dim, CoarseQuantizerSpec(nlist=args.nlist)),))
    encoder = Projection(args.dim)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores; {args.docs} docs x {args.dim}-d, "
          f"nlist {args.nlist}, engine {args.engine}")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "docs.jsonl"
        write_corpus(source, args.docs)
        with LocalStore.create(Path(tmp) / "local", schema, synchronous="NORMAL") as local:
            report = ingest(local, source, encoder=encoder, batch_size=2000)
            print(f"ingest into the local store: {report.read / report.seconds:,.0f} records/s "
                  f"({report.seconds:.1f} s, encoding {report.encode_seconds:.1f} s = "
                  f"{report.encode_seconds / report.seconds:.0%})")
            remote = OpenSearchStore.create(args.url, "ebr-bench", schema, engine=args.engine)
            try:
                report = ingest(remote, source, encoder=encoder, batch_size=2000)
                ebr_rate = report.read / report.seconds
                print(f"ingest into OpenSearch {remote.version} through ebr: {ebr_rate:,.0f} "
                      f"records/s ({report.seconds:.1f} s, encoding {report.encode_seconds:.1f} s "
                      f"= {report.encode_seconds / report.seconds:.0%}; quantizer trained "
                      f"{'yes' if report.trained else 'no'})")
                raw_rate = raw_bulk(remote, local, schema, args)
                print(f"raw _bulk of the same documents: {raw_rate:,.0f} docs/s; ebr / raw = "
                      f"{ebr_rate / raw_rate:.2f} (ebr's includes reading and encoding)")
                queries(local, remote, args)
            finally:
                remote.close()
                OpenSearchStore.drop(args.url, "ebr-bench")


def raw_bulk(remote: OpenSearchStore, local: LocalStore, schema: Schema,
             args: argparse.Namespace) -> float:
    from opensearchpy import helpers

    ids = [f"d{i}" for i in range(args.docs)]
    docs = local.get_documents(ids)
    bodies = [{"_index": "ebr-bench-raw", "_id": d.id, "_source": {
        "id": d.id, "terms": {k: list(v) for k, v in d.terms.items() if "." not in k},
        "clusters": {KEY: d.terms[f"{KEY}.cluster"][0]},
        "vectors": {KEY: d.embeddings[KEY].tolist()}, "rank": d.rank, "source": {}}}
        for d in docs if d is not None]
    client = remote.client
    client.indices.create(index="ebr-bench-raw", body=index_body(
        schema, version=remote.version, engine=args.engine))
    try:
        start = time.perf_counter()
        helpers.bulk(client, bodies, chunk_size=500, max_chunk_bytes=10 << 20)
        client.indices.refresh(index="ebr-bench-raw")
        return len(bodies) / (time.perf_counter() - start)
    finally:
        client.indices.delete(index="ebr-bench-raw")


def queries(local: LocalStore, remote: OpenSearchStore, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    projection = TrigramProjection(args.dim)
    client_s, server_s, native_s, recalls, native_recalls = [], [], [], [], []
    for _ in range(args.queries):
        words = " ".join(rng.choice(WORDS[:200], 3))
        loc = LOCATIONS[int(rng.integers(0, 5))]
        text = f"(and (term loc:{loc}) (nn {KEY} :radius {args.radius} :nprobe 16))"
        start = time.perf_counter()
        vector = {KEY: projection.embed_one(words)}
        executable = plan(parse(text, remote.schema), vector, remote.quantizers, remote.schema)
        page = remote.search(executable, vector, size=args.size)
        elapsed = time.perf_counter() - start
        server_s.append(page.stats.seconds["server"])
        client_s.append(elapsed - page.stats.seconds["server"])
        result = remote.search(executable, vector, size=10_000)  # every match, for recall
        exact = local.search(plan(parse(text.replace(":nprobe 16", ":exact true"), local.schema),
                                  vector, local.quantizers, local.schema), vector, 10_000)
        truth = set(exact.ids)
        recalls.append(len(truth & set(result.ids)) / len(truth) if truth else 1.0)
        native = remote.client.search(index=remote.index, body={
            "size": 10_000, "_source": False, "query": {"knn": {f"vectors.{KEY}": {
                "vector": vector[KEY].tolist(), "min_score": 1.0 - args.radius / 2.0,
                "filter": {"term": {"terms.loc": loc}}}}}})
        native_s.append(native["took"] / 1000)
        got = {h["_id"] for h in native["hits"]["hits"]}
        native_recalls.append(len(truth & got) / len(truth) if truth else 1.0)

    def ms(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) * 1000

    print(f"hybrid radius query through ebr ({args.queries} queries, radius {args.radius}, "
          f"size {args.size}): "
          f"server took p50 {ms(server_s, 50):.1f} / p99 {ms(server_s, 99):.1f} ms, client "
          f"p50 {ms(client_s, 50):.1f} / p99 {ms(client_s, 99):.1f} ms, client / server "
          f"{np.median(client_s) / max(np.median(server_s), 1e-9):.2f}; recall vs exact "
          f"{np.mean(recalls):.3f}")
    print(f"native knn radial (min_score) with the same filter: took p50 {ms(native_s, 50):.1f} "
          f"/ p99 {ms(native_s, 99):.1f} ms; recall vs exact {np.mean(native_recalls):.3f}")


if __name__ == "__main__":
    main()
