"""A whole list streamed to the client, within bounds (docs/connections.md).

A stream holds a list-pool connection and a repeatable-read transaction (one
snapshot for the rows and the total) while it runs, so nothing may let it run
unbounded: a client that stops reading is cut off after the send timeout, the
whole stream after its maximum duration, and one user may have only so many open
at once. The first rows are fetched before the status line goes out, so a
database outage is a 503 rather than a 200 with a cut-off body.

Why not page with keysets and let go of the connection between batches: the total
and the rows would then come from different snapshots, and keyset pages over an
arbitrary JSON sort with ties would need a cursor token per sort. A bounded hold
of one connection is simpler and, with the bounds below, cannot pile up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from polis_api.auth import Principal
from polis_api.config import Settings
from polis_api.documents import service
from polis_api.documents.listing import ListRequest
from polis_api.documents.representations import Representation
from polis_api.documents.resource import Resource
from polis_api.problems import TrackedSend, database_fault

log = logging.getLogger(__name__)
# The connection layer (polis_api.protocols) drops a stalled client at the send
# timeout; the stream's own bound, a moment later, covers servers without it.
SEND_TIMEOUT_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class StreamBounds:
    send_timeout: float
    max_seconds: float
    per_identity: int

    @classmethod
    def of(cls, settings: Settings) -> StreamBounds:
        return cls(
            send_timeout=settings.stream_send_timeout_seconds,
            max_seconds=settings.stream_max_seconds,
            per_identity=settings.max_streams_per_identity,
        )


class ListStream(Response):
    """The response for a streamed list (a Response, so FastAPI passes it through)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        resource: Resource,
        listing: ListRequest,
        principal: Principal,
        bounds: StreamBounds,
    ) -> None:
        self.pool = pool
        self.resource = resource
        self.listing = listing
        self.principal = principal
        self.bounds = bounds
        super().__init__(media_type=listing.representation.content_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracked = TrackedSend(send)
        try:
            await self._stream(receive, tracked)
        except Exception as exc:
            # Before the status line, an error is an ordinary response (503, 429, 4xx).
            if not tracked.started or not (isinstance(exc, StreamCutOff) or database_fault(exc)):
                raise
            # After it, all a client can be shown is a cut-off body: the server closes
            # the connection when the app returns without the last chunk.
            log.warning("%s: stream cut off: %s", scope.get("path"), exc)

    async def _stream(self, receive: Receive, send: Send) -> None:
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            await service.open_stream(conn, self.principal, self.bounds.per_identity)
            opened = await service.open_stream_list(conn, self.resource, self.listing)
            chunks = opened.chunks
            try:
                first = await anext(chunks)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": self._start_headers(opened.representation, opened.meta),
                    }
                )
                await self._send_all(first, chunks, receive, send)
            finally:
                await chunks.aclose()

    def _start_headers(self, shape: Representation, meta: str) -> list[tuple[bytes, bytes]]:
        extra = shape.headers(self.resource.name, meta)
        return [
            (b"content-type", shape.content_type.encode()),
            *((name.lower().encode(), value.encode()) for name, value in extra.items()),
        ]

    async def _send_all(
        self, first: bytes, chunks: AsyncIterator[bytes], receive: Receive, send: Send
    ) -> None:
        gone = asyncio.Event()
        watcher = asyncio.create_task(_until_disconnected(receive, gone))
        try:
            async with asyncio.timeout(self.bounds.max_seconds) as deadline:
                await self._send_chunk(send, first)
                async for chunk in chunks:
                    if gone.is_set():
                        return  # the client left (or was dropped): stop reading rows
                    await self._send_chunk(send, chunk)
        except TimeoutError as exc:
            if deadline.expired():
                raise StreamCutOff(f"it ran longer than {self.bounds.max_seconds} s") from exc
            raise
        finally:
            watcher.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_chunk(self, send: Send, chunk: bytes) -> None:
        limit = self.bounds.send_timeout + SEND_TIMEOUT_MARGIN_SECONDS
        try:
            async with asyncio.timeout(limit):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError as exc:
            raise StreamCutOff(f"the client accepted no bytes for {limit} s") from exc


class StreamCutOff(Exception):
    """A bound ended the stream (the message says which)."""


async def _until_disconnected(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
