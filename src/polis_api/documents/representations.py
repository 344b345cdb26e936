"""How a list is written out, chosen by the request's Accept header (RFC 9110 §12.5.1).

Each representation says what PostgreSQL renders per document and what wraps the
documents; paging, filtering and streaming are the same for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from polis_api.documents.repository import DocumentSql
from polis_api.errors import ApiError

if TYPE_CHECKING:
    from polis_api.documents.listing import ListRequest
    from polis_api.documents.resource import Resource

# Builds the representation a list is written in, inside the list's snapshot: for
# one whose opening depends on the rows (CSV's header names the keys they hold).
Resolver = Callable[[asyncpg.Connection, "Resource", "ListRequest"], Awaitable["Representation"]]


class NotAcceptable(ApiError):
    status = 406
    code = "NOT_ACCEPTABLE"
    title = "No representation the client accepts"


@dataclass(frozen=True, slots=True)
class Representation:
    media_type: str
    # The SQL rendering one listed row, given the resource's statements.
    item: Callable[[DocumentSql], str]
    opening: str
    # The closing text given the rendered meta object ("{}" when there is none).
    closing: Callable[[str], str]
    # What goes between two rendered rows.
    separator: str = ","
    resolve: Resolver | None = None
    # A file to save rather than a document to show: its extension, for
    # Content-Disposition; the meta object then rides in the Polis-Meta header.
    attachment: str | None = None
    # Finishes each row PostgreSQL rendered (CSV: puts the open keys in their columns).
    finish: Callable[[str], str] | None = None

    def finished(self, rows: list[str]) -> list[str]:
        return rows if self.finish is None else [self.finish(row) for row in rows]

    @property
    def content_type(self) -> str:
        text = self.media_type.startswith("text/")
        return self.media_type + ("; charset=utf-8" if text else "")

    def headers(self, resource_name: str, meta: str) -> dict[str, str]:
        """The response headers beyond Content-Type."""
        if self.attachment is None:
            return {}
        filename = f"{resource_name}.{self.attachment}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        if meta != "{}":
            headers["Polis-Meta"] = meta
        return headers


def _json_closing(meta: str) -> str:
    return '],"meta":' + meta + "}"


def _geojson_closing(meta: str) -> str:
    # RFC 7946 §6.1 allows foreign members: meta.total rides along when asked for.
    return "]}" if meta == "{}" else '],"meta":' + meta + "}"


JSON = Representation("application/json", lambda sql: sql.listed, '{"data":[', _json_closing)
GEOJSON = Representation(
    "application/geo+json",
    lambda sql: sql.feature,
    '{"type":"FeatureCollection","features":[',
    _geojson_closing,
)


def negotiate(accept: str | None, offered: tuple[Representation, ...]) -> Representation:
    """The offered representation the client prefers most (q-values; on a tie, the
    first offered); the first when no Accept is sent; 406 when none is acceptable."""
    if accept is None or not accept.strip():
        return offered[0]
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    best: Representation | None = None
    best_q = 0.0
    for representation in offered:
        q = _quality(representation.media_type, ranges)
        if q > best_q:
            best, best_q = representation, q
    if best is None:
        types = ", ".join(representation.media_type for representation in offered)
        raise NotAcceptable(
            f"This list can be answered as {types}; the Accept header asks for {accept!r}."
        )
    return best


def _media_range(part: str) -> tuple[str, float]:
    media, *parameters = (piece.strip() for piece in part.split(";"))
    q = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                q = min(max(float(value), 0.0), 1.0)
            except ValueError:
                q = 0.0
    return media.lower(), q


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range that matches: type/subtype, then type/*, then */*."""
    kind = media_type.split("/")[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        matches = [q for media, q in ranges if media == candidate]
        if matches:
            return max(matches)
    return 0.0
