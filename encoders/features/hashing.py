"""MurmurHash3 bucketing of string features.

Python's built-in ``hash`` of a string changes from process to process (PYTHONHASHSEED), which
would silently remap every feature between training and serving; MurmurHash3 (x86, 32-bit) with
a fixed seed is stable across processes, machines and versions.
"""

from __future__ import annotations

import mmh3

from ebr.encoders.errors import EncoderConfigError

DEFAULT_HASH_SEED = 1795009
"""The seed every featurizer uses unless the encoder configuration says otherwise."""


def check_hashing(buckets: int, seed: int, where: str) -> None:
    """Raise :class:`EncoderConfigError` unless ``buckets`` and ``seed`` are usable."""
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise EncoderConfigError(f"{where}: buckets must be a positive integer, got {buckets!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise EncoderConfigError(f"{where}: hash seed must be an integer in [0, 2**32), got {seed!r}")


def hash_bucket(token: str, buckets: int, seed: int = DEFAULT_HASH_SEED) -> int:
    """The bucket in ``[0, buckets)`` of ``token``'s UTF-8 bytes under MurmurHash3 with ``seed``."""
    return mmh3.hash(token.encode("utf-8"), seed, signed=False) % buckets
