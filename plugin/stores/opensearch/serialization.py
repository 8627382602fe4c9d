"""opensearch-py's JSON through orjson: request bodies and responses, for every request the
client sends (searches, bulk actions, metadata).

The client's own serializer is the standard library's ``json``, which spends most of a small
search's client time writing the query vector's floats and reading the hits (measured by
``bench/opensearch_store.py``: about 0.2 ms to write a 128-d radius query, orjson 0.01 ms).
The output is the same JSON: UTF-8 text without ASCII escapes, the values opensearch-py
accepts (its ``default`` still converts dates, decimals and the like), text and bytes
passed through unchanged (bodies already serialised, such as the store's bulk sources).  One difference:
orjson writes NaN and infinities as ``null`` where ``json`` writes invalid JSON, which the
cluster refuses either way (query vectors are checked finite before they are sent).
"""

from __future__ import annotations

from typing import Any

import orjson
from opensearchpy.exceptions import SerializationError
from opensearchpy.serializer import JSONSerializer

#: numpy arrays and scalars natively; dict keys that are not strings as ``json`` writes them.
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
#: What the client's serializer makes of other types (dates, decimals, UUIDs...).
_DEFAULT = JSONSerializer().default


def dumps(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON a request body carries (what :class:`OrjsonSerializer`
    writes, as bytes: the transport sends them as they are)."""
    try:
        return orjson.dumps(data, default=_DEFAULT, option=_OPTIONS)
    except (orjson.JSONEncodeError, TypeError) as err:
        raise SerializationError(data, err) from None


class OrjsonSerializer(JSONSerializer):
    """opensearch-py's :class:`~opensearchpy.serializer.JSONSerializer`, by orjson."""

    def dumps(self, data: Any) -> Any:
        if isinstance(data, str | bytes):
            return data
        return dumps(data).decode()

    def loads(self, s: str) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as err:
            raise SerializationError(s, err) from None
