"""The one place errors become problem+json responses (docs/api.md, Errors)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.documents.validation import field_errors, validation_failed
from polis_api.edge import context as request_context
from polis_api.errors import (
    PROBLEM_JSON,
    ApiError,
    Conflict,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)

log = logging.getLogger("polis_api")

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def problem_response(error: ApiError) -> Response:
    problem = error.problem()
    context = request_context.current()
    if context is not None:
        # This occurrence (RFC 9457 §3.1.5): the request's id, kept in the body so that
        # an idempotent replay names the request that did the work.
        problem["instance"] = context.request_id
    return Response(
        content=orjson.dumps(problem),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return problem_response(exc)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return problem_response(ValidationFailed(_json_invalid_detail(errors)))
    if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
        return problem_response(ValidationFailed("The request body is empty; send a JSON object."))
    return problem_response(validation_failed(field_errors(errors)))


def _json_invalid_detail(errors: list[Any]) -> str:
    error = next(e for e in errors if e.get("type") == "json_invalid")
    reason = (error.get("ctx") or {}).get("error", "malformed JSON")
    location = error.get("loc", ("body", 0))
    position = location[1] if len(location) > 1 else 0
    return f"The request body is not valid JSON ({reason} at character {position})."


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error_class = _BY_STATUS.get(exc.status_code)
    if exc.status_code == 404:
        error: ApiError = NotFound(f"No route matches {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        error = MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )
    elif error_class is not None:
        error = error_class(str(exc.detail))
    else:
        error = ApiError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
    if exc.headers:
        error.headers = {**exc.headers, **error.headers}
    return problem_response(error)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on this path (RFC 9110 §15.5.6: a 405 sends Allow).

    Starlette's own ``Allow`` names only the first route that matched the path, so
    ``PUT /v1/campaigns`` would claim that only POST works there.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


# What a dead, restarting, overloaded or stuck database raises. asyncpg's own
# errors while it talks to the server, and the operating system's while it
# connects: a missing unix socket is FileNotFoundError, a closed port
# ConnectionRefusedError, and asyncpg's connect and acquire timeouts TimeoutError.
# No request does other I/O that could raise OSError.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,  # 08xxx: the connection broke, also mid-query
    asyncpg.OperatorInterventionError,  # 57xxx: shutting down, starting up, statement timeout
    asyncpg.InsufficientResourcesError,  # 53xxx: too many connections, out of memory or disk
    asyncpg.InterfaceError,  # a closed connection or a closing pool, seen from the client
    # A connection whose server just sent FATAL (shutdown) and has not yet closed the
    # socket: asyncpg still hands it out, and its next statement fails with this.
    asyncpg.exceptions.InternalClientError,
    OSError,  # includes ConnectionError and TimeoutError
)
# InterfaceErrors that are bugs in how we call asyncpg, not the database's state.
_CLIENT_MISUSE: tuple[type[Exception], ...] = (
    ValueError,  # asyncpg's client-side DataError: a value its codec cannot encode
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)


def database_fault(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 that ``exc`` becomes when it means the database cannot serve now, else None."""
    if not isinstance(exc, DATABASE_UNAVAILABLE) or isinstance(exc, _CLIENT_MISUSE):
        return None
    if isinstance(exc, asyncpg.QueryCanceledError):
        # POLIS_STATEMENT_TIMEOUT_MS: PostgreSQL cancelled it, and the worker is free again.
        detail = (
            "The database stopped this request's query because it ran too long; "
            "narrow the request (a tighter filter, a smaller page or bulk) or retry later."
        )
    elif isinstance(exc, TimeoutError):
        detail = "The database did not answer in time; retry shortly."
    else:
        detail = "The database is unavailable right now; retry shortly."
    return ServiceUnavailable(detail, headers={"Retry-After": "1"})


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    fault = database_fault(exc)
    if fault is None:
        return await _unexpected(request, exc)
    return _fault_response(request.method, request.url.path, exc, fault)


def _fault_response(method: str, path: str, exc: BaseException, fault: ApiError) -> Response:
    # One line, no traceback: an outage would otherwise bury the log in them.
    log.warning("%s %s: %s (%s: %s)", method, path, fault.code, type(exc).__name__, exc)
    return problem_response(fault)


async def _transient_conflict(request: Request, exc: Exception) -> Response:
    # Lock order is fixed where we can (bulk), but two writers can still collide;
    # the loser's transaction was rolled back whole, so a retry is always safe.
    log.info("transient conflict on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        Conflict(
            "Another request changed the same documents at the same moment; "
            "nothing was written. Retry the request.",
            headers={"Retry-After": "1"},
        )
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request.method, request.url.path, exc)


def unexpected_error_response(method: str, path: str, exc: BaseException) -> Response:
    """The answer to an exception nothing else handled: 503 for a database fault, else
    a logged 500 that shows nothing of it."""
    fault = database_fault(exc)
    if fault is not None:
        # Raised outside the routes, by a middleware's own connection (idempotency).
        return _fault_response(method, path, exc, fault)
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return problem_response(InternalError())


class TrackedSend:
    """A ``send`` that remembers whether the response has started: until it has, a
    failure can still be answered with a response of its own."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


class DatabaseFaultGuard:
    """Around the other middleware: a database failure raised by one of them is a 503.

    Routes' failures are answered by the handlers above. Those of a middleware (the
    idempotency one has its own connection) would reach Starlette's
    ServerErrorMiddleware, which answers through ``_unexpected`` but then re-raises:
    uvicorn logs a traceback and closes the connection, so during an outage clients
    on keep-alive connections saw their next request dropped instead of a 503.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            fault = database_fault(exc)
            if fault is None or tracked.started:
                raise
            response = _fault_response(scope["method"], scope["path"], exc, fault)
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for error_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_type, _database_unavailable)
    for error_type in (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
        app.add_exception_handler(error_type, _transient_conflict)
    app.add_exception_handler(Exception, _unexpected)
