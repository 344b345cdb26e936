"""Polis etags and the HTTP precondition headers that carry them (docs/api.md, Etags)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from polis_api.jsoncodec import canonical_bytes


def compute_etag(document: Mapping[str, Any]) -> str:
    """``<length of hashed bytes, hex>-<first 27 chars of base64(SHA-1)>``, as Polis makes them.

    The hashed bytes are the canonical serialisation (sorted keys, no spaces) of the
    stored document without its etag, so the etag changes whenever anything stored does.
    """
    body = canonical_bytes(document)
    digest = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode()
    return f"{len(body):x}-{digest[:27]}"


def parse_etag_header(value: str | None) -> list[str] | None:
    """The etags named by an If-Match / If-None-Match / ETag header value.

    Accepts quoted, unquoted and weak (``W/``) forms and comma-separated lists;
    ``*`` comes back as ``["*"]``. Returns None for an absent or blank header.
    """
    if value is None or not value.strip():
        return None
    tags = []
    for part in _split_list(value):
        tag = part.strip()
        if tag.startswith(("W/", "w/")):
            tag = tag[2:]
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag:
            tags.append(tag)
    return tags or None


def _split_list(value: str) -> list[str]:
    # Polis etags contain '/' and '+' but never ',', so a plain split is exact.
    return value.split(",")


def quote_etag(etag: str) -> str:
    return f'"{etag}"'
