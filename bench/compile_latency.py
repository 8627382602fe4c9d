"""Read + plan + compile cost of the paper's hybrid query (target: <= 1.2M instructions).

Prints one line per figure.  The probe step ranks ``--nlist`` centroids of dimension
``--dim`` for the query vector (a matrix-vector product), so its cost grows with both; the
figures are single-threaded wall-clock times from ``time.perf_counter_ns``.  The stages are
read + parse, the logical plan (simplify + push-down), probe selection alone, the
executable plan (probes + NN expansion + final simplify + size check, the logical plan of
the same AST being kept) and compile; the total runs all of them on the text, every
iteration, uncached (``parse_uncached``: a new AST, so no kept logical plan either); the line
before it is the same for a kept text (:mod:`ebr.query.kept`), what a repeated query costs.
The machine's load average is printed too: other work on these shared cores moves
wall-clock figures.

``--instructions`` counts CPU instructions per call of each stage instead, under valgrind's
callgrind (two runs per stage, with and without the measured calls, subtracted).  The count
does not move with the machine's load, so it compares two commits on a shared machine where
wall-clock times cannot; it takes about 20 s per stage.  The target is on the total
(a wall-clock target of 50 us was retired: it had no anchor and cost simplicity).

    python bench/compile_latency.py [--iterations 20000] [--nlist 1024] [--dim 64]
    python bench/compile_latency.py --instructions [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ebr import CentroidQuantizer, compile_search, logical_plan, parse, plan  # noqa: E402
from ebr.mappings import CoarseQuantizerSpec, EmbeddingKey, Namespace, Schema  # noqa: E402
from ebr.query.parser import parse_uncached  # noqa: E402

QUERY = ("(and (or (term location:seattle) (term location:menlo_park)) "
         "(or (and (term text:john) (term text:smithe)) "
         "(nn model-141795009 :radius 0.24 :nprobe 16)))")
KEY = "model-141795009"
TARGET_INSTRUCTIONS = 1_200_000
TOTAL = "read+plan+compile, total"

Stage = tuple[str, Callable[[], object]]


def stages(nlist: int, dim: int) -> list[Stage]:
    """The measured steps, each a call on inputs prepared here (the total starts from text)."""
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((nlist, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vector = rng.standard_normal(dim).astype(np.float32)
    vector /= np.linalg.norm(vector)
    schema = Schema.create("people", (Namespace("text"), Namespace("location", "lowercase")),
                           (EmbeddingKey(KEY, dim, CoarseQuantizerSpec(nlist=nlist)),))
    vectors = {KEY: vector}
    quantizer = CentroidQuantizer(centroids)
    quantizers = {KEY: quantizer}
    ast = parse_uncached(QUERY, schema)
    executable = plan(ast, vectors, quantizers, schema)
    return [
        ("read+parse", lambda: parse_uncached(QUERY, schema)),
        ("logical plan (rules, no probes)", lambda: logical_plan(ast)),
        ("probe selection", lambda: quantizer.probe(vector, 16)),
        ("executable plan (probes, expansion, final simplify; the AST's logical plan kept)",
         lambda: plan(ast, vectors, quantizers, schema)),
        ("compile (plan -> body)", lambda: compile_search(executable, schema, vectors, size=50)),
        ("read+plan+compile, a kept text (parse and logical plan looked up)",
         lambda: compile_search(plan(parse(QUERY, schema), vectors, quantizers, schema), schema,
                                vectors, size=50)),
        (TOTAL, lambda: compile_search(  # a new AST each time: nothing kept is used
            plan(parse_uncached(QUERY, schema), vectors, quantizers, schema), schema, vectors,
            size=50)),
    ]


def measure(fn: Callable[[], object], iterations: int) -> tuple[float, float]:
    for _ in range(min(1000, iterations // 10)):  # warm up
        fn()
    samples = np.empty(iterations, dtype=np.int64)
    for i in range(iterations):
        t0 = time.perf_counter_ns()
        fn()
        samples[i] = time.perf_counter_ns() - t0
    return float(np.percentile(samples, 50)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def wall_clock(args: argparse.Namespace) -> None:
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python "
          f"{platform.python_version()}, 1 thread; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"query: paper hybrid example; quantizer {args.nlist} x {args.dim}, nprobe 16; "
          f"{args.iterations} iterations per figure")
    for name, fn in stages(args.nlist, args.dim):
        p50, p99 = measure(fn, args.iterations)
        print(f"{name}: p50 {p50:.1f} us, p99 {p99:.1f} us")


def instructions(args: argparse.Namespace) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("--instructions needs valgrind (Debian package valgrind)")
    print(f"query: paper hybrid example; quantizer {args.nlist} x {args.dim}, nprobe 16; "
          f"instructions per call over {args.calls} calls (callgrind)")
    per_call = 0
    for index, (name, _) in enumerate(stages(args.nlist, args.dim)):
        counts = [_callgrind(valgrind, args, index, calls) for calls in (0, args.calls)]
        per_call = (counts[1] - counts[0]) // args.calls
        print(f"{name}: {per_call:,} instructions per call")
    verdict = "met" if per_call <= TARGET_INSTRUCTIONS else "NOT met"  # the total comes last
    print(f"target: read+plan+compile <= {TARGET_INSTRUCTIONS:,} instructions per call: {verdict}")


def _callgrind(valgrind: str, args: argparse.Namespace, stage: int, calls: int) -> int:
    """Instructions of one run of this script's --run-stage mode."""
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               __file__, "--run-stage", str(stage), "--calls", str(calls),
               "--nlist", str(args.nlist), "--dim", str(args.dim)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        sys.exit(f"no instruction count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def run_stage(args: argparse.Namespace) -> None:
    """Warm up, then make exactly ``--calls`` calls (what --instructions counts)."""
    _, fn = stages(args.nlist, args.dim)[args.run_stage]
    for _ in range(200):
        fn()
    for _ in range(args.calls):
        fn()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions per call under callgrind instead of timing")
    ap.add_argument("--calls", type=int, default=2000, help="calls counted per stage")
    ap.add_argument("--run-stage", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_stage is not None:
        run_stage(args)
    elif args.instructions:
        instructions(args)
    else:
        wall_clock(args)


if __name__ == "__main__":
    main()
