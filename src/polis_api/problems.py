"""The one place errors become problem+json responses (SPEC §6)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from polis_api.documents.validation import field_errors, validation_failed
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
    return Response(
        content=orjson.dumps(error.problem()),
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


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    return problem_response(
        ServiceUnavailable(
            "The database is unavailable or too slow right now; retry shortly.",
            headers={"Retry-After": "1"},
        )
    )


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
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(InternalError())


DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    TimeoutError,
)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for error_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error_type, _database_unavailable)
    for error_type in (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
        app.add_exception_handler(error_type, _transient_conflict)
    app.add_exception_handler(Exception, _unexpected)
