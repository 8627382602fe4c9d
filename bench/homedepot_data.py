"""Home Depot product search data: products, graded judgments, and the train/validation split.

The data (Kaggle "Home Depot Product Search Relevance", evaluation use only) is read from
``--data`` (default ``../shared/data/homedepot`` beside the repository) and never copied into
the repository.  Queries are split by a fixed hash of their text (:func:`is_validation`), so a
query is in the same part on every machine and run, and never in both.

    python bench/homedepot_data.py [--data DIR]      # prints the sizes of the split
"""

from __future__ import annotations

import argparse
import csv
import sys
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ebr.evaluation.metrics import RELEVANT_AT

#: The one definition of the split: ``crc32(utf-8 query) % SPLIT_MODULUS < VALIDATION_BUCKETS``
#: is validation (about 20% of the queries), everything else is train.
SPLIT_MODULUS = 10
VALIDATION_BUCKETS = 2

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "homedepot"
PRODUCTS_FILE = "products.tsv"
JUDGMENTS_FILE = "judgments_dev.tsv"

Split = Literal["train", "validation", "all"]


def is_validation(query: str) -> bool:
    """Whether ``query`` belongs to the validation split (a fixed hash of its exact text)."""
    return zlib.crc32(query.encode("utf-8")) % SPLIT_MODULUS < VALIDATION_BUCKETS


def in_split(query: str, split: Split) -> bool:
    return split == "all" or is_validation(query) == (split == "validation")


@dataclass(frozen=True)
class HomeDepot:
    """The corpus (product ids and titles, in file order) and every judgment, by query."""

    product_ids: tuple[str, ...]
    titles: tuple[str, ...]
    judgments: dict[str, dict[str, float]]  # query -> product_uid -> relevance (1-3)

    def title_of(self) -> dict[str, str]:
        return dict(zip(self.product_ids, self.titles, strict=True))

    def qrels(self, split: Split = "validation") -> dict[str, dict[str, float]]:
        """Graded judgments of the split's queries: ``{query: {product_uid: relevance}}``."""
        return {q: dict(j) for q, j in self.judgments.items() if in_split(q, split)}

    def queries(self, split: Split = "validation", *, with_relevant: bool = False) -> list[str]:
        """The split's queries in file order; ``with_relevant``: only those with a relevant product
        (the queries every metric is averaged over)."""
        return [q for q, j in self.judgments.items()
                if in_split(q, split) and (not with_relevant or max(j.values()) >= RELEVANT_AT)]

    def training_pairs(self, split: Split = "train") -> list[tuple[str, str, float]]:
        """``(query, title, relevance)`` for every judgment of the split (train by default)."""
        titles = self.title_of()
        return [(q, titles[uid], rel) for q, j in self.judgments.items() if in_split(q, split)
                for uid, rel in j.items()]


def _read_tsv(path: Path, header: Sequence[str]) -> list[list[str]]:
    # QUOTE_NONE: titles contain inch marks (") that are not CSV quoting.
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != list(header):
        raise ValueError(f"{path}: expected the header {' <tab> '.join(header)}")
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {n}: expected {len(header)} tab-separated fields")
    return rows[1:]


def load_homedepot(data_dir: Path | str = DEFAULT_DATA_DIR) -> HomeDepot:
    """Read ``products.tsv`` and ``judgments_dev.tsv`` from ``data_dir``.

    A (query, product) pair judged twice (two in the file) keeps the mean of its relevances:
    each is already a rater average.
    """
    data_dir = Path(data_dir)
    products = _read_tsv(data_dir / PRODUCTS_FILE, ("product_uid", "title"))
    known = {uid for uid, _ in products}
    seen: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for n, (query, uid, rel) in enumerate(
            _read_tsv(data_dir / JUDGMENTS_FILE, ("query", "product_uid", "relevance")), start=2):
        if uid not in known:
            raise ValueError(f"{data_dir / JUDGMENTS_FILE}, line {n}: unknown product_uid {uid}")
        seen[query][uid].append(float(rel))
    judgments = {q: {uid: sum(rs) / len(rs) for uid, rs in j.items()} for q, j in seen.items()}
    return HomeDepot(tuple(uid for uid, _ in products), tuple(t for _, t in products), judgments)


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"directory with {PRODUCTS_FILE} and {JUDGMENTS_FILE} "
                             f"(default: {DEFAULT_DATA_DIR})")


def load_or_exit(data_dir: Path) -> HomeDepot:
    """Load the data, or exit with a message (status 0: absent data is a skip, not a failure)."""
    missing = [f for f in (PRODUCTS_FILE, JUDGMENTS_FILE) if not (data_dir / f).is_file()]
    if missing:
        print(f"skipped: the Home Depot data is absent ({', '.join(missing)} not in {data_dir}); "
              "pass --data DIR", file=sys.stderr)
        raise SystemExit(0)
    return load_homedepot(data_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(ap)
    data = load_or_exit(ap.parse_args().data)
    print(f"products: {len(data.product_ids)}")
    print(f"split: crc32(query) % {SPLIT_MODULUS} < {VALIDATION_BUCKETS} is validation")
    for split in ("train", "validation", "all"):
        qrels = data.qrels(split)
        print(f"{split}: {len(qrels)} queries, {len(data.queries(split, with_relevant=True))} with a "
              f"relevant product (>= {RELEVANT_AT}), {sum(map(len, qrels.values()))} judgments")


if __name__ == "__main__":
    main()
