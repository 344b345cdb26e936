"""Streamed lists (limit=9007199254740991) within their bounds (issue 9).

A stream holds a list-pool connection in a transaction while it runs. Clients that
stop reading are cut off at POLIS_STREAM_SEND_TIMEOUT_SECONDS and their transaction
ends; one user may have only POLIS_MAX_STREAMS_PER_IDENTITY open; and a pooled
connection on which something failed is replaced, never handed to the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from polis_api.auth import mint_token
from polis_api.config import Settings
from polis_api.documents.listing import LIMIT_ALL
from tests.builders import assert_problem
from tests.conftest import Tenant, running_server

ALL = {"limit": str(LIMIT_ALL)}
SEND_TIMEOUT = 2
PER_IDENTITY = 2
STALLED = 16
PATIENCE = 30.0  # the most a test waits for something that must happen
HOUSEHOLDS = 6000  # ~6 MB of JSON: more than the socket buffers between us and the server
PADDING = "x" * 800


def user_headers(settings: Settings, customer_id: uuid.UUID) -> dict[str, str]:
    """A token for one more user (its own identity) of the tenant."""
    token = mint_token(settings, roles=["admin"], customer_id=customer_id, sub=uuid.uuid4())
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def stream_server(database_url: str) -> Iterator[str]:
    # A list pool of 4 per worker: more than one user's streams, fewer than 16.
    with running_server(
        database_url,
        "stream-server",
        POLIS_STREAM_SEND_TIMEOUT_SECONDS=str(SEND_TIMEOUT),
        POLIS_MAX_STREAMS_PER_IDENTITY=str(PER_IDENTITY),
        POLIS_POOL_MAX_SIZE="8",
        POLIS_POOL_ACQUIRE_TIMEOUT_SECONDS="2",
        POLIS_RATE_LIMIT_PER_MINUTE="1000000",
    ) as base:
        yield base


@pytest.fixture(scope="module")
def big_tenant(stream_server: str, settings: Settings) -> uuid.UUID:
    """A tenant whose full household list is far larger than any socket buffer."""
    customer_id = uuid.uuid4()
    headers = user_headers(settings, customer_id)
    batch = 3000
    with httpx.Client(base_url=stream_server, timeout=120) as http:
        for start in range(0, HOUSEHOLDS, batch):
            items = [
                {"data": {"address": {"streetName": PADDING, "number": n}}}
                for n in range(start, start + batch)
            ]
            response = http.post("/v2/households/bulk", json={"data": items}, headers=headers)
            assert response.status_code == 200, response.text
    return customer_id


def stalled_stream(base: str, headers: dict[str, str]) -> socket.socket:
    """A client that asks for the whole list and then never reads."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.settimeout(PATIENCE)
    sock.connect((host, int(port)))
    head = f"GET /v2/households?limit={LIMIT_ALL} HTTP/1.1\r\nHost: polis.test\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock.sendall((head + "\r\n").encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


async def stream_transactions(url: str) -> int:
    """List-pool sessions sitting in a transaction (a stream waiting on its client)."""
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'polis-api-lists' "
            "AND state LIKE 'idle in transaction%' AND datname = current_database()"
        )
        return count
    finally:
        await conn.close()


