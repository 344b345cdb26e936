"""Idempotent retries: ``Idempotency-Key`` on any POST (issue 5).

A phone on a bad network retries. The first response to a key is stored in the
same transaction as the write it describes, so a retry either replays that
response or — if the first attempt rolled back — runs again; it can never write
twice. While the first attempt is still running, a retry gets 409 at once (a
transaction-scoped advisory lock on the tenant and key). The same key with a
different request is a 422. Keys are per tenant, live in PostgreSQL (so they hold
across workers and restarts) and are kept for ``POLIS_IDEMPOTENCY_TTL_HOURS``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import asyncpg
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api import jsoncodec
from polis_api.auth import TokenVerifier, authorization_header
from polis_api.errors import ApiError, Conflict, PayloadTooLarge, ValidationFailed
from polis_api.problems import problem_response

HEADER = b"idempotency-key"
SCOPE_CONNECTION = "polis.connection"
# Replayed as sent the first time; everything else (date, server) is fresh.
_KEPT_HEADERS = {b"content-type", b"etag", b"location"}


class KeyReused(ApiError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "This Idempotency-Key was used for a different request"


@dataclass(slots=True)
class CapturedResponse:
    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    replayed: bool = False

    async def send_to(self, send: Send) -> None:
        headers = list(self.headers)
        if self.replayed:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": bytes(self.body)})


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, ttl_hours: int) -> None:
        self.app = app
        self.ttl_hours = ttl_hours

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_of(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        customer_id = _tenant_of(scope)
        if customer_id is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        try:
            checked = _checked_key(key)
        except ApiError as exc:
            await problem_response(exc)(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # BodyGuard counted past the limit
            await problem_response(PayloadTooLarge(str(exc.detail)))(scope, receive, send)
            return
        fingerprint = _fingerprint(scope, body)
        pool: asyncpg.Pool = scope["app"].state.pool
        async with pool.acquire() as conn:
            captured = await self._run_once(scope, conn, customer_id, checked, fingerprint, body)
        await captured.send_to(send)

    async def _run_once(
        self,
        scope: Scope,
        conn: asyncpg.Connection,
        customer_id: uuid.UUID,
        key: str,
        fingerprint: str,
        body: bytes,
    ) -> CapturedResponse:
        transaction = conn.transaction()
        await transaction.start()
        try:
            captured = await self._in_transaction(scope, conn, customer_id, key, fingerprint, body)
        except BaseException:
            await transaction.rollback()
            raise
        if captured.status >= 500:
            # Nothing is kept of a failed attempt: a retry runs it again.
            await transaction.rollback()
        else:
            await transaction.commit()
        return captured

    async def _in_transaction(
        self,
        scope: Scope,
        conn: asyncpg.Connection,
        customer_id: uuid.UUID,
        key: str,
        fingerprint: str,
        body: bytes,
    ) -> CapturedResponse:
        locked = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"{customer_id}:{key}"
        )
        if not locked:
            return _problem(Conflict("A request with this Idempotency-Key is still running."))
        stored = await conn.fetchrow(
            "SELECT request_hash, status, headers, body FROM idempotency_keys "
            "WHERE customer_id = $1 AND key = $2 "
            "AND created > now() - make_interval(hours => $3)",
            customer_id,
            key,
            self.ttl_hours,
        )
        if stored is not None:
            if stored["request_hash"] != fingerprint:
                return _problem(KeyReused("Send a new Idempotency-Key for a different request."))
            return CapturedResponse(
                stored["status"],
                [(k.encode(), v.encode()) for k, v in stored["headers"]],
                bytearray(stored["body"]),
                replayed=True,
            )
        captured = await _call_app(self.app, scope, body, conn)
        if captured.status < 500:
            await conn.execute(
                "INSERT INTO idempotency_keys "
                "(customer_id, key, request_hash, status, headers, body) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id, key) DO UPDATE "
                "SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, "
                "headers = EXCLUDED.headers, body = EXCLUDED.body, created = now()",
                customer_id,
                key,
                fingerprint,
                captured.status,
                [[k.decode(), v.decode()] for k, v in captured.headers if k in _KEPT_HEADERS],
                bytes(captured.body),
            )
        return captured


async def _call_app(
    app: ASGIApp, scope: Scope, body: bytes, conn: asyncpg.Connection
) -> CapturedResponse:
    """Run the request with its body replayed, on ``conn``, capturing the response."""
    captured = CapturedResponse()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            captured.status = message["status"]
            captured.headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            captured.body.extend(message.get("body", b""))

    # The route's write_connection joins this transaction (as a savepoint), so the
    # stored key and the write commit together or not at all.
    await app({**scope, SCOPE_CONNECTION: conn}, receive, send)
    return captured


def _problem(error: ApiError) -> CapturedResponse:
    return CapturedResponse(
        error.status,
        [(b"content-type", b"application/problem+json")],
        bytearray(jsoncodec.dumps(error.problem()).encode()),
    )


def _key_of(scope: Scope) -> bytes | None:
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    for name, value in scope["headers"]:
        if name == HEADER:
            return bytes(value)
    return None


def _checked_key(raw: bytes) -> str:
    try:
        key = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        key = ""
    if not 0 < len(key) <= 255 or not key.isprintable():
        raise ValidationFailed("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return key


def _tenant_of(scope: Scope) -> uuid.UUID | None:
    # None for anything but one valid bearer token: the route then answers 400 or 401
    verifier: TokenVerifier = scope["app"].state.verifier
    try:
        header = authorization_header(scope["headers"])
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return verifier.verify(token.strip()).customer_id
    except ApiError:
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())
    digest.update(b"\0" + scope["path"].encode() + b"\0" + scope.get("query_string", b""))
    digest.update(b"\0" + body)
    return digest.hexdigest()


def connection_of(scope: Scope) -> asyncpg.Connection | None:
    """The connection an idempotent POST runs on, if this request is one."""
    conn: asyncpg.Connection | None = scope.get(SCOPE_CONNECTION)
    return conn
