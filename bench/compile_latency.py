"""Read + plan + compile latency of the paper's hybrid query (target: p50 <= 50 us).

Prints one line per figure.  The probe step ranks ``--nlist`` centroids of dimension
``--dim`` for the query vector (a matrix-vector product), so its cost grows with both; the
figures are single-threaded wall-clock times from ``time.perf_counter_ns``.  The stages are
read + analyze, the logical plan (simplify + push-down), probe selection alone, the
executable plan (logical plan + probes + NN expansion + final simplify + size check) and
compile; the total runs all of them on the text, every iteration.  The machine's load
average is printed too: other work on these shared cores moves wall-clock figures.

    python bench/compile_latency.py [--iterations 20000] [--nlist 1024] [--dim 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ebr import CentroidQuantizer, compile_search, logical_plan, parse, plan  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402

QUERY = ("(and (or (term location:seattle) (term location:menlo_park)) "
         "(or (and (term text:john) (term text:smithe)) "
         "(nn model-141795009 :radius 0.24 :nprobe 16)))")
KEY = "model-141795009"
TARGET_P50_US = 50.0


def measure(fn: Callable[[], object], iterations: int) -> tuple[float, float]:
    for _ in range(min(1000, iterations // 10)):  # warm up
        fn()
    samples = np.empty(iterations, dtype=np.int64)
    for i in range(iterations):
        t0 = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - t0
    return float(np.percentile(samples, 50)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=64)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((args.nlist, args.dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vector = rng.standard_normal(args.dim).astype(np.float32)
    vector /= np.linalg.norm(vector)
    schema = Schema.create("people", (Namespace("text"), Namespace("location", "lowercase")),
                           (EmbeddingKey(KEY, args.dim, CoarseQuantizerSpec(nlist=args.nlist)),))
    vectors = {KEY: vector}
    quantizer = CentroidQuantizer(centroids)
    quantizers = {KEY: quantizer}
    ast = parse(QUERY, schema)
    executable = plan(ast, vectors, quantizers, schema)

    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python "
          f"{platform.python_version()}, 1 thread; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"query: paper hybrid example; quantizer {args.nlist} x {args.dim}, nprobe 16; "
          f"{args.iterations} iterations per figure")
    stages: list[tuple[str, Callable[[], object]]] = [
        ("read+analyze", lambda: parse(QUERY, schema)),
        ("logical plan (rules, no probes)", lambda: logical_plan(ast)),
        ("probe selection", lambda: quantizer.probe(vector, 16)),
        ("executable plan (logical plan, probes, expansion, final simplify)",
         lambda: plan(ast, vectors, quantizers, schema)),
        ("compile (plan -> body)", lambda: compile_search(executable, schema, vectors, size=50)),
        ("read+plan+compile, total", lambda: compile_search(
            plan(parse(QUERY, schema), vectors, quantizers, schema), schema, vectors, size=50)),
    ]
    for name, fn in stages:
        p50, p99 = measure(fn, args.iterations)
        print(f"{name}: p50 {p50:.1f} us, p99 {p99:.1f} us")
    verdict = "met" if p50 <= TARGET_P50_US else "NOT met"
    print(f"target (BENCHMARKS.md): read+plan+compile p50 <= {TARGET_P50_US:.0f} us: {verdict}")


if __name__ == "__main__":
    main()
