"""The snapshot file: a commit's in-memory state saved beside the database, so that open
maps it instead of rebuilding it from every row (``<dir>/index.snapshot``).

The file is a cache of the database, never a second source of truth: it is stamped with the
database's commit counter (``meta.commits``), its number of documents and its schema, and
hashed whole (xxHash3); :func:`load` refuses it (:class:`Unusable`) when anything differs —
stale, damaged, truncated, from another format — and the store then rebuilds from the
database as it did before snapshots existed.

What is saved is found by walking the snapshot's values, not listed here, so fields added to
:class:`~ebr.stores.local.snapshot.Snapshot`, :class:`~ebr.stores.local.vectors.VectorTable`
or the quantizers are saved with no change to this module:

- NumPy arrays: their bytes, 64-byte aligned, mapped back read-only on load
  (``np.frombuffer`` over one ``mmap``): open reads nothing of them but the hash, and a
  search pages in what it touches.  Append-only buffers stay correct over a read-only map:
  :func:`~ebr.stores.local.vectors.append` copies a read-only buffer before writing.
- Roaring bitmaps: their portable serialisation; a mapping of names to bitmaps (the posting
  lists) as one block of names and one of bitmaps.
- Lists of strings (document ids): one UTF-8 text and each string's length.
- Instances of the classes of :func:`classes` only (dataclasses, and the quantizers, whose
  constructors take their attributes by name), named in the file by their qualified name
  and looked up in that fixed list on load (never imported by name: a file could otherwise
  name any callable); mappings with string keys; lists; tuples; JSON scalars.  Anything
  else is refused (``TypeError``) when saving, never saved half.

Layout: ``MAGIC``, the sections, the header (JSON: the stamp, the tree of values naming
their sections, the hash of everything before it), then a footer (the header's offset,
length and hash, ``MAGIC``).  A new file is written under a temporary name, synced and
renamed over the old one: a crash while saving leaves the previous file (stale, hence
refused) or none.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import xxhash
from pyroaring import BitMap, FrozenBitMap

from ebr.stores.local.database import fsync_directory
from ebr.stores.local.snapshot import Snapshot

SNAPSHOT_FILE = "index.snapshot"
TEMPORARY_FILE = SNAPSHOT_FILE + ".tmp"
MAGIC = b"EBRSNAP1"
FORMAT = 1
_ALIGN = 64
_FOOTER = struct.Struct("<QQQ8s")  # header offset, header length, header hash, MAGIC
_HASH_BLOCK = 16 << 20


@functools.cache
def classes() -> dict[str, type]:
    """The only classes a snapshot file may hold, by the name the file gives them."""
    from ebr.quantization.coarse import CentroidQuantizer
    from ebr.quantization.product import ProductCodes
    from ebr.stores.local.lengths import NamespaceLengths
    from ebr.stores.local.vectors import VectorTable

    return {f"{c.__module__}:{c.__qualname__}": c for c in (
        Snapshot, VectorTable, NamespaceLengths, CentroidQuantizer, ProductCodes)}


class Unusable(Exception):
    """The snapshot file cannot stand for the database (the message says why)."""


@dataclass(frozen=True)
class Stamp:
    """What the database holds, which a usable snapshot must match."""

    commits: int
    documents: int
    schema: int  # checksum of the schema's JSON text

    def header(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# -- saving ------------------------------------------------------------------------------------


def save(directory: Path, snapshot: Snapshot, stamp: Stamp) -> None:
    """Write ``snapshot`` as the database's state at ``stamp``, atomically."""
    temporary, final = directory / TEMPORARY_FILE, directory / SNAPSHOT_FILE
    with open(temporary, "wb") as f:
        writer = _Writer(f)
        tree = writer.value(snapshot)
        body_hash = writer.hash.hexdigest()
        header = json.dumps({"format": FORMAT, **stamp.header(), "body": body_hash,
                             "snapshot": tree}).encode()
        offset = writer.offset
        f.write(header)
        f.write(_FOOTER.pack(offset, len(header), xxhash.xxh3_64_intdigest(header), MAGIC))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)
    fsync_directory(directory)


