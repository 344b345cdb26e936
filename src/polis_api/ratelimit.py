"""Per-caller rate limiting, shared across workers (issue 5).

Fixed one-minute windows per verified identity — the token's tenant and user (a
hash of them), never the token text, so respelling or re-issuing a token buys no
new budget. Requests without a verified token spend no budget (they are 401). Each
worker decides locally — no database round trip on the request path — from the
window's total as last read from PostgreSQL plus its own not-yet-merged hits. A
background task merges the hits into an UNLOGGED table every ``sync_seconds`` and
reads the totals back, so all workers share one budget with a lag of about that
interval. When the database is unreachable, each worker keeps limiting on its
own counts (the budget is then per worker) rather than failing requests.

Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(IETF draft "RateLimit header fields"); a refusal is 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.auth import Principal, TokenVerifier, authorization_header
from polis_api.edge import metrics
from polis_api.errors import ApiError
from polis_api.problems import database_fault, problem_response

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60
MAX_RETRY_SECONDS = 30.0  # the longest pause between syncs after failures
FINAL_SYNC_SECONDS = 2.0  # shutdown does not wait longer on a database that is gone


# Only buckets with new hits are written; the others are only read. Writing every known
# bucket each interval (adding 0) made a new row version per bucket per worker five
# times a second: 1.1 M dead rows in five minutes of the soak, more than autovacuum
# reclaims while long reads hold the horizon, and throughput fell as they piled up.
_MERGE_AND_READ = """
WITH merged AS (
  INSERT INTO rate_limits (bucket, window_start, count)
  SELECT bucket, $1, hits FROM unnest($2::text[], $3::int[]) AS u(bucket, hits)
  ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limits.count + EXCLUDED.count
  RETURNING bucket, count
)
SELECT bucket, count FROM merged
UNION ALL
SELECT bucket, count FROM rate_limits WHERE window_start = $1 AND bucket = ANY($4::text[])
"""


class RateLimited(ApiError):
    status = 429
    code = "RATE_LIMITED"
    title = "Too many requests"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(self.reset_seconds).encode()))
        return headers


class RateLimiter:
    def __init__(self, limit_per_minute: int, sync_seconds: float = 0.2) -> None:
        self.limit = limit_per_minute
        self.sync_seconds = sync_seconds
        self._window = self._current_window()
        self._pending: defaultdict[str, int] = defaultdict(int)
        # Hits on their way to PostgreSQL: still counted until the totals come back.
        self._in_flight: dict[str, int] = {}
        self._merged: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._sharing = True  # whether the last sync reached PostgreSQL

    @staticmethod
    def _current_window() -> int:
        return int(time.time()) // WINDOW_SECONDS * WINDOW_SECONDS

    def _roll(self) -> int:
        window = self._current_window()
        if window != self._window:
            self._window = window
            self._pending.clear()
            self._in_flight = {}
            self._merged.clear()
        return window

    def hit(self, bucket: str) -> Decision:
        window = self._roll()
        used = self._merged.get(bucket, 0) + self._in_flight.get(bucket, 0) + self._pending[bucket]
        reset = max(1, window + WINDOW_SECONDS - int(time.time()))
        if used >= self.limit:
            return Decision(False, self.limit, 0, reset)
        self._pending[bucket] += 1
        return Decision(True, self.limit, self.limit - used - 1, reset)

    async def sync(self, pool: asyncpg.Pool) -> None:
        """Merge this worker's hits and read back every known bucket's total."""
        window = self._roll()
        pending, self._pending = self._pending, defaultdict(int)
        self._in_flight = dict(pending)
        hit = sorted(bucket for bucket, hits in pending.items() if hits)
        known = sorted(set(self._merged) - set(hit))
        if not hit and not known:
            return
        try:
            rows = await pool.fetch(_MERGE_AND_READ, window, hit, [pending[b] for b in hit], known)
        except Exception as exc:
            self._in_flight = {}
            for bucket, hits in pending.items():  # keep them for the next try
                self._pending[bucket] += hits
            if self._sharing:  # once per outage, not every interval
                log.warning("rate limits are per worker until PostgreSQL answers: %r", exc)
            self._sharing = False
            if database_fault(exc) is None:
                raise  # not an outage: the supervisor logs it in full
            return
        if not self._sharing:
            log.info("rate limits are shared across workers again")
        self._sharing = True
        if window == self._window:
            self._merged.update({row["bucket"]: row["count"] for row in rows})
            self._in_flight = {}

    async def _run(self, pool: asyncpg.Pool) -> None:
        """Sync every interval, forever: a failure is logged and retried with backoff.

        The task must outlive anything the database does (a restart can surface as
        errors no list anticipates); had it died, budgets would silently stop being
        shared and shutdown would re-raise its error.
        """
        delay = self.sync_seconds
        cleaned = 0.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self.sync(pool)
                if time.monotonic() - cleaned > WINDOW_SECONDS:
                    cleaned = time.monotonic()
                    await self._forget_old_windows(pool)
            except Exception:
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                log.exception("rate-limit sync failed; retrying in %.1f s", delay)
            else:
                delay = self.sync_seconds

    async def _forget_old_windows(self, pool: asyncpg.Pool) -> None:
        try:
            await pool.execute(
                "DELETE FROM rate_limits WHERE window_start < $1", self._window - WINDOW_SECONDS
            )
        except Exception as exc:
            if database_fault(exc) is None:
                raise  # during an outage the next minute's try does it

    def start(self, pool: asyncpg.Pool) -> None:
        self._task = asyncio.create_task(self._run(pool), name="rate-limit-sync")

    async def stop(self, pool: asyncpg.Pool) -> None:
        """Stops the task and leaves this worker's last hits for the others; never raises,
        so the rest of shutdown (closing the pools) always runs."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            async with asyncio.timeout(FINAL_SYNC_SECONDS):
                await self.sync(pool)
        except Exception as exc:
            log.warning("rate-limit hits of this worker not merged at shutdown: %r", exc)


def bucket_of(principal: Principal) -> str:
    """The budget a verified caller spends: one per user of a tenant."""
    identity = f"{principal.customer_id}/{principal.user_id}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class RateLimitMiddleware:
    """Counts every request that carries a valid bearer token against its caller's budget."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter: RateLimiter | None = getattr(scope["app"].state, "rate_limiter", None)
        if scope["type"] != "http" or limiter is None:
            await self.app(scope, receive, send)
            return
        try:
            token = _bearer(scope)
        except ApiError as exc:  # several Authorization headers
            await problem_response(exc)(scope, receive, send)
            return
        principal = None if token is None else _verified(scope, token)
        if principal is None:
            await self.app(scope, receive, send)  # no budget to spend: the route answers 401
            return
        decision = limiter.hit(bucket_of(principal))
        if not decision.allowed:
            refusal = RateLimited(
                f"This token made {decision.limit} requests this minute; "
                f"retry in {decision.reset_seconds} s.",
                headers={k.decode(): v.decode() for k, v in decision.headers()},
            )
            metrics.RATE_LIMITED.inc()
            await problem_response(refusal)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *decision.headers()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _verified(scope: Scope, token: str) -> Principal | None:
    # Only verified tokens get a budget, so made-up tokens cannot grow the counters.
    verifier: TokenVerifier = scope["app"].state.verifier
    try:
        return verifier.verify(token)
    except ApiError:
        return None


def _bearer(scope: Scope) -> str | None:
    header = authorization_header(scope["headers"])
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
