"""Train ebr two-tower encoders on the Home Depot train split; evaluated beside the baselines.

Trains each requested variant with :func:`ebr.encoders.training.trainer.train` on the train part of
``judgments_dev.tsv`` (the split of ``homedepot_data.py``), then retrieves for every validation
query from all 54,667 titles — exact cosine (as the MiniLM baseline) and IVF-PQ (Faiss, nprobe swept) — and
prints the protocol's figures (docs/architecture.md) beside BM25 and all-MiniLM-L6-v2 measured in the
same run (``homedepot_baselines.py``).  Training time is wall-clock, 2 threads, this machine.

Variants (``--variant``, repeatable; default ``default``):

- ``default``: character trigrams + word uni/bigrams (2^18 hashed buckets each), 256 wide, both
  towers one network (weight sharing "all"), symmetric in-batch softmax (scale 20), batches of
  1,024, pairs rated >= 2 as positives, one pseudo query per title per epoch, early stopping
  (patience 2) on 10% of the train split's queries;
- ``text_only``: the transformer channel over SentencePiece ids alone;
- ``text_trigrams``: the transformer channel + character trigrams;
- ``triplet``: ``default`` with the triplet loss (one random negative per query) instead;
- ``curriculum``: ``default`` + 2 epochs of the stage-2 hardest-negative margin loss (at 0.1 of
  the learning rates, from stage 1's best weights);
- ``hard_negatives``: ``default`` + offline hard negatives (ranks 101-500, easy:hard 1:1);
- ``separate_towers``: ``default`` without weight sharing (EBR's separate towers).

``--set NAME=JSON`` overrides a training setting, ``--dim`` the widths and ``--trigram-buckets`` the
trigram table's rows (2^18; Home Depot's titles and queries hold about 11k distinct trigrams but
171k word uni/bigrams, as ``bench/model_files.py`` counts), for exploring.

    python bench/homedepot_train.py [--data DIR] [--variant NAME ...] [--epochs N]
                                    [--no-baselines] [--save DIR] [--threads 2] [--trigram-buckets N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from homedepot_baselines import exact_cosine_runs, markdown_table  # noqa: E402
from homedepot_data import HomeDepot, add_data_argument, load_or_exit  # noqa: E402

from ebr.encoders.encoder_config import (  # noqa: E402
    CharTrigramChannel,
    EncoderConfig,
    TextTransformerChannel,
    TowerConfig,
    WordNgramChannel,
)
from ebr.encoders.serving.model_directory import EncoderModel, save_model_directory  # noqa: E402
from ebr.encoders.training.config import TrainConfig  # noqa: E402
from ebr.encoders.training.data import prepare  # noqa: E402
from ebr.encoders.training.pairs import Pair  # noqa: E402
from ebr.encoders.training.trainer import train  # noqa: E402
from ebr.evaluation.metrics import RetrievalReport, evaluate_rankings, ranked_lists  # noqa: E402

DEPTH = 1000
#: Pairs rated at least this are training positives (the protocol's "relevant" is 2.5; the
#: 2.0-2.5 pairs are still good evidence of what a query is about).
TRAIN_POSITIVE = 2.0
BUCKETS = 2**18
VOCABULARY = 8000
NLIST = 256  # about sqrt(54,667)
NPROBES = (8, 16, 32, 64, 128)
REFINE = 2


def encoder_config(variant: str, dim: int = 256, trigram_buckets: int = BUCKETS) -> EncoderConfig:
    def tower(field: str) -> TowerConfig:
        trigrams = CharTrigramChannel("trigrams", field, trigram_buckets, dim)
        words = WordNgramChannel("words", field, BUCKETS, dim)
        text = TextTransformerChannel("text", field, VOCABULARY, max_length=32)
        channels: tuple[Any, ...] = {"text_only": (text,), "text_trigrams": (text, trigrams)}.get(
            variant, (trigrams, words))
        return TowerConfig(channels, hidden_dim=dim)

    sharing = "none" if variant == "separate_towers" else "all"
    return EncoderConfig(query=tower("text"), doc=tower("title"), output_dim=dim, weight_sharing=sharing)


def train_config(variant: str, epochs: int, threads: int, overrides: Mapping[str, Any]) -> TrainConfig:
    config = TrainConfig(epochs=epochs, batch_size=1024, positive_threshold=TRAIN_POSITIVE,
                         pseudo_queries=1.0, pseudo_query_fields=("title", "text"), knn_recall_k=100,
                         patience=2, threads=threads)
    changes: dict[str, Any] = {
        "triplet": {"loss": "triplet"},
        "curriculum": {"curriculum_epochs": 2},
        "hard_negatives": {"hard_negatives": True},
    }.get(variant, {})
    return config.replace(**changes).replace(**overrides)


VARIANTS = (
    "default", "text_only", "text_trigrams", "triplet", "curriculum", "hard_negatives", "separate_towers",
)


def pairs(data: HomeDepot, split: str) -> list[Pair]:
    titles = data.title_of()
    out = []
    for query, judged in data.qrels(split).items():  # type: ignore[arg-type]
        for uid, relevance in judged.items():
            out.append(Pair({"text": query}, {"id": uid, "title": titles[uid]}, relevance))
    return out


def ivfpq_runs(queries: Sequence[str], q: npt.NDArray[np.float32], docs: npt.NDArray[np.float32],
               ids: Sequence[str]) -> dict[int, dict[str, list[str]]]:
    """IVF-PQ as the stores run it: ``NLIST`` coarse clusters, PQ codes of d/4 bytes for a
    first pass, then exact cosine on the ``REFINE`` × top-K best codes; one run per nprobe."""
    quantizer = faiss.IndexFlatIP(docs.shape[1])
    code_bytes = docs.shape[1] // 4
    ivfpq = faiss.IndexIVFPQ(quantizer, docs.shape[1], NLIST, code_bytes, 8, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexRefineFlat(ivfpq)
    index.k_factor = REFINE
    index.train(docs)
    index.add(docs)
    out = {}
    for nprobe in NPROBES:
        faiss.extract_index_ivf(index).nprobe = nprobe
        _, top = index.search(q, DEPTH)
        out[nprobe] = ranked_lists(queries, top, ids)
    return out


def run_variant(variant: str, data: HomeDepot, args: argparse.Namespace) -> dict[str, RetrievalReport]:
    encoder = encoder_config(variant, args.dim, args.trigram_buckets)
    config = train_config(variant, args.epochs, args.threads, _overrides(args.set))
    extras = [*(args.set or ()), *([f"dim={args.dim}"] if args.dim != 256 else []),
              *([f"trigram_buckets={args.trigram_buckets}"] if args.trigram_buckets != BUCKETS else [])]
    label = variant + (f" [{', '.join(extras)}]" if extras else "")
    corpus = [{"id": uid, "title": t} for uid, t in zip(data.product_ids, data.titles, strict=True)]
    # Early stopping watches a slice of the train split's queries (validation_fraction), so the
    # validation split below is measured by a model that never saw it, not even to pick an epoch.
    # That slice is also what homedepot_eval.py trains the reranker on (queries the encoder did
    # not fit).
    training = prepare(pairs(data, "train"), config, None, corpus)
    print(f"\n## {label}: {len(training.train_positives):,} positive training pairs, "
          f"{len(training.corpus):,} documents; {encoder.to_dict()['weight_sharing']} sharing; "
          f"{config.to_dict()}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        result = train(encoder, config, training, work, progress=sys.stderr.isatty(), log=print)
        seconds = time.perf_counter() - started
    print(f"{label}: trained in {seconds / 60:.1f} min ({len(result.history)} epochs, "
          f"best {result.best_epoch}"
          f"{', stopped early' if result.stopped_early else ''})", flush=True)
    model = EncoderModel(result.model, result.vocabulary)
    if args.save:
        info = save_model_directory(Path(args.save) / variant, result.model, result.vocabulary,
                                    result.summary(config))
        print(f"saved {Path(args.save) / variant} ({info.key})")
    qrels = data.qrels("validation")
    queries = sorted(qrels)
    started = time.perf_counter()
    docs = model.encode_docs([{"title": t} for t in data.titles], batch_size=1024)
    encode_seconds = time.perf_counter() - started
    print(f"{label}: encoded {len(docs):,} titles in {encode_seconds:.1f} s "
          f"({len(docs) / encode_seconds:,.0f} titles/s, batch 1024, {args.threads} threads)")
    q = model.encode_queries([{"text": s} for s in queries])
    exact = exact_cosine_runs(q, docs, queries, data.product_ids)
    reports = {f"ebr {label}, exact": evaluate_rankings(exact, qrels)}
    if variant == "default" or args.ivf_all:
        for nprobe, runs in ivfpq_runs(queries, q, docs, data.product_ids).items():
            reports[f"ebr {label}, IVF-PQ nprobe {nprobe}"] = evaluate_rankings(runs, qrels)
    return reports


def _overrides(settings: Sequence[str] | None) -> dict[str, Any]:
    """``--set name=JSON`` training settings, e.g. ``random_negatives=1024``."""
    out: dict[str, Any] = {}
    for setting in settings or ():
        name, _, value = setting.partition("=")
        parsed = json.loads(value)
        out[name] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--variant", action="append", choices=VARIANTS,
                        help="Variant to train (repeatable; default: default).")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256, help="Channel, hidden and output width.")
    parser.add_argument("--trigram-buckets", type=int, default=BUCKETS,
                        help=f"Rows of the character trigram table (default {BUCKETS}).")
    parser.add_argument("--set", action="append", metavar="NAME=JSON",
                        help="Override a training setting (repeatable), e.g. random_negatives=1024.")
    parser.add_argument("--no-baselines", action="store_true", help="Skip BM25 and MiniLM.")
    parser.add_argument("--ivf-all", action="store_true", help="IVF-PQ figures for every variant.")
    parser.add_argument("--save", help="Write each variant's model directory under this directory.")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    data = load_or_exit(args.data)
    reports: dict[str, RetrievalReport] = {}
    if not args.no_baselines:
        from homedepot_baselines import baseline_runs

        qrels = data.qrels("validation")
        for name, runs in baseline_runs(data, sorted(qrels)).items():
            reports[name] = evaluate_rankings(runs, qrels)
        print("\n" + markdown_table(reports), flush=True)
    for variant in args.variant or ["default"]:
        reports.update(run_variant(variant, data, args))
        print("\n" + markdown_table(reports), flush=True)


if __name__ == "__main__":
    main()
