"""What the HTTP edge (request id, metrics, access log) adds to every request.

Calls a trivial ASGI app directly, with and without ``polis_api.edge.observe.Edge``
around it, in alternating rounds in one process, and reports the time per request of
each and the difference. The bare app is the floor: no server, no socket, no framework,
so the difference is the edge's own cost. Three cases: an answer (200), a problem (404,
whose body the edge may have to complete with ``instance``), and a 200 with the access
log on (written to a discarded stream, as a log collector would read it).

    .venv/bin/python bench/edge.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from polis_api.edge.logs import ACCESS_LOGGER, JsonFormatter
from polis_api.edge.observe import Edge

PROBLEM = b'{"type":"t","title":"Not found","status":404,"detail":"No.","code":"NOT_FOUND"}'


class _State:
    route_templates: Any = None


class _App:
    state = _State()


def _trivial(status: int, body: bytes, content_type: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = _Route  # as Starlette's router leaves it
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


class _Route:
    path_format = "/v1/campaigns/{id}"


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/campaigns/6b2c9a5e-4d1f-4c3e-9a7b-1234567890ab",
        "headers": [(b"x-request-id", b"phone-42")],
        "client": ("10.0.0.7", 51234),
        "app": _App(),
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Message) -> None:
    return None


async def _per_request_us(app: Any, requests: int) -> float:
    began = time.perf_counter()
    for _ in range(requests):
        await app(_scope(), _receive, _send)
    return (time.perf_counter() - began) / requests * 1e6


async def _compare(name: str, inner: Any, requests: int, rounds: int) -> dict[str, float]:
    wrapped = Edge(inner, max_request_id_length=128)
    bare, edged = [], []
    for _ in range(rounds):  # alternate, so a busy moment hits both alike
        bare.append(await _per_request_us(inner, requests))
        edged.append(await _per_request_us(wrapped, requests))
    floor, edge = statistics.median(bare), statistics.median(edged)
    print(f"{name:<22} floor {floor:7.2f} us   edge {edge:7.2f} us   adds {edge - floor:6.2f} us")
    return {"floor_us": floor, "edge_us": edge}


def _access_log(enabled: bool) -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.handlers.clear()
    logger.propagate = False
    if enabled:
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if enabled else logging.WARNING)


async def main(quick: bool) -> None:
    requests, rounds = (2_000, 3) if quick else (20_000, 7)
    ok = _trivial(200, b'{"id":"x"}', b"application/json")
    problem = _trivial(404, PROBLEM, b"application/problem+json")
    _access_log(False)
    await _compare("200, no access log", ok, requests, rounds)
    await _compare("404 problem, no log", problem, requests, rounds)
    _access_log(True)
    await _compare("200, JSON access log", ok, requests, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
