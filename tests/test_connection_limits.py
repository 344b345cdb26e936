"""Connection-level bounds (issue 9), against a real `polis-api serve` over raw sockets:
no server banner, a deadline and a size cap for each request's head, a deadline for
each pause in a request's body, and a cap on open connections."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.builders import campaign
from tests.conftest import Tenant
from tests.test_shutdown import Serve, serve

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_HEADER_BYTES = 2048
MAX_CONNECTIONS = 3
PATIENCE = 10.0  # how long a test waits for an answer that must come


@pytest.fixture(scope="module")
async def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Serve]:
    """One worker, so that every connection counts against the same cap."""
    env = {
        "POLIS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "POLIS_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "POLIS_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "POLIS_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    data_dir = tmp_path_factory.mktemp("connections")
    async with serve(
        Path(data_dir), database_url=database_url, workers=1, env=env, name="connections"
    ) as running:
        yield running


@contextlib.contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    try:
        yield sock
    finally:
        sock.close()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body (the connection may stay open)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def head_of_size(size: int) -> bytes:
    """A GET /healthz whose request line and headers take exactly ``size`` bytes."""
    start = b"GET /healthz HTTP/1.1\r\nHost: polis.test\r\nX-Padding: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


def test_responses_name_no_server_software(server: Serve) -> None:
    with connection(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: polis.test\r\n\r\n")
        status, headers, _ = read_response(sock)
    assert status == 200
    assert "server" not in headers


def test_a_head_at_the_size_limit_is_served(server: Serve) -> None:
    with connection(server.port) as sock:
        sock.sendall(head_of_size(MAX_HEADER_BYTES))
        status, _, body = read_response(sock)
    assert status == 200, body


@pytest.mark.parametrize("pieces", [1, 8], ids=["at-once", "in-pieces"])
def test_a_head_one_byte_past_the_limit_is_431(server: Serve, pieces: int) -> None:
    head = head_of_size(MAX_HEADER_BYTES + 1)
    step = -(-len(head) // pieces)
    with connection(server.port) as sock:
        for start in range(0, len(head), step):
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                sock.sendall(head[start : start + step])
        status, headers, body = parse(read_all(sock))
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    assert str(MAX_HEADER_BYTES) in problem["detail"]


def test_a_connection_that_never_sends_a_request_is_dropped(server: Serve) -> None:
    with connection(server.port) as sock:
        status, headers, body = parse(read_all(sock))  # returns once the server closes
    assert headers["content-type"] == "application/problem+json"
    assert status == 408
    assert json.loads(body)["code"] == "REQUEST_TIMEOUT"


def test_a_head_trickled_slower_than_the_timeout_is_dropped(server: Serve) -> None:
    """Slowloris: a header line every so often, never the blank line that ends the head."""
    with connection(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: polis.test\r\n")
        closed = False
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline and not closed:
            time.sleep(HEADER_TIMEOUT / 4)
            try:
                sock.sendall(b"X-Trickle: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                closed = closed or sock.recv(65536, socket.MSG_PEEK) != b""
            sock.setblocking(True)
        sock.settimeout(PATIENCE)
        answer = read_all(sock) if closed else b""
    assert closed, "the server kept a trickling connection open"
    assert parse(answer)[0] == 408


def test_a_head_sent_in_pieces_within_the_timeout_is_served(server: Serve) -> None:
    with connection(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(HEADER_TIMEOUT / 4)
        sock.sendall(b"Host: polis.test\r\n\r\n")
        status, _, _ = read_response(sock)
    assert status == 200


def test_open_connections_are_capped_per_worker(server: Serve) -> None:
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(connection(server.port)) for _ in range(MAX_CONNECTIONS - 1)]
        with connection(server.port) as sock:  # the last one allowed
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: polis.test\r\n\r\n")
            at_the_cap = read_response(sock)[0]
            idle.append(stack.enter_context(connection(server.port)))  # one more
            time.sleep(0.2)  # let the server accept it
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: polis.test\r\n\r\n")
            past_the_cap = read_response(sock)
    assert at_the_cap == 200
    status, headers, body = past_the_cap
    assert status == 503
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert "POLIS_MAX_CONNECTIONS" in problem["detail"]
    assert problem["instance"] == headers["x-request-id"]


def _post_campaign_head(token: str, length: int) -> bytes:
    return (
        f"POST /v1/campaigns HTTP/1.1\r\nHost: polis.test\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _campaign_body(name: str) -> bytes:
    return json.dumps(campaign(name=name)).encode()


def _campaigns_named(server: Serve, token: str, name: str) -> int:
    with connection(server.port) as sock:
        sock.sendall(
            f"GET /v1/campaigns?count=true&filter[/data/name]={name} HTTP/1.1\r\n"
            f"Host: polis.test\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        status, _, body = read_response(sock)
    assert status == 200, body
    return int(json.loads(body)["meta"]["total"])


def test_a_body_that_pauses_past_the_timeout_is_408_and_never_executed(
    server: Serve, tenant: Tenant
) -> None:
    token = tenant.token("admin")
    body = _campaign_body("paused-body")
    with connection(server.port) as sock:
        sock.sendall(_post_campaign_head(token, len(body)) + body[:10])
        started = time.monotonic()
        status, headers, answer = parse(read_all(sock))  # the server closes it
        waited = time.monotonic() - started
    assert status == 408 and headers["content-type"] == "application/problem+json"
    assert "body paused" in json.loads(answer)["detail"]
    # Timed from after our send: the server's clock started a moment earlier.
    assert BODY_TIMEOUT / 2 <= waited < PATIENCE
    assert _campaigns_named(server, token, "paused-body") == 0


def test_a_body_sent_in_pieces_each_within_the_timeout_is_served(
    server: Serve, tenant: Tenant
) -> None:
    """The deadline is per pause, not for the whole body: a slow but steady phone is fine."""
    token = tenant.token("admin")
    body = _campaign_body("steady-body")
    pieces = [body[n : n + 8] for n in range(0, len(body), 8)]
    with connection(server.port) as sock:
        sock.sendall(_post_campaign_head(token, len(body)))
        for piece in pieces[:4]:
            time.sleep(BODY_TIMEOUT / 2)
            sock.sendall(piece)
        sock.sendall(b"".join(pieces[4:]))
        status, _, answer = read_response(sock)
    assert status == 201, answer
    assert _campaigns_named(server, token, "steady-body") == 1
