"""Idempotent retries: ``Idempotency-Key`` on any POST (issue 5).

A phone on a bad network retries. The first final response to a key is stored
in the same transaction as the write it describes, so a retry either replays that
response or — if the first attempt rolled back — runs again; it can never write
twice. While the first attempt is still running, a retry gets 409 at once (a
transaction-scoped advisory lock on the tenant and key). The same key with a
different request is a 422. Keys are per tenant, live in PostgreSQL (so they hold
across workers and restarts) and are kept for ``POLIS_IDEMPOTENCY_TTL_HOURS``.

Only final answers are kept. One that tells the client to retry (a 409, a 429, any
5xx) wrote nothing, so it is rolled back with the attempt and the retry runs again.
A request whose body did not arrive whole never gets here (``BodyGuard``), and is
refused here too, so a cut-off request can never pin a key to its partial body.

A replay answers only a caller who could make the request now: the token is
verified and the route's permissions are checked exactly as for a first call, so a
viewer holding an admin's key gets 403, never the admin's stored answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import asyncpg
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api import jsoncodec
from polis_api.auth import CHECKED_PERMISSIONS, Principal, TokenVerifier, authorization_header
from polis_api.errors import ApiError, Conflict, ValidationFailed
from polis_api.middleware import SCOPE_BODY_FILE, read_whole_body
from polis_api.problems import problem_response

HEADER = b"idempotency-key"
SCOPE_CONNECTION = "polis.connection"
# Replayed as sent the first time; everything else (date, server) is fresh.
_KEPT_HEADERS = {b"content-type", b"etag", b"location"}
# Answers that ask for a retry: a 409 (in flight, or a transient write conflict),
# 429 and every 5xx. None of them wrote anything, so none is kept under a key.
_RETRY_STATUSES = {409, 429}


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
    # The permissions the route checked (auth.require lists them in the scope).
    permissions: list[str] = field(default_factory=list)

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
        principal = _principal_of(scope)
        if principal is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        try:
            checked = _checked_key(key)
        except ApiError as exc:
            await problem_response(exc)(scope, receive, send)
            return
        try:
            body = await read_whole_body(receive)  # BodyGuard checked its size and length
        except ClientDisconnect:
            return  # the body never arrived whole: nothing runs, nothing is kept
        fingerprint = _fingerprint(scope, body)
        pool: asyncpg.Pool = scope["app"].state.pool
        async with pool.acquire() as conn:
            captured = await self._run_once(scope, conn, principal, checked, fingerprint, body)
        await captured.send_to(send)

    async def _run_once(
        self,
        scope: Scope,
        conn: asyncpg.Connection,
        principal: Principal,
        key: str,
        fingerprint: str,
        body: bytes,
    ) -> CapturedResponse:
        transaction = conn.transaction()
        await transaction.start()
        try:
            captured = await self._in_transaction(scope, conn, principal, key, fingerprint, body)
        except BaseException:
            await transaction.rollback()
            raise
        if is_final(captured.status):
            await transaction.commit()
        else:
            # Nothing is kept of an attempt that asks for a retry: the retry runs again.
            await transaction.rollback()
        return captured

    async def _in_transaction(
        self,
        scope: Scope,
        conn: asyncpg.Connection,
        principal: Principal,
        key: str,
        fingerprint: str,
        body: bytes,
    ) -> CapturedResponse:
        customer_id = principal.customer_id
        locked = await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"{customer_id}:{key}"
        )
        if not locked:
            return _problem(Conflict("A request with this Idempotency-Key is still running."))
        stored = await conn.fetchrow(
            "SELECT request_hash, status, headers, body, permissions FROM idempotency_keys "
            "WHERE customer_id = $1 AND key = $2 "
            "AND created > now() - make_interval(hours => $3)",
            customer_id,
            key,
            self.ttl_hours,
        )
        if stored is not None:
            return _replay(stored, fingerprint, principal)
        captured = await _call_app(self.app, scope, body, conn)
        if is_final(captured.status):
            await conn.execute(
                "INSERT INTO idempotency_keys "
                "(customer_id, key, request_hash, status, headers, body, permissions) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id, key) DO UPDATE "
                "SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, "
                "headers = EXCLUDED.headers, body = EXCLUDED.body, "
                "permissions = EXCLUDED.permissions, created = now()",
                customer_id,
                key,
                fingerprint,
                captured.status,
                [[k.decode(), v.decode()] for k, v in captured.headers if k in _KEPT_HEADERS],
                bytes(captured.body),
                captured.permissions,
            )
        return captured


def _replay(stored: asyncpg.Record, fingerprint: str, principal: Principal) -> CapturedResponse:
    """The stored answer, to a caller who may make the request now."""
    if stored["request_hash"] != fingerprint:
        return _problem(KeyReused("Send a new Idempotency-Key for a different request."))
    try:
        # What the route checked of the first caller; the token was verified above.
        for permission in stored["permissions"]:
            principal.require(permission)
    except ApiError as exc:
        return _problem(exc)
    return CapturedResponse(
        stored["status"],
        [(k.encode(), v.encode()) for k, v in stored["headers"]],
        bytearray(stored["body"]),
        replayed=True,
    )


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
    await app(
        {**scope, SCOPE_CONNECTION: conn, CHECKED_PERMISSIONS: captured.permissions}, receive, send
    )
    return captured


def is_final(status: int) -> bool:
    """Whether an answer may be stored under a key (a retry would get the same)."""
    return status < 500 and status not in _RETRY_STATUSES


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


def _principal_of(scope: Scope) -> Principal | None:
    # None for anything but one valid bearer token: the route then answers 400 or 401
    verifier: TokenVerifier = scope["app"].state.verifier
    try:
        header = authorization_header(scope["headers"])
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return verifier.verify(token.strip())
    except ApiError:
        return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(scope["method"].encode())
    digest.update(b"\0" + scope["path"].encode() + b"\0" + scope.get("query_string", b""))
    digest.update(b"\0" + body)
    spooled = scope.get(SCOPE_BODY_FILE)
    if spooled is not None:  # a spooled route's body is not in memory; its digest is
        digest.update(b"\0" + spooled.sha256.encode())
    return digest.hexdigest()


def connection_of(scope: Scope) -> asyncpg.Connection | None:
    """The connection an idempotent POST runs on, if this request is one."""
    conn: asyncpg.Connection | None = scope.get(SCOPE_CONNECTION)
    return conn
