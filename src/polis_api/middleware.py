"""Pure ASGI middleware: cheap guards that run before any framework work."""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.errors import ApiError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from polis_api.problems import problem_response

_BODY_METHODS = {b"POST", b"PUT", b"PATCH"}
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")
# Where a spooled route finds its body (a SpooledBody) in the ASGI scope.
SCOPE_BODY_FILE = "polis.body_file"


@dataclass(frozen=True, slots=True)
class SpoolPolicy:
    """A route whose body is too large for memory (a CSV import): it is written to a
    temporary file, bounded by ``max_bytes``, and handed over only once it is whole."""

    max_bytes: int
    content_types: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class SpooledBody:
    """The whole body of a spooled route, at the start of an unnamed temporary file."""

    file: IO[bytes]
    size: int
    sha256: str  # what an Idempotency-Key's fingerprint covers instead of the bytes


class BodyGuard:
    """Reads the whole body before anything runs: 413 over the limit, 415 for non-JSON,
    and nothing at all for a body that never arrived whole.

    A body without a Content-Type is taken to be JSON (scripts often leave it out).

    The declared Content-Length is refused up front; a chunked body is counted as it
    arrives, so a client cannot stream past the limit by not declaring its length.

    A phone that loses its network mid-request must be able to retry: if the
    request ran on the part that arrived, its (failed) answer could be stored under
    its Idempotency-Key and every retry refused. So a request whose client went away
    before the last byte (or the last chunk) is dropped here, unanswered and not
    executed, and one whose body is shorter or longer than its Content-Length is a
    400 that runs nothing. The routes and the idempotency middleware only ever see
    a complete body.

    Routes named in ``spooled`` (by path) keep every guarantee, but their body goes
    to a temporary file instead of memory; the app sees an empty body and finds the
    file under ``SCOPE_BODY_FILE`` in the scope. The file is gone when the app returns.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        max_bulk_bytes: int,
        spooled: Mapping[str, SpoolPolicy] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_bulk_bytes = max_bulk_bytes
        self.spooled = dict(spooled or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        policy = self.spooled.get(scope["path"])
        if policy is not None:
            await self._spooled(policy, scope, receive, send)
            return
        limit = self.max_bulk_bytes if scope["path"].endswith("/bulk") else self.max_bytes
        headers = dict(scope["headers"])
        refusal = _refusal(headers, limit)
        if refusal is not None:
            await problem_response(refusal)(scope, receive, send)
            return
        if b"content-type" not in headers:
            # Undeclared bodies are read as JSON; FastAPI would otherwise hand the
            # handler raw bytes and answer with a confusing "not an object" error.
            scope = {**scope, "headers": [*scope["headers"], _JSON_CONTENT_TYPE]}
        try:
            body = await read_whole_body(receive, limit, _declared_length(headers))
        except ClientDisconnect:
            return  # nobody is listening, and nothing may run on part of a body
        except ApiError as exc:
            await problem_response(exc)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    async def _spooled(
        self, policy: SpoolPolicy, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = dict(scope["headers"])
        refusal = _refusal(headers, policy.max_bytes, policy.content_types)
        if refusal is not None:
            await problem_response(refusal)(scope, receive, send)
            return
        with tempfile.TemporaryFile(prefix="polis-body-") as file:
            digest = hashlib.sha256()

            def keep(chunk: bytes) -> None:
                file.write(chunk)
                digest.update(chunk)

            try:
                size = await receive_whole_body(
                    receive, keep, policy.max_bytes, _declared_length(headers)
                )
            except ClientDisconnect:
                return  # as above: nothing runs on part of a body
            except ApiError as exc:
                await problem_response(exc)(scope, receive, send)
                return
            file.flush()
            file.seek(0)
            spooled = {**scope, SCOPE_BODY_FILE: SpooledBody(file, size, digest.hexdigest())}
            await self.app(spooled, replaying(b"", receive), send)


async def read_whole_body(
    receive: Receive, limit: int = sys.maxsize, declared: int | None = None
) -> bytes:
    """The complete body, or ClientDisconnect / an ApiError: never a part of it."""
    chunks: list[bytes] = []
    await receive_whole_body(receive, chunks.append, limit, declared)
    return b"".join(chunks)


async def receive_whole_body(
    receive: Receive,
    keep: Callable[[bytes], object],
    limit: int = sys.maxsize,
    declared: int | None = None,
) -> int:
    """Hands every chunk to ``keep``; returns the size once the body is complete, or
    raises ClientDisconnect / an ApiError (the caller then drops what it kept)."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        keep(chunk)
        if not message.get("more_body", False):
            break
    if declared is not None and received != declared:
        raise ValidationFailed(
            f"The request body has {received} bytes but its Content-Length says {declared}; "
            "nothing was done. Send the request again."
        )
    return received


def replaying(body: bytes, receive: Receive) -> Receive:
    """Hands the app the body read above, then the client's own messages (disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _declared_length(headers: dict[bytes, bytes]) -> int | None:
    declared = headers.get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def _refusal(
    headers: dict[bytes, bytes], limit: int, content_types: frozenset[bytes] | None = None
) -> PayloadTooLarge | UnsupportedMediaType | None:
    """``content_types``: the ones a spooled route takes; None: JSON (or none given)."""
    declared = _declared_length(headers)
    if declared is not None and declared > limit:
        return _too_large(limit)
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_types is not None:
        if content_type not in content_types:
            wanted = " or ".join(sorted(kind.decode() for kind in content_types))
            return UnsupportedMediaType(
                f"Send this route {wanted} (got {content_type.decode() or 'no Content-Type'!r})."
            )
        return None
    if content_type and content_type != b"application/json" and not content_type.endswith(b"+json"):
        return UnsupportedMediaType(
            f"Send JSON with 'Content-Type: application/json' (got {content_type.decode()!r})."
        )
    return None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than this route's limit of {limit} bytes.")
