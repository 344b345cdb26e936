"""Swapping two segments' precedences in one transaction.

The partial unique index on (campaign, precedence) is checked row by row, so the
first segment gives up its precedence for the moment (the key is removed, and a
missing key is NULL to the index, which never clashes) before the second takes it.
Both writes go through the usual etag-guarded revision, so both get new etags.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents.envelope import StoredDocument, utc_now_ms
from polis_api.documents.etag import parse_etag_header
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import WriteContext
from polis_api.documents.service import not_found, write_revision
from polis_api.errors import PreconditionFailed, invalid_field
from polis_api.resources.segments import SEGMENTS

_RELEASE_PRECEDENCE = (
    f"UPDATE {SEGMENTS.table} SET data = data - 'precedence' "  # noqa: S608
    "WHERE customer_id = $1 AND id = $2"
)


@dataclass(frozen=True, slots=True)
class SegmentRef:
    id: uuid.UUID
    etag: str


async def _locked(
    conn: asyncpg.Connection, principal: Principal, refs: tuple[SegmentRef, SegmentRef]
) -> dict[uuid.UUID, tuple[StoredDocument, str]]:
    """Both segments, locked in id order so two swaps of one pair cannot deadlock."""
    found = {}
    for ref in sorted(refs, key=lambda ref: ref.id):
        row = await repo.fetch_for_write(conn, SEGMENTS.sql, principal.customer_id, ref.id)
        if row is None:
            raise not_found(SEGMENTS, ref.id)
        found[ref.id] = row
    return found


def _check_etag(ref: SegmentRef, current_etag: str) -> None:
    tags = parse_etag_header(ref.etag) or []
    if "*" not in tags and current_etag not in tags:
        failure = PreconditionFailed(current_etag)
        failure.detail = f"Segment {ref.id} has changed: {failure.detail}"
        raise failure


async def swap_precedences(
    conn: asyncpg.Connection, principal: Principal, first: SegmentRef, second: SegmentRef
) -> list[Rendered]:
    """The two segments with each other's precedence, in the order they were named."""
    if first.id == second.id:
        raise invalid_field("/data/segments/1/id", "must name a second, different segment")
    locked = await _locked(conn, principal, (first, second))
    for ref in (first, second):
        _check_etag(ref, locked[ref.id][1])
    (a, a_etag), (b, b_etag) = locked[first.id], locked[second.id]
    if a.data["campaignId"] != b.data["campaignId"]:
        raise invalid_field(
            "/data/segments/1/id", "must be a segment of the same campaign as /data/segments/0/id"
        )
    ctx = WriteContext(conn, principal, utc_now_ms())
    await conn.execute(_RELEASE_PRECEDENCE, principal.customer_id, a.id)
    moved_b = await write_revision(ctx, SEGMENTS, _with_precedence(ctx, b, a), b_etag)
    moved_a = await write_revision(ctx, SEGMENTS, _with_precedence(ctx, a, b), a_etag)
    return [moved_a, moved_b]


def _with_precedence(
    ctx: WriteContext, segment: StoredDocument, other: StoredDocument
) -> StoredDocument:
    data = {**segment.data, "precedence": other.data["precedence"]}
    return segment.revised(data=data, by=ctx.principal.user_id, at=ctx.now)
