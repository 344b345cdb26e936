"""The change feed (SPEC §8): sync tokens and one page of changes.

A position is ``(txid, id)``: the transaction that last wrote a row, then the row's
id. A feed page holds only rows below the oldest transaction still running
(``pg_snapshot_xmin``), so every row that could still commit is ahead of the cursor;
that is what makes "changes since my token" exact, where a timestamp is not.

The token a client holds is opaque: urlsafe base64 of a version byte, the position
after which to continue, and when it was issued (for the tombstone horizon).
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from polis_api import jsoncodec
from polis_api.documents import repository as repo
from polis_api.documents.repository import Position
from polis_api.errors import BadSyncToken, SyncTokenExpired

BEGINNING = Position(0, uuid.UUID(int=0))
_LAST_ID = uuid.UUID(int=(1 << 128) - 1)
_LAYOUT = struct.Struct(">BQ16sq")  # version, txid, id, issued (ms since the epoch)
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SyncToken:
    after: Position
    issued: datetime


def encode_token(after: Position, issued: datetime) -> str:
    millis = (issued - _EPOCH) // timedelta(milliseconds=1)
    packed = _LAYOUT.pack(_VERSION, after.txid, after.id.bytes, millis)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_token(text: str) -> SyncToken:
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, txid, id_bytes, millis = _LAYOUT.unpack(packed)
        issued = _EPOCH + timedelta(milliseconds=millis)
    except (binascii.Error, ValueError, struct.error, OverflowError):
        version = None
    if version != _VERSION:
        raise BadSyncToken(
            "'since' is not a sync token this server issued; send meta.next from a previous "
            "answer, or since= (empty) to start from the beginning."
        )
    return SyncToken(Position(txid, uuid.UUID(bytes=id_bytes)), issued)


def position_since(text: str, tombstone_days: int, now: datetime) -> Position:
    """Where a feed continues: the token's position, or the beginning for ``since=``.

    A token older than the tombstone horizon is refused: deletions it has not seen
    may have been purged, so only a full resync is exact.
    """
    if not text:
        return BEGINNING
    token = decode_token(text)
    if now - token.issued > timedelta(days=tombstone_days):
        raise SyncTokenExpired(
            f"This sync token was issued more than {tombstone_days} days ago, longer than "
            "deleted documents are kept. Discard the local copy and sync again from since= "
            "(empty)."
        )
    return token.after


async def feed_page(
    conn: asyncpg.Connection, sql: repo.DocumentSql, query: repo.ListQuery, after: Position
) -> str:
    """``{"data": [changes], "meta": {"next": token, "more": bool}}``."""
    horizon = await repo.snapshot_horizon(conn)
    changes = await repo.fetch_changes(conn, sql, query, after, horizon, query.limit + 1)
    more = len(changes) > query.limit
    changes = changes[: query.limit]
    if more:
        last = changes[-1].position if changes else after
    else:
        # Everything matching below the horizon has been delivered: skip past it, so
        # the next call need not walk the rows the filter left out again.
        last = max(after, Position(horizon - 1, _LAST_ID), *(c.position for c in changes))
    meta = {"next": encode_token(last, datetime.now(UTC)), "more": more}
    body = ",".join(change.body for change in changes)
    return '{"data":[' + body + '],"meta":' + jsoncodec.dumps(meta) + "}"
