"""Pure ASGI middleware: cheap guards that run before any framework work."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.errors import PayloadTooLarge, UnsupportedMediaType
from polis_api.problems import problem_response

_BODY_METHODS = {b"POST", b"PUT", b"PATCH"}
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


class BodyGuard:
    """413 for bodies over the limit (bulk routes get their own), 415 for non-JSON.

    A body without a Content-Type is taken to be JSON (scripts often leave it out).

    The declared Content-Length is refused up front; a chunked body is counted as it
    arrives, so a client cannot stream past the limit by not declaring its length.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_bulk_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_bulk_bytes = max_bulk_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].encode() not in _BODY_METHODS:
            await self.app(scope, receive, send)
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
        await self.app(scope, _counting(receive, limit), send)


def _refusal(
    headers: dict[bytes, bytes], limit: int
) -> PayloadTooLarge | UnsupportedMediaType | None:
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type and content_type != b"application/json" and not content_type.endswith(b"+json"):
        return UnsupportedMediaType(
            f"Send JSON with 'Content-Type: application/json' (got {content_type.decode()!r})."
        )
    return None


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than this route's limit of {limit} bytes.")


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                # FastAPI lets HTTPException through its body parsing untouched.
                raise HTTPException(413, _too_large(limit).detail)
        return message

    return wrapped