class _Writer:
    """Sections appended to the file, and the JSON tree naming them."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.hash = xxhash.xxh3_64()
        self.offset = 0
        self._write(MAGIC)

    def _write(self, data: bytes | memoryview) -> None:
        self.f.write(data)
        self.hash.update(data)
        self.offset += len(data)

    def section(self, data: bytes | memoryview) -> list[int]:
        self._write(b"\0" * (-self.offset % _ALIGN))
        start = self.offset
        self._write(data)
        return [start, self.offset - start]

    def array(self, a: np.ndarray[Any, Any]) -> dict[str, Any]:
        if a.dtype.hasobject:
            raise TypeError(f"cannot save an array of {a.dtype}")
        a = np.ascontiguousarray(a)
        data = a.reshape(-1).view(np.uint8).data if a.size else b""
        return {"array": self.section(data), "dtype": a.dtype.str,
                "shape": list(a.shape)}

    def strings(self, values: list[str]) -> dict[str, Any]:
        text = "\0".join(values).encode("utf-8", "surrogatepass")
        lengths = np.fromiter(map(len, values), np.uint32, len(values))
        return {"strings": self.section(text), "lengths": self.array(lengths)}

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, np.generic):
            return self.value(v.item())
        if isinstance(v, np.ndarray):
            return self.array(v)
        if isinstance(v, BitMap | FrozenBitMap):
            return {"bitmap": self.section(v.serialize()),
                    "frozen": isinstance(v, FrozenBitMap)}
        if isinstance(v, list) and v and all(isinstance(s, str) for s in v):
            return self.strings(v)
        if isinstance(v, list | tuple):
            return {type(v).__name__: [self.value(x) for x in v]}
        if isinstance(v, Mapping) and all(isinstance(k, str) for k in v):
            if v and all(isinstance(b, FrozenBitMap) for b in v.values()):
                return self.bitmaps(v)
            return {"mapping": {k: self.value(x) for k, x in v.items()}}
        cls, name = type(v), f"{type(v).__module__}:{type(v).__qualname__}"
        if classes().get(name) is not cls:
            raise TypeError(f"cannot save a {cls.__module__}.{cls.__qualname__}")
        return {"object": name,
                "fields": {name: self.value(getattr(v, name)) for name in _attributes(cls)}}

    def bitmaps(self, named: Mapping[str, FrozenBitMap]) -> dict[str, Any]:
        blobs = [b.serialize() for b in named.values()]
        ends = np.cumsum([len(b) for b in blobs], dtype=np.uint64)
        return {"bitmaps": self.strings(list(named)), "data": self.section(b"".join(blobs)),
                "ends": self.array(ends)}


def _attributes(cls: type) -> list[str]:
    """The attributes that rebuild an instance: a dataclass's fields, else the
    constructor's parameters (each an attribute of the same name)."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return list(inspect.signature(cls).parameters)


# -- loading -----------------------------------------------------------------------------------


def load(directory: Path, stamp: Stamp) -> Snapshot:
    """The snapshot saved in ``directory``, if it is whole and stands for the database at
    ``stamp``; else :class:`Unusable`.  Its arrays are read-only views of the file."""
    path = directory / SNAPSHOT_FILE
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(MAGIC) + _FOOTER.size:
                raise Unusable(f"{path.name} is cut short")
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        raise Unusable(f"no {path.name}") from None
    except (OSError, ValueError) as e:
        raise Unusable(f"{path.name} cannot be read: {e}") from None
    try:
        header = _header(mapped, size)
    except (ValueError, UnicodeDecodeError) as e:
        raise Unusable(f"{path.name} is damaged: {e}") from None
    if header.get("format") != FORMAT:
        raise Unusable(f"{path.name} has format {header.get('format')!r}, not {FORMAT}")
    found = Stamp(**{k: header.get(k) for k in stamp.header()})  # type: ignore[arg-type]
    if found != stamp:
        raise Unusable(f"{path.name} is stale: it was saved at {found}, the database is at "
                       f"{stamp}")
    if _body_hash(mapped, header["_offset"]) != header.get("body"):
        raise Unusable(f"{path.name} is damaged: its contents do not match their hash")
    try:
        snapshot = _Reader(mapped).value(header["snapshot"])
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise Unusable(f"{path.name} cannot be read back: {type(e).__name__}: {e}") from None
    if not isinstance(snapshot, Snapshot):
        raise Unusable(f"{path.name} does not hold a snapshot")
    return snapshot


