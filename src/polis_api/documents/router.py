"""build_routers(resource) -> the standard endpoints of a document resource (and bulk).

No ``from __future__ import annotations`` here: FastAPI must see the resource's
concrete body model in each handler's signature when the router is built.
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse

from polis_api.auth import VERBS, Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents import service
from polis_api.documents.envelope import BulkBody, CreateBody, PatchBody
from polis_api.documents.listing import LIST_PARAMETERS, parse_list_request
from polis_api.documents.resource import Resource
from polis_api.documents.responses import (
    DocumentOut,
    PageOut,
    check_bulk_size,
    current_or_not_modified,
    document_response,
    json_response,
    page_body,
    problem_responses,
)
from polis_api.errors import MethodNotAllowed

DocumentId = Annotated[uuid.UUID, "the document's id"]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The current etag (quoted, unquoted or W/). An `ETag` header works too.",
    ),
]
EtagHeader = Annotated[str | None, Header(alias="ETag", description="Polis' spelling of If-Match.")]
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "An etag you hold: 304 Not Modified while it is still current.",
}


def precondition(if_match: str | None, etag: str | None) -> str | None:
    return if_match if if_match is not None else etag


def build_routers(resource: Resource) -> list[APIRouter]:
    """The standard endpoints, plus bulk create where the resource declares a path."""
    routers = [_standard_router(resource)]
    if resource.bulk_path is not None:
        # First, so ".../bulk" is never taken for a document id by "/{id}".
        routers.insert(0, _bulk_router(resource))
    return routers


def _standard_router(resource: Resource) -> APIRouter:
    router = APIRouter(prefix=resource.prefix, tags=[resource.label])
    data_model: Any = resource.data_model
    Create: Any = resource.create_body or CreateBody[data_model]
    Out = DocumentOut[data_model]
    can = {verb: Depends(require(resource.permission(verb))) for verb in VERBS}
    route = _RouteSelector(router, resource.routes)

    @route(
        "create",
        "POST",
        "",
        status_code=201,
        summary=f"Create a {resource.label} document",
        responses={
            201: {"model": Out},
            **_existing_response(resource, Out),
            **problem_responses(400, 401, 403, 409, 413, 415),
        },
    )
    async def create(
        principal: Annotated[Principal, can["insert"]],
        conn: WriteConnection,
        body: Annotated[Create, Body(openapi_examples=_examples(resource.create_example))],
    ) -> Response:
        rendered, created = await service.create_document(conn, resource, principal, body)
        return document_response(rendered, 201 if created else 200)

    @route(
        "retrieve",
        "GET",
        "/{id}",
        summary=f"Retrieve a {resource.label} document",
        responses={
            200: {"model": Out},
            304: {"description": "Not modified (If-None-Match matched)"},
            **problem_responses(400, 401, 403, 404),
        },
        openapi_extra={"parameters": [IF_NONE_MATCH]},
    )
    async def retrieve(
        id: uuid.UUID, request: Request, principal: Annotated[Principal, can["read"]]
    ) -> Response:
        # The hottest route: one statement straight on the pool, no dependency to
        # open and close around it, and the header read as it is.
        rendered = await service.get_document(request.app.state.pool, resource, principal, id)
        return current_or_not_modified(rendered, request.headers.get("if-none-match"))

    @route(
        "patch",
        "PATCH",
        "/{id}",
        summary=f"Patch a {resource.label} document (RFC 6902, paths inside data)",
        responses={
            200: {"model": Out},
            **problem_responses(400, 401, 403, 404, 409, 412, 413, 415, 428),
        },
    )
    async def patch(
        id: uuid.UUID,
        principal: Annotated[Principal, can["modify"]],
        conn: WriteConnection,
        body: Annotated[PatchBody, Body(openapi_examples=_examples(_patch_body(resource)))],
        if_match: IfMatch = None,
        etag: EtagHeader = None,
    ) -> Response:
        rendered = await service.patch_document(
            conn, resource, principal, id, precondition(if_match, etag), body.operations()
        )
        return document_response(rendered)

    @route(
        "delete",
        "DELETE",
        "/{id}",
        status_code=204,
        summary=f"Delete a {resource.label} document (soft delete)",
        responses=problem_responses(400, 401, 403, 404, 412, 428),
    )
    async def delete(
        id: uuid.UUID,
        principal: Annotated[Principal, can["destroy"]],
        conn: WriteConnection,
        if_match: IfMatch = None,
        etag: EtagHeader = None,
    ) -> Response:
        await service.delete_document(conn, resource, principal, id, precondition(if_match, etag))
        return Response(status_code=204)

    @route(
        "list",
        "GET",
        "",
        summary=f"List {resource.label} documents",
        description=LIST_DESCRIPTION,
        openapi_extra={"parameters": LIST_PARAMETERS},
        responses={200: {"model": PageOut[data_model]}, **problem_responses(400, 401, 403)},
    )
    async def list_documents(
        request: Request, principal: Annotated[Principal, can["read"]]
    ) -> Response:
        return await list_response(request, resource, principal)

    return router


class _RouteSelector:
    """Registers only the standard endpoints a resource declares in ``routes``."""

    def __init__(self, router: APIRouter, enabled: frozenset[str]) -> None:
        self._router = router
        self._enabled = enabled

    def __call__(
        self, name: str, method: str, path: str, **options: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._enabled:
                self._router.add_api_route(path, handler, methods=[method], **options)
            return handler

        return register


def _bulk_router(resource: Resource) -> APIRouter:
    """Bulk create at ``resource.bulk_path``, which need not sit under the prefix."""
    assert resource.bulk_path is not None
    router = APIRouter(tags=[resource.label])
    can_insert = Depends(require(resource.permission("insert")))
    data_model: Any = resource.data_model

    async def bulk_create(
        request: Request,
        principal: Annotated[Principal, can_insert],
        conn: WriteConnection,
        body: BulkBody[data_model],
    ) -> Response:
        check_bulk_size(len(body.data), request.app.state.settings.max_bulk_items)
        documents = await service.bulk_create(conn, resource, principal, body.data)
        return json_response(page_body(documents))

    router.add_api_route(
        resource.bulk_path,
        bulk_create,
        methods=["POST"],
        summary=f"Create many {resource.label} documents, all or nothing",
        responses={
            200: {"model": PageOut[data_model]},
            **problem_responses(400, 401, 403, 409, 413, 415),
        },
    )

    async def other_methods(request: Request) -> Response:
        raise MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}; use POST.",
            headers={"Allow": "POST"},
        )

    router.add_api_route(
        resource.bulk_path,
        other_methods,
        methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    return router


async def list_response(
    request: Request,
    resource: Resource,
    principal: Principal,
    scope: dict[str, str] | None = None,
) -> Response:
    """One page, or the whole list streamed when the client asks for everything.

    ``scope`` adds equality clauses a route implies (a campaign's door records).
    """
    settings = request.app.state.settings
    listing = parse_list_request(
        request.query_params, resource.filterable, settings, principal.customer_id, scope
    )
    pool = request.app.state.list_pool
    if listing.stream:
        return StreamingResponse(
            service.stream_list(pool, resource, listing), media_type="application/json"
        )
    async with pool.acquire() as conn:
        return json_response(await service.list_page(conn, resource, listing))


def _existing_response(resource: Resource, out: Any) -> dict[int | str, dict[str, Any]]:
    keys = "id" + (f" or {', '.join(resource.natural_key)}" if resource.natural_key else "")
    return {
        200: {
            "model": out,
            "description": f"The same document (by {keys}) already existed; it is returned",
        }
    }


def _patch_body(resource: Resource) -> dict[str, Any] | None:
    return None if resource.patch_example is None else {"data": resource.patch_example}


def _examples(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"seed": {"summary": "From the Polis API documents", "value": value}}


LIST_DESCRIPTION = """\
Query parameters (SPEC §5), every one optional:

- `filter`: an expression, e.g. `/data/status eq "complete" and /data/name like "Door*"`
  (operators eq, neq, gt, gte, lt, lte, like, in, nin, between; and, or, not, parentheses).
  In `like`, `*` is any run of characters and `?` one character; `%` and `_` match only
  themselves, so `like "My%"` looks for a literal `My%`.
- `filter[/data/field]=value`: equality on one attribute; repeatable, ANDed.
- `limit` (default 100; `9007199254740991` means all, streamed) and `skip` (default 0).
- `sort`: `["data/name","ASC"]` or repeated `sort=/data/name&sort=DESC`; ties by id.
- `count=true`: adds `meta.total`.
"""
