"""Cut-off requests (issue 9): a body that never arrived whole is never run nor kept.

The live-server tests speak raw HTTP/1.1 over a socket to `polis-api serve`, so the
server sees what a phone losing its network does: headers, part of a body, then a
closed connection. Each cut body is itself valid JSON, so a server that ran the part
it got would have recorded the knock (and stored that answer under the key, making
the retry with the whole body a 422).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tests.builders import assert_problem
from tests.canvassing import Door, door, door_record, interaction, interactions_of
from tests.conftest import Tenant

PATH = "/v2/interactions"
# Long enough for the server to see the closed connection and finish with it, so a
# server that ran the cut request would have stored its answer before the retry.
SETTLE_SECONDS = 0.5


def _bodies(at: Door) -> tuple[bytes, bytes]:
    """A whole body and a cut of it that is valid JSON on its own (trailing spaces cut)."""
    cut = orjson.dumps(interaction(at, unavailable=True, unavailableReason="Not Home"))
    return cut + b" " * 64, cut


def _head(base: str, headers: dict[str, str], framing: str) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(framing)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send_and_hang_up(base: str, raw: bytes) -> None:
    parts = urlsplit(base)
    assert parts.hostname is not None and parts.port is not None
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(raw)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(SETTLE_SECONDS)


async def _retry(base: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.post(
            PATH, content=body, headers={**headers, "Content-Type": "application/json"}
        )


async def _assert_recorded_once(
    client: httpx.AsyncClient, admin: dict[str, str], at: Door, retry: httpx.Response
) -> None:
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    assert [doc["id"] for doc in await interactions_of(client, admin, at.campaign_id)] == [
        retry.json()["id"]
    ]
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["state"] == "contacted-unavailable-not-home"


async def test_a_body_cut_short_is_not_kept_under_its_key(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], live_server: str
) -> None:
    at = await door(client, admin)
    whole, cut = _bodies(at)
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    head = _head(live_server, keyed, f"Content-Length: {len(whole)}")
    await _send_and_hang_up(live_server, head + cut)
    assert await interactions_of(client, admin, at.campaign_id) == []
    retry = await _retry(live_server, whole, keyed)

    await _assert_recorded_once(client, admin, at, retry)


async def test_a_request_cut_right_after_its_headers_is_not_kept(
    client: httpx.AsyncClient, admin: dict[str, str], live_server: str
) -> None:
    at = await door(client, admin)
    whole, _ = _bodies(at)
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    await _send_and_hang_up(live_server, _head(live_server, keyed, f"Content-Length: {len(whole)}"))
    retry = await _retry(live_server, whole, keyed)

    await _assert_recorded_once(client, admin, at, retry)


async def test_a_chunked_body_cut_before_its_last_chunk_is_not_kept(
    client: httpx.AsyncClient, admin: dict[str, str], live_server: str
) -> None:
    at = await door(client, admin)
    whole, cut = _bodies(at)
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    first_chunk = f"{len(cut):x}\r\n".encode() + cut + b"\r\n"  # no "0\r\n\r\n" follows
    head = _head(live_server, keyed, "Transfer-Encoding: chunked")
    await _send_and_hang_up(live_server, head + first_chunk)
    assert await interactions_of(client, admin, at.campaign_id) == []
    retry = await _retry(live_server, whole, keyed)

    await _assert_recorded_once(client, admin, at, retry)


async def test_a_cut_request_without_a_key_runs_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], live_server: str
) -> None:
    at = await door(client, admin)
    whole, cut = _bodies(at)

    await _send_and_hang_up(
        live_server, _head(live_server, admin, f"Content-Length: {len(whole)}") + cut
    )
    chunked = _head(live_server, admin, "Transfer-Encoding: chunked")
    await _send_and_hang_up(live_server, chunked + f"{len(cut):x}\r\n".encode() + cut + b"\r\n")

    assert await interactions_of(client, admin, at.campaign_id) == []
    assert await door_record(client, admin, at) is None, "the door was not moved"


# --- in process: a body that disagrees with its Content-Length ---------------------------


async def test_a_body_shorter_than_its_content_length_is_400_and_runs_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    whole, cut = _bodies(at)
    keyed: dict[str, Any] = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    short = await client.post(
        PATH, content=cut, headers={**keyed, "Content-Length": str(len(whole))}
    )
    unkeyed = await client.post(
        PATH, content=cut, headers={**admin, "Content-Length": str(len(whole))}
    )
    retry = await client.post(PATH, content=whole, headers=keyed)

    for refused in (short, unkeyed):
        problem = assert_problem(refused, 400, "VALIDATION_ERROR")
        assert "Content-Length" in problem["detail"]
    await _assert_recorded_once(client, admin, at, retry)


async def test_a_body_of_exactly_its_content_length_runs(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    whole, _ = _bodies(at)

    response = await client.post(
        PATH, content=whole, headers={**admin, "Content-Length": str(len(whole))}
    )

    await _assert_recorded_once(client, admin, at, response)
