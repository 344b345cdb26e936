"""The ApiError hierarchy: every failure a client can see has a status and a stable code.

Rendered by one handler (see ``app.py``) as RFC 9457 problem+json with all five of
``type``, ``title``, ``status``, ``detail`` and ``code``, plus ``errors`` where there
are several (docs/api.md, Errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://polis-api.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One item of a problem's ``errors`` list (the shape Polis' own errors use)."""

    path: str
    message: str
    expected: str | None = None
    received: str | None = None

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"path": self.path, "message": self.message}
        if self.expected is not None:
            item["expected"] = self.expected
        if self.received is not None:
            item["received"] = self.received
        return item


class ApiError(Exception):
    """Base of every error a client may see; subclasses fix ``status`` and ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.code.lower().replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [error.as_json() for error in self.errors]
        body.update(self.extra)
        return body


class ValidationFailed(ApiError):
    status = 400
    code = "VALIDATION_ERROR"
    title = "The request is not valid"


class BadFilter(ApiError):
    status = 400
    code = "BAD_FILTER"
    title = "The filter or sort is not valid"


def invalid_field(path: str, message: str) -> ValidationFailed:
    """A 400 about one field, e.g. a reference to a document the tenant does not have."""
    return ValidationFailed(f"{path}: {message}.", errors=[FieldError(path=path, message=message)])


class BadSyncToken(ApiError):
    status = 400
    code = "BAD_SYNC_TOKEN"
    title = "The sync token is not valid"


class InvalidPatch(ApiError):
    status = 400
    code = "INVALID_PATCH"
    title = "The JSON Patch cannot be applied"


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="polis-api"'})


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"
    title = "Not allowed"


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    title = "Method not allowed"


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class PatchTestFailed(Conflict):
    code = "PATCH_TEST_FAILED"
    title = "A JSON Patch test operation failed"


class SyncTokenExpired(ApiError):
    status = 410
    code = "SYNC_TOKEN_EXPIRED"
    title = "The sync token has expired"


class PreconditionFailed(ApiError):
    status = 412
    code = "PRECONDITION_FAILED"
    title = "The document has changed"

    def __init__(self, current_etag: str) -> None:
        super().__init__(
            "The etag you sent is not the document's current etag; "
            "fetch it again and retry with the new etag.",
            extra={"currentEtag": current_etag},
        )


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "The request body is too large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported content type"


class PreconditionRequired(ApiError):
    status = 428
    code = "PRECONDITION_REQUIRED"
    title = "An etag is required"

    def __init__(self) -> None:
        super().__init__(
            "This write needs the document's current etag in an If-Match (or ETag / etag) header."
        )


class ServiceUnavailable(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    title = "The service is temporarily unavailable"


class InternalError(ApiError):
    """What a client sees of an unexpected exception: nothing about its cause."""

    def __init__(self) -> None:
        super().__init__("An unexpected error occurred; it has been logged.")


def problem_schema() -> dict[str, Any]:
    """JSON Schema of the problem body, for OpenAPI ``responses=``."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            # The request's id, as in its X-Request-Id header (docs/operations.md).
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": {
                        "path": {"type": "string"},
                        "message": {"type": "string"},
                        "expected": {"type": "string"},
                        "received": {"type": "string"},
                    },
                },
            },
        },
    }
