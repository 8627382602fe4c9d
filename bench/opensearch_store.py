"""The OpenSearch store on a real cluster: ingest throughput and query latency, side by side.

Data: ``--docs`` synthetic titles (words drawn Zipf-like from a fixed vocabulary, seeded) with a
location term; the embedding of each title is ebr's training-free trigram projection
(``--dim``), so "encode" is real work measured apart.  One run prints, per figure, one line:

- ingest end to end (read JSONL + encode + quantize + write in batches) into the local store;
- ``--rounds`` rounds, each of two runs in alternating order (raw first in odd rounds, ebr
  first in even ones, so a drift of the machine touches both alike): raw ``_bulk`` of the
  same documents into a fresh index of the same mapping (NDJSON bodies serialised as ebr
  serialises them, built before the clock starts, sent in ebr's chunks of 500 with as many
  requests in flight as ebr's writer keeps, then a refresh: the cluster's own rate, the
  client doing nothing), and ingest end to end into the cluster through ``ebr.ingest`` (read,
  encode, train the quantizer, check, write, refresh).  Between runs the previous index is
  deleted and the node left until no merge runs.  Per round: docs/s and ebr / raw; overall
  the median of the rounds' ratios;
- the paper's hybrid radius query ``(and (term loc:X) (nn key :radius r :nprobe N))`` through
  the store, ``--queries`` queries (after ``--warm-up`` untimed ones; the exact answers
  they are held to are computed before any is timed: the local store's BLAS threads spin
  for a while after a search, taking cores from the client and the node) at ``--size``
  (10) and, with the wider ``--wide-radius`` (hundreds of hits), at ``--large-size``
  (10,000), timed in three parts: the wall time from the query text to the hits; the
  server's ``took``; the HTTP exchange (the time inside opensearch-py's connection: sending
  the body, the server, receiving the response; it holds ``took``).  **Client time** is the
  wall time minus the HTTP exchange: everything ebr does (embed, read + plan + compile,
  serialising the request and parsing the JSON response, mapping hits).  The target
  compares it with ``took``.  Beside it, the same span's CPU time (the thread's, so other
  processes' load does not count), and the client's whole CPU time per request, which adds
  what urllib3 and http.client do inside the exchange (headers, the socket calls): client
  work too, though not ebr's;
- for each ``--nprobes`` value: the query's recall of every match against the exact answer
  (the local store, ``:exact true``), ``took`` and wall p50, beside the engine's own radial
  ``knn`` search (``min_score``) with the same filter; then the smallest nprobe whose recall
  reaches the native search's, and both latencies there.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ebr import parse, plan
from ebr.encoders.features.trigram_projection import TrigramProjection
from ebr.ingest.pipeline import ingest
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema
from ebr.mappings.opensearch_mapping import index_body
from ebr.mappings.space import Space
from ebr.stores.local import LocalStore
from ebr.stores.opensearch.client import connect, server_version
from ebr.stores.opensearch.store import BULK_IN_FLIGHT, CHUNK_DOCUMENTS, OpenSearchStore

KEY = "title-trigrams"
INDEX, RAW_INDEX = "ebr-bench", "ebr-bench-raw"
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
    parser.add_argument("--large-size", type=int, default=10_000,
                        help="hits per timed request of the wide query")
    parser.add_argument("--wide-radius", type=float, default=0.6,
                        help="radius of the query timed at --large-size (hundreds of hits)")
    parser.add_argument("--nprobes", default="16,32,64", help="nprobe values swept for recall")
    parser.add_argument("--rounds", type=int, default=3, help="raw / ebr ingest pairs")
    parser.add_argument("--warm-up", type=int, default=20, help="untimed queries first")
    parser.add_argument("--in-flight", type=int, default=BULK_IN_FLIGHT,
                        help="bulk requests in flight, raw and ebr alike")
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
            client = connect(args.url)
            version = server_version(client)
            chunks = raw_chunks(local, args.docs)
            ratios = []
            remote = None
            try:
                for round_ in range(1, args.rounds + 1):
                    rates: dict[str, float] = {}
                    for run in ("raw", "ebr") if round_ % 2 else ("ebr", "raw"):
                        if run == "raw":
                            rates[run] = raw_bulk(client, chunks, schema, version, args.engine,
                                                  args.in_flight)
                        else:
                            if remote is not None:
                                remote.close()
                                OpenSearchStore.drop(args.url, INDEX)
                                settle(client)
                            remote = OpenSearchStore.create(args.url, INDEX, schema,
                                                            engine=args.engine)
                            remote.bulk_in_flight = args.in_flight
                            report = ingest(remote, source, encoder=encoder, batch_size=2000)
                            rates[run] = report.read / report.seconds
                        settle(client)
                    ratios.append(rates["ebr"] / rates["raw"])
                    print(f"round {round_} ({' then '.join(rates)}): raw _bulk {rates['raw']:,.0f}"
                          f" docs/s; through ebr {rates['ebr']:,.0f} records/s "
                          f"({report.seconds:.1f} s, encoding "
                          f"{report.encode_seconds / report.seconds:.0%}, quantizer trained "
                          f"{'yes' if report.trained else 'no'}); ebr / raw {ratios[-1]:.2f}")
                print(f"ingest into OpenSearch {version}: ebr / raw = {np.median(ratios):.2f} "
                      f"(median of {len(ratios)} rounds: {', '.join(f'{r:.2f}' for r in ratios)}"
                      f"; {args.in_flight} bulk request(s) in flight each; ebr's includes "
                      "reading, encoding and training)")
                assert remote is not None
                if args.queries:
                    queries(local, remote, args)
            finally:
                if remote is not None:
                    remote.close()
                    OpenSearchStore.drop(args.url, INDEX)
                client.close()


def raw_chunks(local: LocalStore, n: int) -> list[bytes]:
    """The documents the local store holds, as the NDJSON bodies of ``_bulk`` requests of
    :data:`~ebr.stores.opensearch.store.CHUNK_DOCUMENTS` documents, serialised as the store
    serialises them (orjson, float32 vectors)."""
    docs = [d for d in local.get_documents([f"d{i}" for i in range(n)]) if d is not None]
    lines = [orjson.dumps({"index": {"_id": d.id}}) + b"\n" + orjson.dumps({
        "id": d.id, "terms": {k: list(v) for k, v in d.terms.items() if "." not in k},
        "clusters": {KEY: d.terms[f"{KEY}.cluster"][0]}, "vectors": dict(d.embeddings),
        "rank": d.rank, "source": d.source}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        for d in docs]
    return [b"".join(lines[i:i + CHUNK_DOCUMENTS]) for i in range(0, len(lines), CHUNK_DOCUMENTS)]


def raw_bulk(client: Any, chunks: list[bytes], schema: Schema, version: Any, engine: str,
             in_flight: int) -> float:
    """Docs/s of sending ``chunks`` into a fresh index, ``in_flight`` requests at a time as
    ebr's writer sends them, then refreshing it."""
    client.indices.create(index=RAW_INDEX, body=index_body(schema, version=version,
                                                           engine=engine))

    def send(chunk: bytes) -> int:
        answer = client.bulk(body=chunk, index=RAW_INDEX)
        if answer["errors"]:
            raise SystemExit(f"raw _bulk refused documents: {answer['items'][:2]}")
        return len(answer["items"])

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(in_flight) as pool:
            count = sum(pool.map(send, chunks))
        client.indices.refresh(index=RAW_INDEX)
        return count / (time.perf_counter() - start)
    finally:
        client.indices.delete(index=RAW_INDEX)


