"""uvicorn's httptools protocol with the connection-level bounds it lacks (docs/connections.md).

uvicorn times out only idle keep-alive connections. A client could otherwise hold a
connection (and its share of the worker) as long as it liked by trickling a
request's headers a byte at a time (slowloris), by sending headers without end, or
by never reading a response. Each is bounded here by a setting:

- POLIS_HEADER_TIMEOUT_SECONDS: a request's line and headers must arrive within this
  time of the connection opening or of the request's first byte; else 408, closed.
- POLIS_BODY_TIMEOUT_SECONDS: a request's body may pause no longer than this between
  two reads; else 408, closed, and the app (waiting for the whole body, see
  middleware.BodyGuard) sees a disconnect and executes nothing.
- POLIS_MAX_HEADER_BYTES: a request line and headers larger than this are 431, closed.
- POLIS_STREAM_SEND_TIMEOUT_SECONDS: a client that accepts no bytes of a response for
  this long (its socket stays full) is dropped, which also ends the response's
  stream and so its database transaction.

Past POLIS_MAX_CONNECTIONS uvicorn answers 503 itself; that answer is a problem+json
here like every other error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from polis_api import jsoncodec
from polis_api.config import get_settings
from polis_api.edge.context import new_request_id
from polis_api.errors import PROBLEM_JSON, ApiError

log = logging.getLogger("polis_api.connections")


class RequestTimeout(ApiError):
    status = 408
    code = "REQUEST_TIMEOUT"
    title = "Request timeout"


class HeadersTooLarge(ApiError):
    status = 431
    code = "REQUEST_HEADER_FIELDS_TOO_LARGE"
    title = "Request header fields too large"


class AtConnectionLimit(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    title = "Service unavailable"


_AT_LIMIT = AtConnectionLimit(
    "This server is at its connection limit (POLIS_MAX_CONNECTIONS); retry shortly."
)


async def _at_connection_limit(scope: Any, receive: Any, send: Any) -> None:
    """What uvicorn sends past limit_concurrency, as problem+json rather than plain text."""
    # The app never sees this request, so the edge gives it no id: one is made here.
    request_id = new_request_id()
    body = jsoncodec.dumps({**_AT_LIMIT.problem(), "instance": request_id}).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# uvicorn's protocol looks the 503 app up in its module on each request past the limit;
# this module is what `serve` names as the protocol, so it is imported in every worker.
httptools_impl.service_unavailable = _at_connection_limit  # type: ignore[attr-defined]


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing an oversized head."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection, with a deadline for each request's head, a cap on its
    size, and a deadline for a stalled response. Settings come from the environment,
    as they do for the app in every worker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        self.send_timeout = settings.stream_send_timeout_seconds
        self.body_timeout = settings.body_timeout_seconds
        self._in_head = True  # no request line and headers complete yet
        self._head_bytes = 0  # bytes of the current head received so far
        self._head_tail = b""  # its last bytes, to find a blank line split across reads
        # The parsed target and headers: a backstop for heads the count above does not
        # see from their start (pipelined behind a body in the same read).
        self._field_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- the connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._stall_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's, with the head's size checked before the parser sees the bytes.
        self._unset_keepalive_if_required()
        if self._in_head and self._head_exceeds(data):
            self._refuse(HeadersTooLarge(self._too_large_detail()))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._field_bytes > self.max_header_bytes:
                self._refuse(HeadersTooLarge(self._too_large_detail()))
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)

    def _head_exceeds(self, data: bytes) -> bool:
        """Counts the head's bytes as they arrive, up to the blank line that ends it."""
        seen = self._head_tail + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._head_bytes += len(data)
            self._head_tail = seen[-3:]
            return self._head_bytes > self.max_header_bytes
        return self._head_bytes + end + 4 - len(self._head_tail) > self.max_header_bytes

    # -- the parser's callbacks ----------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._field_bytes = 0
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count_field(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_field(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes, self._head_tail = 0, b""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        # A request without a body completes in the same feed, which cancels this.
        self._arm_body_timer()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm_body_timer()

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head

    # -- a response the client does not read ---------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall_timer is None:
            self._stall_timer = self.loop.call_later(self.send_timeout, self._drop_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _drop_stalled(self) -> None:
        self._stall_timer = None
        log.info(
            "%s accepted no bytes for %s s; connection dropped",
            _client(self.client),
            self.send_timeout,
        )
        # abort, not close: close would wait for the unread bytes to be sent first.
        self.transport.abort()

    # -- helpers -------------------------------------------------------------------

    def _count_field(self, size: int) -> None:
        self._field_bytes += size
        if self._field_bytes > self.max_header_bytes:
            raise _HeadTooLarge  # httptools turns it into HttpParserCallbackError

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a response is going out: close after it
            return
        log.info(
            "%s sent no complete request head in %s s", _client(self.client), self.header_timeout
        )
        self._refuse(
            RequestTimeout(
                f"The request line and headers did not arrive within {self.header_timeout} s."
            )
        )

    def _arm_body_timer(self) -> None:
        self._cancel_body_timer()
        self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            # The app answered without the body (a 413, say): close once it is sent.
            self.cycle.keep_alive = False
            return
        log.info("%s paused its request body for %s s", _client(self.client), self.body_timeout)
        self._refuse(
            RequestTimeout(f"The request body paused for more than {self.body_timeout} s.")
        )

    def _too_large_detail(self) -> str:
        return f"The request line and headers are larger than {self.max_header_bytes} bytes."

    def _refuse(self, error: ApiError) -> None:
        """Answer ``error`` as problem+json and close: the rest of the request is unread."""
        # No request was read, so no client id either: a new one, as the edge would give.
        request_id = new_request_id()
        body = jsoncodec.dumps({**error.problem(), "instance": request_id}).encode()
        head = [
            f"HTTP/1.1 {error.status} {error.title}".encode(),
            b"content-type: " + PROBLEM_JSON.encode(),
            b"content-length: " + str(len(body)).encode(),
            b"x-request-id: " + request_id.encode(),
            b"connection: close",
        ]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()
        self._in_head = False


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "a client"
