"""Query tower latency and model size, before (format 1: TorchScript) and after (format 2), one run.

Each architecture of ``homedepot_train.py`` (and ``--model``, a trained model directory of either
format) is written three ways and served the way a query service would, one record at a time on
one thread:

- before: format 1, ``weights.pt`` + ``query_tower.pt`` (the query tower traced to TorchScript,
  the hashed tables a second time), served by the TorchScript module as ebr did;
- after: ``weights.safetensors`` with float32 tables, then float16 tables, served by
  :class:`ebr.encoders.serving.query_encoder.QueryEncoder` (numpy for bag-only towers, torch's
  eager tower otherwise).

Latency does not depend on the weights' values, so the towers are freshly initialised unless
``--model`` names a trained model directory.  Every figure is over the same >= 1,000 real Home
Depot queries, measured in this run (target p99 <= 1.0 ms); ratios are to the TorchScript row.

    python bench/query_tower_latency.py [--data DIR] [--queries 2000] [--model DIR] [--no-minilm]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from homedepot_data import add_data_argument, load_or_exit  # noqa: E402
from homedepot_train import encoder_config  # noqa: E402
from torch import nn  # noqa: E402

from ebr.encoders.features.batches import BagBatch, FeatureBatch, TokenBatch  # noqa: E402
from ebr.encoders.features.tokenizer import train_sentencepiece  # noqa: E402
from ebr.encoders.features.tower_featurizer import TowerFeaturizer  # noqa: E402
from ebr.encoders.model.towers import Tower, TwoTowerModel  # noqa: E402
from ebr.encoders.serving.model_directory import EncoderModel, save_model_directory  # noqa: E402
from ebr.encoders.serving.model_files import tokenizer_for  # noqa: E402
from ebr.encoders.serving.query_encoder import QueryEncoder  # noqa: E402

TARGET_P99_MS = 1.0
WARMUP = 50
MiB = 2**20
Encode = Callable[[Mapping[str, Any]], Any]


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def measure(encode: Encode, queries: list[str]) -> tuple[float, float]:
    for q in queries[:WARMUP]:
        encode({"text": q})
    samples = []
    for q in queries:
        started = time.perf_counter()
        encode({"text": q})
        samples.append((time.perf_counter() - started) * 1e3)
    return percentiles(samples)


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir())


class _FlatTower(nn.Module):
    """Format 1's export: the tower over its channels' tensors laid end to end."""

    def __init__(self, tower: Tower) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        batch: dict[str, FeatureBatch] = {}
        i = 0
        for name, channel in zip(self.tower.channel_names, self.tower.config.channels, strict=True):
            if channel.kind == "text_transformer":
                batch[name] = TokenBatch(tensors[i], tensors[i + 1])
                i += 2
            else:
                batch[name] = BagBatch(tensors[i], tensors[i + 1], tensors[i + 2])
                i += 3
        embeddings: torch.Tensor = self.tower(batch)
        return embeddings


def _flat(batch: Mapping[str, FeatureBatch]) -> tuple[torch.Tensor, ...]:
    out: list[torch.Tensor] = []
    for features in batch.values():
        out += ((features.ids, features.offsets, features.weights) if isinstance(features, BagBatch)
                else (features.ids, features.mask))
    return tuple(out)


def format1(model: EncoderModel, directory: Path) -> Encode:
    """Write ``model`` as format 1 did (TorchScript, deprecated: its warnings are silenced
    here, the baseline) and return its serving function."""
    directory.mkdir()
    torch.save(model.model.state_dict(), directory / "weights.pt")
    featurizer = TowerFeaturizer(model.config.query, model.config.hash_seed,
                                 tokenizer_for(model.config, model.vocabulary))
    example = featurizer.featurize([{"text": "a"}, {"text": "cordless hammer drill with two batteries"}])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = _FlatTower(model.model.query_tower).eval()
        traced = torch.jit.trace(flat, _flat(example), check_trace=False)
        torch.jit.save(torch.jit.freeze(traced), str(directory / "query_tower.pt"))
        module = torch.jit.load(str(directory / "query_tower.pt"))

    def encode(record: Mapping[str, Any]) -> Any:
        with torch.inference_mode():
            return module(*_flat(featurizer.featurize([record])))[0].numpy()

    return encode


def rows_for(label: str, model: EncoderModel, queries: list[str], work: Path) -> list[tuple[str, ...]]:
    before = format1(model, work / "format1")
    size0 = directory_size(work / "format1")
    p50_0, p99_0 = measure(before, queries)
    rows = [(label, "format 1: weights.pt + query_tower.pt, TorchScript", f"{size0 / MiB:,.1f}",
             f"{p50_0:.3f}", f"{p99_0:.3f}", "1.00")]
    for tables in ("float32", "float16"):
        path = work / tables
        save_model_directory(path, model.model, model.vocabulary, {}, tables=tables)
        encoder = QueryEncoder(path)
        p50, p99 = measure(encoder.encode, queries)
        rows.append((label, f"weights.safetensors, {tables} tables, {encoder.runtime}",
                     f"{directory_size(path) / MiB:,.1f}", f"{p50:.3f}", f"{p99:.3f}", f"{p99 / p99_0:.2f}"))
    return rows


def fresh(variant: str, titles: list[str], directory: Path) -> EncoderModel:
    config = encoder_config(variant)
    vocabulary = None
    if variant in ("text_only", "text_trigrams"):
        vocabulary = train_sentencepiece(titles, directory / f"{variant}.model", 8000).read_bytes()
    torch.manual_seed(0)
    return EncoderModel(TwoTowerModel(config), vocabulary)


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
          f"torch {torch.__version__}, numpy {np.__version__}, 1 thread; load average {load:.2f}")
    print(f"{len(queries)} Home Depot queries, one at a time; target p99 <= {TARGET_P99_MS} ms")
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        models = [(f"{v} (untrained)", lambda v=v: fresh(v, list(data.titles), Path(tmp)))
                  for v in ("default", "text_trigrams")]
        if args.model:
            models.append((f"trained {args.model.name}", lambda: EncoderModel.load(args.model)))
        for n, (label, load_model) in enumerate(models):
            work = Path(tmp) / str(n)
            work.mkdir()
            model = load_model()
            kinds = ", ".join(c.kind for c in model.config.query.channels)
            rows += rows_for(f"{label}: {kinds}", model, queries, work)
            del model
    if not args.no_minilm:
        from homedepot_baselines import minilm_latency

        latency = minilm_latency(queries, n=len(queries))
        rows.append(("all-MiniLM-L6-v2 (sentence-transformers)", "", "", f"{latency.p50_ms:.3f}",
                     f"{latency.p99_ms:.3f}", ""))
    print("\n| model | files, runtime | size MiB | p50 ms | p99 ms | p99 / TorchScript |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