def settle(client: Any, timeout: float = 120.0) -> None:
    """Wait until no merge runs on the node, so one run's merges do not slow the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = client.nodes.stats(metric="indices", index_metric="merge")
        if all(n["indices"]["merges"]["current"] == 0 for n in stats["nodes"].values()):
            return
        time.sleep(0.5)


class NetworkClock:
    """Seconds spent inside the client's connections (urllib3 sending, the server, urllib3
    receiving): the HTTP exchange, apart from what opensearch-py and ebr do around it; and
    the CPU time this thread spent in there (urllib3's and http.client's work, the socket
    calls), which is the client's too."""

    def __init__(self, client: Any) -> None:
        self.seconds = 0.0
        self.cpu = 0.0
        for connection in client.transport.connection_pool.connections:
            connection.perform_request = self._timed(connection.perform_request)

    def _timed(self, perform: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return perform(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.cpu += time.thread_time() - cpu
        return timed


def queries(local: LocalStore, remote: OpenSearchStore, args: argparse.Namespace) -> None:
    """Every timed request of one query case runs back to back (the sizes, the native search,
    each nprobe), so the machine's drift touches each alike."""
    projection = TrigramProjection(args.dim)
    clock = NetworkClock(remote.client)
    rng = np.random.default_rng(1)
    sizes = {args.size: args.radius, args.large_size: args.wide_radius}
    nprobes = [int(n) for n in args.nprobes.split(",")]

    def paper_query(loc: str, nprobe: int | None, radius: float = args.radius) -> str:
        scope = ":exact true" if nprobe is None else f":nprobe {nprobe}"
        return f"(and (term loc:{loc}) (nn {KEY} :radius {radius} {scope}))"

    def through_ebr(words: str, loc: str, nprobe: int, size: int, radius: float = args.radius
                    ) -> tuple[Any, float, float, float, float]:
        """The result, its wall time, the time inside the HTTP exchange, the thread's CPU
        time in all and inside the HTTP exchange."""
        network, network_cpu = clock.seconds, clock.cpu
        start, cpu = time.perf_counter(), time.thread_time()
        vector = {KEY: projection.embed_one(words)}
        executable = plan(parse(paper_query(loc, nprobe, radius), remote.schema), vector,
                          remote.quantizers, remote.schema)
        result = remote.search(executable, vector, size=size)
        return (result, time.perf_counter() - start, clock.seconds - network,
                time.thread_time() - cpu, clock.cpu - network_cpu)

    def exact(words: str, loc: str) -> set[str]:
        vector = {KEY: projection.embed_one(words)}
        return set(local.search(plan(parse(paper_query(loc, None), local.schema), vector,
                                     local.quantizers, local.schema), vector, 10_000).ids)

    asked = [(" ".join(rng.choice(WORDS[:200], 3)), LOCATIONS[int(rng.integers(0, 5))])
             for _ in range(args.warm_up + args.queries)]
    for words, loc in asked[:args.warm_up]:  # the node's and the client's first-call costs
        for size, radius in sizes.items():
            through_ebr(words, loc, nprobes[0], size, radius)
    truths = [exact(words, loc) for words, loc in asked[args.warm_up:]]
    time.sleep(1.0)  # the BLAS threads of the exact searches stop spinning
    # (wall, took, http[, cpu, http cpu]) per request
    timed: dict[str, list[tuple[float, ...]]] = {}
    hits: dict[int, list[int]] = {size: [] for size in sizes}
    recalls: dict[str, list[float]] = {}
    for (words, loc), truth in zip(asked[args.warm_up:], truths, strict=True):
        vector = {KEY: projection.embed_one(words)}
        for size, radius in sizes.items():
            result, wall, http, cpu, http_cpu = through_ebr(words, loc, nprobes[0], size, radius)
            timed.setdefault(f"size {size}", []).append(
                (wall, result.stats.seconds["server"], http, cpu, http_cpu))
            hits[size].append(len(result.hits))
        network = clock.seconds
        start = time.perf_counter()
        native = remote.client.search(index=remote.index, body={
            "size": 10_000, "_source": False, "query": {"knn": {f"vectors.{KEY}": {
                "vector": vector[KEY].tolist(), "min_score": Space.knn_score(args.radius),
                "filter": {"term": {"terms.loc": loc}}}}}})
        timed.setdefault("native", []).append(
            (time.perf_counter() - start, native["took"] / 1000, clock.seconds - network))
        recalls.setdefault("native", []).append(
            recall(truth, {h["_id"] for h in native["hits"]["hits"]}))
        for nprobe in nprobes:
            result, wall, http, _, _ = through_ebr(words, loc, nprobe, 10_000)
            timed.setdefault(f"nprobe {nprobe}", []).append(
                (wall, result.stats.seconds["server"], http))
            recalls.setdefault(f"nprobe {nprobe}", []).append(recall(truth, set(result.ids)))

    def p50(name: str, part: int) -> float:
        return float(np.median([t[part] for t in timed[name]])) * 1000

    for size, radius in sizes.items():
        name = f"size {size}"
        client = [t[0] - t[2] for t in timed[name]]
        client_cpu = [t[3] - t[4] for t in timed[name]]
        took = [t[1] for t in timed[name]]
        print(f"hybrid radius query through ebr, size {size} (radius {radius}, nprobe {nprobes[0]}, "
              f"{args.queries} queries, {np.mean(hits[size]):.0f} hits on average): wall p50 "
              f"{p50(name, 0):.2f} ms; server took p50 {p50(name, 1):.2f} / p99 "
              f"{ms(took, 99):.2f} ms; HTTP exchange p50 {p50(name, 2):.2f} ms (of which "
              f"urllib3's CPU p50 {p50(name, 4):.2f} ms); client p50 {ms(client, 50):.2f} / p99 "
              f"{ms(client, 99):.2f} ms (its CPU time p50 {ms(client_cpu, 50):.2f} ms); "
              f"client / took {np.median(client) / max(np.median(took), 1e-9):.2f} (CPU "
              f"{np.median(client_cpu) / max(np.median(took), 1e-9):.2f}); the client's whole "
              f"CPU time, urllib3's included, p50 {p50(name, 3):.2f} ms")
    native_recall = float(np.mean(recalls["native"]))
    print(f"native knn radial (min_score) with the same filter, every match: recall vs exact "
          f"{native_recall:.3f}, took p50 {p50('native', 1):.2f} ms, wall p50 "
          f"{p50('native', 0):.2f} ms")
    chosen = None
    for nprobe in nprobes:
        name = f"nprobe {nprobe}"
        line = (f"ebr nprobe {nprobe}, every match: recall vs exact "
                f"{np.mean(recalls[name]):.3f}, took p50 {p50(name, 1):.2f} ms, wall p50 "
                f"{p50(name, 0):.2f} ms")
        print(line)
        if chosen is None and np.mean(recalls[name]) >= native_recall:
            chosen = line
    print(f"at equal or better recall than native ({native_recall:.3f}; took p50 "
          f"{p50('native', 1):.2f} ms, wall p50 {p50('native', 0):.2f} ms): "
          + (chosen or f"no nprobe of {args.nprobes} reaches it"))


def recall(truth: set[str], got: set[str]) -> float:
    return len(truth & got) / len(truth) if truth else 1.0


def ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


if __name__ == "__main__":
    main()
