"""The outermost middleware: gives every request an id, and reports every answer.

Each response carries ``X-Request-Id`` (the client's, when sane, else a new one).
``problem_response`` names it as a problem's ``instance``; a problem+json body that
arrives here without one (written some other way) gets it added. A replayed idempotent
answer keeps the ``instance`` it was stored with: the id of the request that did the
work, which a client whose first answer was lost has otherwise never seen. When the
answer is done, the edge counts it in the metrics under its route template and writes
the access log line.

An exception no handler took is answered here (the same problem the app's handler
gives) rather than by Starlette's outer error middleware, so that answer carries the
request id too and its log line names the request.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.auth import redact_tokens
from polis_api.edge import context as request_context
from polis_api.edge import metrics
from polis_api.edge.logs import ACCESS_LOGGER
from polis_api.errors import PROBLEM_JSON
from polis_api.problems import unexpected_error_response

HEADER = b"x-request-id"
UNMATCHED = "unmatched"  # every path no route knows, as one label
# Answered with nothing: the client went away first (nginx's convention).
CLIENT_GONE = 499
access_log = logging.getLogger(ACCESS_LOGGER)


class Edge:
    def __init__(self, app: ASGIApp, *, max_request_id_length: int) -> None:
        self.app = app
        self.max_request_id_length = max_request_id_length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        header = _header(scope, HEADER)
        request_id = request_context.request_id_from(header, self.max_request_id_length)
        token = request_context.begin(request_id)
        answer = _Answer(request_id, send)
        try:
            await self.app(scope, receive, answer.send)
        except Exception as exc:
            if answer.status is not None:
                raise  # the status line is out: only dropping the connection is left
            response = unexpected_error_response(scope["method"], scope["path"], exc)
            await response(scope, receive, answer.send)
        finally:
            _report(scope, answer, time.perf_counter() - began)
            request_context.end(token)


class _Answer:
    """Sends the response on, adding the request id (and, to a problem, ``instance``)."""

    def __init__(self, request_id: str, send: Send) -> None:
        self.request_id = request_id
        self._send = send
        self.status: int | None = None
        self.replayed = False
        self._held: Message | None = None  # a problem's start, until its body is complete
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._start(message)
        elif message["type"] == "http.response.body" and self._held is not None:
            self._body += message.get("body", b"")
            if not message.get("more_body", False):
                await self._send_problem()
        else:
            await self._send(message)

    async def _start(self, message: Message) -> None:
        self.status = message["status"]
        headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
        headers.append((HEADER, self.request_id.encode()))
        problem = False
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-type":
                problem = value.split(b";")[0].strip() == PROBLEM_JSON.encode()
            elif lowered == b"idempotent-replayed":
                self.replayed = True
        message = {**message, "headers": headers}
        if problem:
            self._held = message
        else:
            await self._send(message)

    async def _send_problem(self) -> None:
        assert self._held is not None
        body = with_instance(bytes(self._body), self.request_id)
        headers = [(k, v) for k, v in self._held["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({**self._held, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
        self._held = None


def with_instance(body: bytes, request_id: str) -> bytes:
    """The problem with ``instance`` set to the request id (RFC 9457 §3.1.5: this
    occurrence of the problem) unless it names one already; a body that is not a JSON
    object is left as it is."""
    try:
        problem = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(problem, dict) or "instance" in problem:
        return body
    problem["instance"] = request_id
    return orjson.dumps(problem)


def _report(scope: Scope, answer: _Answer, seconds: float) -> None:
    context = request_context.current()
    route = (context.route if context else None) or route_template(scope)
    status = answer.status or CLIENT_GONE
    metrics.observe_request(route, scope["method"], status, seconds)
    if answer.replayed:
        metrics.IDEMPOTENT_REPLAYS.inc()
    if access_log.isEnabledFor(logging.INFO):
        # A client may put a token anywhere, even in the path: it is masked here too.
        path = redact_tokens(scope["path"])
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        duration_ms = round(seconds * 1000, 1)
        # The path without its query: a query can hold a filter on people's names.
        access_log.info(
            '%s "%s %s" %s %.1f ms',
            where,
            scope["method"],
            path,
            status,
            duration_ms,
            extra={
                "method": scope["method"],
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "client": where,
            },
        )


def route_template(scope: Scope) -> str:
    """The template of the route that answered (or would have answered) the request.

    Starlette's router leaves the route in the scope it was given; a request that a
    guard answered first (429, 413, an idempotent replay) or whose scope a middleware
    copied is matched here against the app's routes instead.
    """
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str) and template:
        return template
    app = scope["app"]
    templates: Templates | None = getattr(app.state, "route_templates", None)
    if templates is None:
        templates = app.state.route_templates = route_templates(app.router.routes)
    path, method = scope["path"], scope["method"]
    known_path = None
    for regex, methods, template in templates:
        if regex.match(path):
            if methods is None or method in methods:
                return template
            known_path = known_path or template  # the path is known, the method is not (405)
    return known_path or UNMATCHED


Templates = list[tuple[re.Pattern[str], frozenset[str] | None, str]]


def route_templates(routes: Sequence[BaseRoute]) -> Templates:
    """Every route in the router's order, compiled for matching (None: any method).

    Built once per worker at start-up (the lifespan), as it takes a moment.
    """
    templates: Templates = []
    for route in _flat(routes):
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        regex, template, _ = compile_path(path)
        if getattr(route, "routes", None) is not None:  # a mount: everything below it
            regex = re.compile(regex.pattern.rstrip("$") + "/.*$")
            template += "/{path}"
        methods = getattr(route, "methods", None)
        templates.append((regex, None if methods is None else frozenset(methods), template))
    return templates


def _flat(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    # FastAPI 0.13x and later keep included routers nested in objects of their own,
    # with a public iterator over what they hold; earlier ones kept app.routes flat.
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return routes
    return iter_route_contexts(routes)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