def _header(mapped: mmap.mmap, size: int) -> dict[str, Any]:
    offset, length, digest, magic = _FOOTER.unpack(mapped[size - _FOOTER.size:])
    if mapped[:len(MAGIC)] != MAGIC or magic != MAGIC:
        raise ValueError("not a snapshot file, or cut short")
    if offset + length + _FOOTER.size != size:
        raise ValueError("its footer does not match its size")
    text = mapped[offset:offset + length]
    if xxhash.xxh3_64_intdigest(text) != digest:
        raise ValueError("its header does not match its hash")
    header: dict[str, Any] = json.loads(text)
    header["_offset"] = offset
    return header


def _body_hash(mapped: mmap.mmap, end: int) -> str:
    """The hash of the sections, read through the map and dropped from this process's
    resident pages as it goes (they stay in the page cache): hashing does not make the
    whole file resident."""
    h = xxhash.xxh3_64()
    view = memoryview(mapped)
    try:
        for start in range(0, end, _HASH_BLOCK):
            stop = min(start + _HASH_BLOCK, end)
            h.update(view[start:stop])
            if hasattr(mmap, "MADV_DONTNEED"):
                mapped.madvise(mmap.MADV_DONTNEED, start, stop - start)
    finally:
        view.release()
    return h.hexdigest()


class _Reader:
    """The values of a JSON tree, over the mapped file."""

    def __init__(self, mapped: mmap.mmap) -> None:
        self.mapped = mapped

    def bytes(self, section: list[int]) -> bytes:
        start, length = section
        if start < 0 or start + length > len(self.mapped):
            raise ValueError("a section lies outside the file")
        return self.mapped[start:start + length]

    def array(self, node: dict[str, Any]) -> np.ndarray[Any, Any]:
        dtype, shape = np.dtype(node["dtype"]), tuple(node["shape"])
        (start, length), count = node["array"], int(np.prod(shape))
        if dtype.hasobject or length != count * dtype.itemsize or (
                start + length > len(self.mapped)):
            raise ValueError("an array does not fit its section")
        if count == 0:
            return np.zeros(shape, dtype)
        return np.frombuffer(self.mapped, dtype, count, start).reshape(shape)

    def strings(self, node: dict[str, Any]) -> list[str]:
        text = self.bytes(node["strings"]).decode("utf-8", "surrogatepass")
        lengths = self.array(node["lengths"])
        if not len(lengths):
            return []
        if text.count("\0") == len(lengths) - 1:  # no string holds a NUL: split at them
            return text.split("\0")
        ends = np.cumsum(lengths.astype(np.int64)) + np.arange(len(lengths))
        return [text[e - n:e] for e, n in zip(ends.tolist(), lengths.tolist(), strict=True)]

    def value(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "array" in node:
            return self.array(node)
        if "bitmap" in node:
            bitmap = (FrozenBitMap if node["frozen"] else BitMap).deserialize(
                self.bytes(node["bitmap"]))
            return bitmap
        if "strings" in node:
            return self.strings(node)
        if "tuple" in node:
            return tuple(self.value(x) for x in node["tuple"])
        if "list" in node:
            return [self.value(x) for x in node["list"]]
        if "mapping" in node:
            return {k: self.value(x) for k, x in node["mapping"].items()}
        if "bitmaps" in node:
            names, data = self.strings(node["bitmaps"]), self.bytes(node["data"])
            ends = self.array(node["ends"]).tolist()
            return {name: FrozenBitMap.deserialize(data[start:end]) for name, start, end
                    in zip(names, [0, *ends[:-1]], ends, strict=True)}
        return self.instance(node["object"], node["fields"])

    def instance(self, name: str, fields: dict[str, Any]) -> Any:
        cls = classes().get(name)
        if cls is None:
            raise ValueError(f"{name} is not a class a snapshot may hold")
        values = {k: self.value(v) for k, v in fields.items()}
        if set(values) != set(_attributes(cls)):
            raise ValueError(f"the fields saved for {name} are not its fields")
        make: Any = cls  # a class found at run time, called with its own fields
        if not dataclasses.is_dataclass(cls):
            return make(**values)
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = make(**{k: v for k, v in values.items() if k in init})
        for k, v in values.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