async def until(url: str, expected: int) -> bool:
    """Whether the stream transactions come to ``expected`` within PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if await stream_transactions(url) == expected:
            return True
        await asyncio.sleep(0.1)
    return False


async def other_tenant_lists(base: str, settings: Settings) -> list[int]:
    """A page with its total and a (small) streamed list, on fresh connections, so
    that both workers serve some."""
    statuses = []
    headers = user_headers(settings, uuid.uuid4())
    for _ in range(6):
        async with httpx.AsyncClient(base_url=base, timeout=PATIENCE) as http:
            page = await http.get("/v2/households", params={"count": "true"}, headers=headers)
            whole = await http.get("/v2/households", params=ALL, headers=headers)
        statuses += [page.status_code, whole.status_code]
    return statuses


async def test_clients_that_stop_reading_are_cut_off_and_release_the_database(
    stream_server: str, big_tenant: uuid.UUID, settings: Settings, database_url: str
) -> None:
    headers = user_headers(settings, big_tenant)
    sockets = [stalled_stream(stream_server, headers) for _ in range(STALLED)]
    try:
        # The cap lets two through; they stall with a transaction open ...
        held = await until(database_url, PER_IDENTITY)
        # ... while every other tenant's lists and counts still answer.
        others = await other_tenant_lists(stream_server, settings)
        released = await until(database_url, 0)
        answers = [read_until_closed(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

    assert held, "the stalled streams never held their transactions"
    assert others == [200] * len(others)
    assert released, "a stalled stream kept its transaction past the send timeout"
    cut = [a for a in answers if a.startswith(b"HTTP/1.1 200")]
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
    assert (len(cut), len(refused)) == (PER_IDENTITY, STALLED - PER_IDENTITY)
    for answer in cut:
        assert not answer.endswith(b"0\r\n\r\n")  # the body never ended: it was cut off
    head, _, body = refused[0].partition(b"\r\n\r\n")
    assert b"retry-after: " in head.lower()
    assert json.loads(body)["code"] == "TOO_MANY_STREAMS"


async def test_one_user_may_have_a_limited_number_of_streams_open(
    stream_server: str, big_tenant: uuid.UUID, settings: Settings, database_url: str
) -> None:
    headers = user_headers(settings, big_tenant)
    sockets = [stalled_stream(stream_server, headers) for _ in range(PER_IDENTITY)]
    try:
        at_the_cap = await until(database_url, PER_IDENTITY)
        async with httpx.AsyncClient(base_url=stream_server, timeout=PATIENCE) as http:
            past_the_cap = await http.get("/v2/households", params=ALL, headers=headers)
            # A page is no stream: the same user still gets one.
            page = await http.get("/v2/households", headers=headers)
            colleague = await http.get(
                "/v2/households", params=ALL, headers=user_headers(settings, big_tenant)
            )
    finally:
        for sock in sockets:
            sock.close()

    assert at_the_cap
    body = assert_problem(past_the_cap, 429, "TOO_MANY_STREAMS")
    assert str(PER_IDENTITY) in body["detail"]
    assert past_the_cap.headers["Retry-After"].isdigit()
    assert page.status_code == 200
    assert colleague.status_code == 200
    assert len(colleague.json()["data"]) == HOUSEHOLDS
    assert await until(database_url, 0)  # closed sockets end their streams too


# -- in-process: a connection that saw an error is replaced ---------------------------


async def test_a_connection_left_in_a_mess_is_reset_before_the_next_stream(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    """Whatever a failing request leaves on its connection (an open cursor named like
    the stream's, a changed setting, an aborted transaction) is gone for the next."""
    await client.post(
        "/v2/households/bulk",
        json={"data": [{"data": {"address": {"number": n}}} for n in range(3)]},
        headers=admin,
    )
    pool = app.state.list_pool
    connections = []
    with contextlib.suppress(RuntimeError):
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(pool.get_max_size()):  # every connection of the pool
                conn = await stack.enter_async_context(pool.acquire())
                await conn.execute("DECLARE polis_stream CURSOR WITH HOLD FOR SELECT 1")
                await conn.execute("SET statement_timeout = 1")
                await conn.execute("BEGIN")
                with contextlib.suppress(asyncpg.PostgresError):
                    await conn.execute("SELECT 1/0")
                connections.append(conn)
            raise RuntimeError("the request failed")

    answers = [
        await client.get("/v2/households", params={**ALL, "count": "true"}, headers=admin)
        for _ in range(2 * len(connections))
    ]
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert answers[0].json()["meta"]["total"] == 3


async def test_a_value_the_driver_refused_leaves_no_broken_connection(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """asyncpg refusing a bound value (a timestamp past year 9999 in UTC) used to leave
    the connection's implicit transaction open; the next BEGIN on it then failed."""
    past_9999 = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    pool = app.state.list_pool
    with contextlib.suppress(asyncpg.DataError):
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(pool.get_max_size()):
                conn = await stack.enter_async_context(pool.acquire())
                with contextlib.suppress(asyncpg.DataError):
                    await conn.fetch("SELECT 1 WHERE now() > $1::timestamptz", past_9999)
            raise asyncpg.DataError("the request failed")

    answers = [
        await client.get("/v2/households", params=ALL, headers=admin)
        for _ in range(2 * pool.get_max_size())
    ]
    assert [a.status_code for a in answers] == [200] * len(answers)


async def test_a_connection_whose_user_failed_is_replaced_without_running_a_statement(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Releasing a failed connection runs nothing on it: the request's own error is
    the one raised, whatever setting it left (a reset run under this 1 ms timeout was
    cancelled, and that cancellation replaced the error), and the next users get new
    sessions."""
    pool = app.state.list_pool
    failed_sessions = set()
    with pytest.raises(RuntimeError, match="the request failed"):
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(pool.get_max_size()):
                conn = await stack.enter_async_context(pool.acquire())
                failed_sessions.add(await conn.fetchval("SELECT pg_backend_pid()"))
                await conn.execute("SET statement_timeout = 1")
            raise RuntimeError("the request failed")

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(pool.get_max_size()):
            conn = await stack.enter_async_context(pool.acquire())
            assert await conn.fetchval("SELECT pg_backend_pid()") not in failed_sessions
            assert await conn.fetchval("SHOW statement_timeout") == "30s"
    answer = await client.get("/v2/households", params=ALL, headers=admin)
    assert answer.status_code == 200
