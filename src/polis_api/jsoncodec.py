"""JSON encoding shared by the etag, the database codec and responses.

orjson is fast but refuses integers beyond 64 bits, which JSON (and jsonb) allow;
those rare documents fall back to the standard library so they never become a 500.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no insignificant white space: the same document always hashes alike."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
