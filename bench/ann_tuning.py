"""``ebr tune``'s reduced sweep on 10k vectors: its time end to end (the target: under 60 s).

Runs :func:`ebr.tuning.sweep.sweep` with the settings ``ebr tune --quick`` uses (one nlist
~ sqrt(n), nprobe 1..32, Flat / PQ d/4 / OPQ d/4 with 8 OPQ steps, 200 held-out queries) on
``--data`` (an ``.npy`` matrix, e.g. bigann10k's ``base.npy``) or, by default, 10,000 seeded
synthetic 128-d vectors around 1,000 centres, and prints the time and the best recall.
OPQ-vs-PQ comparisons are ``ebr tune`` runs (README, "Tune the ANN settings").

    python bench/ann_tuning.py [--data base.npy]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # OpenMP threads spin against each other on 2 shared cores

import numpy as np  # noqa: E402

from ebr.tuning.sources import hold_out, read_matrix  # noqa: E402
from ebr.tuning.sweep import SweepSettings, sweep  # noqa: E402


def synthetic(rows: int, dim: int, centres: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    return c[rng.integers(0, centres, rows)] + 0.6 * rng.standard_normal((rows, dim)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="an .npy matrix (default: synthetic 10k x 128)")
    args = parser.parse_args()
    vectors = read_matrix(args.data) if args.data else synthetic(10_000, 128, 1_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
          f"data: {args.data or 'synthetic'} {vectors.shape[0]:,} x {vectors.shape[1]}")
    data = hold_out(vectors, 200, seed=0)
    quick = SweepSettings.default(*data.base.shape, quick=True)
    start = time.perf_counter()
    result = sweep(data, quick)
    best = max(result.topk, key=lambda p: p.recall_at_100)
    print(f"reduced sweep (ebr tune --quick: nlist {quick.nlists}, nprobe {quick.nprobes}, "
          f"{', '.join(c.name for c in quick.codes)}; {len(result.topk)} settings): "
          f"{time.perf_counter() - start:.1f} s (target < 60 s); best recall@100 "
          f"{best.recall_at_100:.3f} ({best.codes}, nprobe {best.nprobe})")


if __name__ == "__main__":
    main()
