"""A trained model's files: their size, and what float16 tables cost in recall, on Home Depot.

Given a model directory of either format (e.g. ``homedepot_train.py --save DIR``'s), this writes
it as format 2 with float32 and with float16 hashed tables and, for each, encodes every title
and validation query with the directory as loaded and retrieves by exact cosine (as
``homedepot_train.py``'s "exact" rows): the protocol's figures side by side, with how far the
embeddings moved and how many top-10 lists changed.  It also counts the distinct character
trigrams and word n-grams of the titles and queries and the share of them that share a bucket
at several table sizes (fewer buckets are a training choice: ``homedepot_train.py
--trigram-buckets``).

    python bench/model_files.py --model DIR [--data DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from homedepot_baselines import exact_cosine_runs, markdown_table  # noqa: E402
from homedepot_data import HomeDepot, add_data_argument, load_or_exit  # noqa: E402

from ebr.encoders.features.hashing import hash_bucket  # noqa: E402
from ebr.encoders.features.ngrams import word_ngrams  # noqa: E402
from ebr.encoders.features.trigrams import char_trigrams  # noqa: E402
from ebr.encoders.serving.model_directory import EncoderModel, save_model_directory  # noqa: E402
from ebr.encoders.serving.model_files import read_model_info  # noqa: E402
from ebr.evaluation.metrics import RetrievalReport, evaluate_rankings  # noqa: E402

MiB = 2**20
TABLE_SIZES = (2**18, 2**16, 50_000, 2**14)


def sizes(path: Path) -> str:
    files = sorted(path.iterdir())
    total = sum(f.stat().st_size for f in files)
    listed = ", ".join(f"{f.name} {f.stat().st_size / MiB:,.1f}" for f in files if f.stat().st_size > MiB)
    return f"{total / MiB:,.1f} MiB ({listed})"


def collisions(grams: set[str], buckets: int) -> float:
    """The share of distinct grams whose bucket holds another gram too."""
    counts = Counter(hash_bucket(g, buckets) for g in grams)
    return sum(1 for g in grams if counts[hash_bucket(g, buckets)] > 1) / len(grams)


def vocabulary(data: HomeDepot) -> None:
    texts = [*data.titles, *data.judgments]
    trigrams: set[str] = set()
    words: set[str] = set()
    for text in texts:
        trigrams.update(char_trigrams(text))
        words.update(word_ngrams(text, 2))
    print(f"\n{len(texts):,} titles and queries: {len(trigrams):,} distinct trigrams, "
          f"{len(words):,} distinct word uni/bigrams")
    print("| buckets | trigrams sharing a bucket | word n-grams sharing a bucket |\n|---|---|---|")
    for buckets in TABLE_SIZES:
        print(f"| {buckets:,} | {collisions(trigrams, buckets):.1%} | {collisions(words, buckets):.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--model", type=Path, required=True, help="A trained model directory.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_or_exit(args.data)
    info = read_model_info(args.model)
    print(f"{args.model} ({info.key}): {sizes(args.model)}")
    qrels = data.qrels("validation")
    queries = sorted(qrels)
    reports: dict[str, RetrievalReport] = {}
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = EncoderModel.load(args.model)
        for tables in ("float32", "float16"):
            path = Path(tmp) / tables
            written = save_model_directory(path, source.model, source.vocabulary, {}, tables=tables)
            print(f"format 2, {tables} tables ({written.key}): {sizes(path)}")
            model = EncoderModel.load(path)
            started = time.perf_counter()
            docs = model.encode_docs([{"title": t} for t in data.titles])
            q = model.encode_queries([{"text": s} for s in queries])
            print(f"  encoded {len(docs):,} titles and {len(q):,} queries in "
                  f"{time.perf_counter() - started:.1f} s")
            embeddings[tables] = (q, docs)
            runs = exact_cosine_runs(q, docs, queries, data.product_ids)
            reports[f"{args.model.name}, {tables} tables, exact"] = evaluate_rankings(runs, qrels)
            del model
    (q32, d32), (q16, d16) = embeddings["float32"], embeddings["float16"]
    print(f"\nfloat16 vs float32 embeddings: max |difference| queries {np.abs(q16 - q32).max():.2e}, "
          f"titles {np.abs(d16 - d32).max():.2e}; mean cosine titles {np.mean(np.sum(d16 * d32, 1)):.6f}")
    top32 = np.argsort(-(q32 @ d32.T), axis=1)[:, :10]
    top16 = np.argsort(-(q16 @ d16.T), axis=1)[:, :10]
    same = np.mean([set(a) == set(b) for a, b in zip(top32, top16, strict=True)])
    print(f"top-10 lists with the same titles: {same:.1%} of {len(queries):,} queries")
    print("\n" + markdown_table(reports))
    vocabulary(data)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
