"""Etag format and precondition header parsing (pure)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from polis_api.documents.etag import compute_etag, parse_etag_header
from polis_api.jsoncodec import canonical_bytes


def test_etag_is_hex_length_dash_27_chars_of_base64_sha1() -> None:
    document = {"id": "x", "data": {"b": 1, "a": "é"}}
    body = b'{"data":{"a":"\xc3\xa9","b":1},"id":"x"}'
    expected = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]

    assert canonical_bytes(document) == body
    assert compute_etag(document) == f"{len(body):x}-{expected}"


def test_etag_ignores_key_order_but_not_values() -> None:
    assert compute_etag({"a": 1, "b": 2}) == compute_etag({"b": 2, "a": 1})
    assert compute_etag({"a": 1}) != compute_etag({"a": 2})


def test_etag_survives_integers_beyond_64_bits() -> None:
    body = b'{"n":' + str(2**80).encode() + b"}"
    assert compute_etag({"n": 2**80}).startswith(f"{len(body):x}-")


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ('"3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow"', ["3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow"]),
        ("3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow", ["3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow"]),
        ('W/"3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow"', ["3bf-MM03Q4w6jFS3ZUJ/3DBUV4M27Ow"]),
        ('"a-1", W/"b-2" , c-3', ["a-1", "b-2", "c-3"]),
        ("*", ["*"]),
    ],
)
def test_parse_etag_header_accepts_every_form(header: str | None, tags: list[str] | None) -> None:
    assert parse_etag_header(header) == tags
