"""HTTP responses for documents: bytes from PostgreSQL passed through, plus OpenAPI."""

from typing import Any, Generic, TypeVar

from fastapi import Response
from pydantic import BaseModel, Field

from polis_api.documents.etag import parse_etag_header, quote_etag
from polis_api.documents.repository import Rendered
from polis_api.errors import PROBLEM_JSON, PayloadTooLarge, ValidationFailed, problem_schema

D = TypeVar("D", bound=BaseModel)


class Meta(BaseModel):
    created: str
    modified: str
    resource: str
    createdBy: str
    isDeleted: bool
    modifiedBy: str
    etag: str


class DocumentOut(BaseModel, Generic[D]):
    """Documentation only: responses are rendered by PostgreSQL, never re-validated."""

    id: str
    data: D
    meta: Meta
    customerId: str
    securityGroupId: str


class PageMeta(BaseModel):
    total: int | None = Field(default=None, description="With count=true: all matches.")
    next: str | None = Field(
        default=None, description="With since=: the token to send as since= next time."
    )
    more: bool | None = Field(
        default=None, description="With since=: true when calling again at once gives more."
    )


class PageOut(BaseModel, Generic[D]):
    data: list[DocumentOut[D]]
    meta: PageMeta


# OpenAPI: a list also answers CSV (docs/exports.md), beside its JSON model.
CSV_CONTENT = {
    "content": {
        "text/csv": {
            "schema": {"type": "string", "description": "One row per document (docs/exports.md)"}
        }
    }
}


def document_response(
    rendered: Rendered, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=rendered.body,
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": quote_etag(rendered.etag), **(headers or {})},
    )


def current_or_not_modified(rendered: Rendered, if_none_match: str | None) -> Response:
    """The document, or 304 when the client already holds its etag (RFC 9110 §13.1.2)."""
    tags = parse_etag_header(if_none_match)
    if tags is not None and ("*" in tags or rendered.etag in tags):
        return Response(status_code=304, headers={"ETag": quote_etag(rendered.etag)})
    return document_response(rendered)


def page_body(documents: list[Rendered]) -> str:
    """``{"data": [documents], "meta": {}}`` from already rendered documents."""
    return '{"data":[' + ",".join(doc.body for doc in documents) + '],"meta":{}}'


def check_bulk_size(count: int, limit: int, least: int = 0) -> None:
    if count < least:
        raise ValidationFailed(
            f"A bulk request takes at least {least} item(s); this one has {count}."
        )
    if count > limit:
        raise PayloadTooLarge(f"A bulk request takes at most {limit} items; this one has {count}.")


def json_response(body: str, status_code: int = 200) -> Response:
    return Response(content=body, status_code=status_code, media_type="application/json")


_DESCRIPTIONS = {
    400: "Invalid body, parameter, filter or patch",
    401: "Missing, malformed or expired bearer token",
    403: "The token lacks the permission, or the body names another tenant",
    404: "No such document in this tenant",
    406: "The Accept header names no representation this route offers",
    409: "Conflict (a failed JSON Patch test, an id already taken)",
    410: "The sync token is older than the tombstones kept; sync again from since=",
    412: "The etag sent is not the document's current etag",
    413: "The request body is too large",
    415: "The request body is not JSON",
    428: "The write needs an If-Match (or ETag) header",
    503: "The database is unavailable; retry later",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problem+json errors a route can answer."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": problem_schema()}},
        }
        for status in statuses
    }
