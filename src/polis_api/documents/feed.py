"""The change feed (docs/sync.md): sync tokens and one page of changes.

A position is ``(txid, id)``: the transaction that last wrote a row, then the row's
id. A feed page holds only rows below the oldest transaction still running
(``pg_snapshot_xmin``), so every row that could still commit is ahead of the cursor;
that is what makes "changes since my token" exact, where a timestamp is not.

The token a client holds is opaque: urlsafe base64 of a version byte, the position
after which to continue, the database cluster the position belongs to (transaction
ids start again in a cluster restored from a dump), and when it was issued (for the
tombstone horizon).
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from polis_api import jsoncodec
from polis_api.documents import repository as repo
from polis_api.documents.repository import Position
from polis_api.errors import BadSyncToken, SyncTokenExpired

BEGINNING = Position(0, uuid.UUID(int=0))
_LAST_ID = uuid.UUID(int=(1 << 128) - 1)
# version, txid, id, cluster (system identifier), issued (ms since the Unix epoch)
_LAYOUT = struct.Struct(">BQ16sQq")
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SyncToken:
    after: Position
    cluster: int
    issued: datetime


def encode_token(token: SyncToken) -> str:
    millis = (token.issued - _EPOCH) // timedelta(milliseconds=1)
    after = token.after
    packed = _LAYOUT.pack(_VERSION, after.txid, after.id.bytes, token.cluster, millis)
    return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_token(text: str) -> SyncToken:
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, txid, id_bytes, cluster, millis = _LAYOUT.unpack(packed)
        issued = _EPOCH + timedelta(milliseconds=millis)
    except (binascii.Error, ValueError, struct.error, OverflowError):
        version = None
    if version != _VERSION:
        raise BadSyncToken(
            "'since' is not a sync token this server issued; send meta.next from a previous "
            "answer, or since= (empty) to start from the beginning."
        )
    return SyncToken(Position(txid, uuid.UUID(bytes=id_bytes)), cluster, issued)


def token_since(text: str, tombstone_days: int, now: datetime) -> SyncToken | None:
    """The token a feed continues from; None for ``since=`` (from the beginning).

    A token older than the tombstone horizon is refused: deletions it has not seen
    may have been purged, so only a full resync is exact.
    """
    if not text:
        return None
    token = decode_token(text)
    if now - token.issued > timedelta(days=tombstone_days):
        raise SyncTokenExpired(
            f"This sync token was issued more than {tombstone_days} days ago, longer than "
            "deleted documents are kept. Discard the local copy and sync again from since= "
            "(empty)."
        )
    return token


def _continue_from(token: SyncToken | None, bounds: repo.Horizon) -> Position:
    if token is None:
        return BEGINNING
    if token.cluster != bounds.cluster or token.after.txid >= bounds.next:
        # Its position means nothing here: the database was restored into a new
        # cluster (transaction ids start again), or the token was made up.
        raise SyncTokenExpired(
            "This sync token comes from another copy of the database. Discard the local "
            "copy and sync again from since= (empty)."
        )
    return token.after


# Tombstones are purged only a day after the horizon: a deletion's meta.modified is
# read when its request starts, possibly before a token that has not seen it was
# issued; the day covers any transaction's length.
PURGE_MARGIN = timedelta(days=1)


async def purge_tombstones(
    conn: asyncpg.Connection, tables: Sequence[str], tombstone_days: int
) -> dict[str, int]:
    """Remove tombstones no valid sync token can still be owed; counts by table."""
    older_than = timedelta(days=tombstone_days) + PURGE_MARGIN
    return {table: await repo.purge_tombstones(conn, table, older_than) for table in tables}


async def feed_changes(
    conn: asyncpg.Connection,
    sql: repo.FeedSql,
    query: repo.ListQuery,
    since: SyncToken | None,
) -> tuple[list[str], str]:
    """One page of changes, each rendered by ``sql.listed``, and the meta object."""
    bounds = await repo.snapshot_horizon(conn)
    after = _continue_from(since, bounds)
    horizon = bounds.oldest_running
    changes = await repo.fetch_changes(conn, sql, query, after, horizon, query.limit + 1)
    more = len(changes) > query.limit
    changes = changes[: query.limit]
    if more:
        last = changes[-1].position if changes else after
    else:
        # Everything matching below the horizon has been delivered: skip past it, so
        # the next call need not walk the rows the filter left out again.
        last = max(after, Position(horizon - 1, _LAST_ID), *(c.position for c in changes))
    next_token = SyncToken(last, bounds.cluster, datetime.now(UTC))
    meta = {"next": encode_token(next_token), "more": more}
    return [change.body for change in changes], jsoncodec.dumps(meta)


def feed_start(since: SyncToken | None) -> Position:
    """The position a feed page reads after (unchecked: ``feed_changes`` checks it)."""
    return BEGINNING if since is None else since.after
