"""Query tower latency, one request at a time on one thread, beside all-MiniLM-L6-v2.

Each architecture of ``homedepot_train.py`` is exported to a model directory and served the way a
query service would: :class:`ebr.encoders.serving.query_encoder.QueryEncoder` (featurize one record, run
the TorchScript query tower).  Latency does not depend on the weights' values, so the towers
are freshly initialised unless ``--model`` names a trained model directory.  Every figure is
over the same ≥ 1,000 real Home Depot queries, measured in this run (target p99 ≤ 1.0 ms).

    python bench/query_tower_latency.py [--data DIR] [--queries 2000] [--model DIR] [--no-minilm]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from homedepot_data import add_data_argument, load_or_exit  # noqa: E402
from homedepot_train import encoder_config  # noqa: E402

from ebr.encoders.features.tokenizer import train_sentencepiece  # noqa: E402
from ebr.encoders.model.towers import TwoTowerModel  # noqa: E402
from ebr.encoders.serving.model_directory import save_model_directory  # noqa: E402
from ebr.encoders.serving.query_encoder import QueryEncoder  # noqa: E402

TARGET_P99_MS = 1.0
WARMUP = 50


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def measure(encoder: QueryEncoder, queries: list[str]) -> tuple[float, float]:
    for q in queries[:WARMUP]:
        encoder.encode({"text": q})
    samples = []
    for q in queries:
        started = time.perf_counter()
        encoder.encode({"text": q})
        samples.append((time.perf_counter() - started) * 1e3)
    return percentiles(samples)


def export(variant: str, titles: list[str], directory: Path) -> QueryEncoder:
    config = encoder_config(variant)
    vocabulary = None
    if variant in ("text_only", "text_trigrams"):
        path = train_sentencepiece(titles, directory / f"{variant}.model", 8000)
        vocabulary = path.read_bytes()
    torch.manual_seed(0)
    save_model_directory(directory / variant, TwoTowerModel(config), vocabulary, {})
    return QueryEncoder(directory / variant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--model", type=Path, help="A trained model directory to measure as well.")
    parser.add_argument("--no-minilm", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_or_exit(args.data)
    queries = sorted(data.judgments)[: args.queries]
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}, "
          f"torch {torch.__version__}, 1 thread; load average {load:.2f}")
    print(f"{len(queries)} Home Depot queries, one at a time; target p99 <= {TARGET_P99_MS} ms")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("default", "text_trigrams"):
            encoder = export(variant, list(data.titles), Path(tmp))
            kinds = ", ".join(c.kind for c in encoder.config.query.channels)
            rows.append((f"ebr query tower ({variant}: {kinds})", *measure(encoder, queries)))
        if args.model:
            trained = QueryEncoder(args.model)
            rows.append((f"ebr query tower (trained, {args.model.name})", *measure(trained, queries)))
    if not args.no_minilm:
        from homedepot_baselines import minilm_latency

        latency = minilm_latency(queries, n=len(queries))
        rows.append(("all-MiniLM-L6-v2 (sentence-transformers)", latency.p50_ms, latency.p99_ms))
    print("\n| encoder | p50 ms | p99 ms |\n|---|---|---|")
    for name, p50, p99 in rows:
        print(f"| {name} | {p50:.3f} | {p99:.3f} |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
