"""Reading JSON configuration (index schemas, encoder and training configs): one reader for all.

Every configuration is a frozen dataclass that validates itself in ``__post_init__``; reading
JSON only checks types, fills defaults and refuses unknown keys, each error naming its JSON
path (``schema.keys[0].dimension: expected an integer, got '10'``), so a typo never passes
as a default.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from ebr.errors import EbrError

#: A field with no default: reading it from JSON requires it.
REQUIRED: Any = dataclasses.MISSING

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               list: "a list", tuple: "a list of two values"}


def parse_json_object(text: str, what: str, error: type[EbrError]) -> dict[str, Any]:
    """``text`` as a JSON object, or ``error`` saying what is wrong and where."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise error(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def load_json_object(path: str | Path, what: str, error: type[EbrError]) -> dict[str, Any]:
    """The JSON object in the UTF-8 file ``path``, or ``error`` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise error(f"cannot read {what} {path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    return parse_json_object(text, f"{what} {path}", error)


class ConfigReader:
    """Typed access to one JSON object of a configuration, at JSON path ``where``.

    Read every key the object may hold (:meth:`value` and its shortcuts, :meth:`fields`),
    then call :meth:`done`, which refuses the keys nobody read."""

    def __init__(self, data: object, where: str, error: type[EbrError]) -> None:
        if not isinstance(data, Mapping):
            raise error(f"{where}: expected an object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.where = where
        self.error = error
        self.seen: set[str] = set()

    def value(self, name: str, kind: Any, default: Any = REQUIRED, *, check: bool = True) -> Any:
        """The value of ``name`` as ``kind`` (``str``, ``int``, ``float`` — an integer is
        taken as a float —, ``bool``, ``list``, or a ``tuple[X, Y]`` given as a two-item
        list), ``default`` when absent.

        With ``check=False`` only those conversions are made and a value of another type is
        passed on as it is, for a dataclass whose ``__post_init__`` refuses it in its own
        words (a tuple still needs a list of its length: nothing else can become one)."""
        self.seen.add(name)
        if name not in self.data:
            if default is REQUIRED:
                raise self.error(f"{self.where}.{name}: missing (expected {_type_name(kind)})")
            return default
        value = self.data[name]
        shape = getattr(kind, "__origin__", kind)
        if shape is tuple:
            if not isinstance(value, list | tuple) or len(value) != len(kind.__args__):
                raise self._wrong(name, kind, value)
            return tuple(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not check:
            return value
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok or (kind is float and not math.isfinite(value)):
            raise self._wrong(name, kind, value)
        return value

    def text(self, name: str, default: Any = REQUIRED) -> str:
        return self.value(name, str, default)  # type: ignore[no-any-return]

    def integer(self, name: str, default: Any = REQUIRED) -> int:
        return self.value(name, int, default)  # type: ignore[no-any-return]

    def obj(self, name: str, default: Any = REQUIRED) -> ConfigReader:
        """The object under ``name`` (``default``, e.g. ``{}``, when absent)."""
        self.seen.add(name)
        if name not in self.data and default is REQUIRED:
            raise self.error(f"{self.where}.{name}: missing (expected an object)")
        return ConfigReader(self.data.get(name, default), f"{self.where}.{name}", self.error)

    def items(self, name: str, default: Any = REQUIRED) -> list[ConfigReader]:
        """The objects of the list under ``name``."""
        items = self.value(name, list, default)
        return [ConfigReader(item, f"{self.where}.{name}[{i}]", self.error)
                for i, item in enumerate(items)]

    def fields(self, cls: type, skip: tuple[str, ...] = (), *, check: bool = True) -> dict[str, Any]:
        """Every init field of dataclass ``cls`` but ``skip``, typed by its annotation, with
        the field's default when absent: keyword arguments for ``cls``.  ``check`` as for
        :meth:`value`."""
        hints = get_type_hints(cls)
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init or f.name in skip:
                continue
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            out[f.name] = self.value(f.name, hints[f.name], default, check=check)
        return out

    def only(self, *names: str) -> None:
        """Refuse now, before anything is read, every key but ``names`` (in place of
        :meth:`done`): a misspelt required key (``"vocabsize"``) is then reported as an
        unknown key with the known ones, not as the key it misspells being missing."""
        self.seen.update(names)
        self.done()

    def done(self) -> None:
        """Refuse keys nobody read: a typo (``"namspaces"``) must not pass as a default."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(f"{self.where}: unknown key {unknown[0]!r}; known: "
                             f"{', '.join(sorted(self.seen))}")

    def _wrong(self, name: str, kind: Any, value: Any) -> EbrError:
        return self.error(f"{self.where}.{name}: expected {_type_name(kind)}, got {value!r}")


def _type_name(kind: Any) -> str:
    return _TYPE_NAMES.get(getattr(kind, "__origin__", kind), str(kind))
