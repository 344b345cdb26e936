"""build_routers(resource) -> the standard endpoints of a document resource (and bulk).

No ``from __future__ import annotations`` here: FastAPI must see the resource's
concrete body model in each handler's signature when the router is built.
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response

from polis_api import jsoncodec
from polis_api.auth import VERBS, Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents import bulk_create, csv_export, service
from polis_api.documents.bulk_results import (
    UPDATE_COUNTS,
    CollectionPaused,
    ItemBulkBody,
    ItemPatch,
    ItemResultsOut,
    write_items,
)
from polis_api.documents.envelope import BulkBody, PatchBody
from polis_api.documents.listing import (
    AFTER_PARAMETER,
    GEO_LIST_PARAMETERS,
    LIST_PARAMETERS,
    ListRequest,
    parse_list_request,
)
from polis_api.documents.patch import PatchLimits
from polis_api.documents.repository import Rendered
from polis_api.documents.representations import GEOJSON, JSON, Representation, negotiate
from polis_api.documents.resource import Resource
from polis_api.documents.responses import (
    CSV_CONTENT,
    DocumentOut,
    PageOut,
    check_bulk_size,
    current_or_not_modified,
    document_response,
    json_response,
    page_body,
    problem_responses,
)
from polis_api.documents.streaming import ListStream, StreamBounds
from polis_api.errors import MethodNotAllowed
from polis_api.filtering.ast import Node

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
    # Bulk routes first, so ".../bulk" is never taken for a document id by "/{id}".
    if resource.bulk_path is not None:
        routers.insert(0, _bulk_router(resource))
    if resource.item_bulk_path is not None:
        routers.insert(0, _item_bulk_router(resource))
    if resource.item_patch_path is not None:
        routers.insert(0, _item_patch_router(resource))
    return routers


def _bulk_methods(resource: Resource, path: str) -> list[str]:
    """The methods a resource serves on one of its bulk paths (POST, PATCH or both)."""
    posts = path in (resource.bulk_path, resource.item_bulk_path)
    patches = path == resource.item_patch_path
    return [method for method, served in (("POST", posts), ("PATCH", patches)) if served]


def _standard_router(resource: Resource) -> APIRouter:
    router = APIRouter(prefix=resource.prefix, tags=[resource.label])
    data_model: Any = resource.data_model
    Create: Any = resource.create_model
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
        request: Request,
        principal: Annotated[Principal, can["modify"]],
        conn: WriteConnection,
        body: Annotated[PatchBody, Body(openapi_examples=_examples(_patch_body(resource)))],
        if_match: IfMatch = None,
        etag: EtagHeader = None,
    ) -> Response:
        limits = PatchLimits.from_settings(request.app.state.settings)
        rendered = await service.patch_document(
            conn, resource, principal, id, precondition(if_match, etag), body.operations(), limits
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
        openapi_extra={"parameters": list_parameters(resource)},
        responses={
            200: {"model": PageOut[data_model], **CSV_CONTENT},
            **problem_responses(400, 401, 403, 406, 410),
        },
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

    _refuse_other_methods(router, resource.bulk_path, _bulk_methods(resource, resource.bulk_path))
    return router


def _item_bulk_router(resource: Resource) -> APIRouter:
    """Bulk create at ``resource.item_bulk_path`` where each item stands alone (207)."""
    assert resource.item_bulk_path is not None
    router = APIRouter(tags=[resource.label])
    can_insert = Depends(require(resource.permission("insert")))
    example = None if resource.create_example is None else {"data": [resource.create_example]}

    async def bulk_items(
        request: Request,
        principal: Annotated[Principal, can_insert],
        conn: WriteConnection,
        _: CollectionPaused,
        body: Annotated[ItemBulkBody, Body(openapi_examples=_examples(example))],
    ) -> Response:
        settings = request.app.state.settings
        check_bulk_size(len(body.data), resource.max_bulk_items(settings), resource.min_bulk_items)
        written = await bulk_create.create_items(conn, resource, principal, body.data)
        return json_response(written, 207)

    _add_item_route(
        router,
        resource,
        resource.item_bulk_path,
        bulk_items,
        "POST",
        summary=f"Create many {resource.label} documents, each item on its own",
        description=ITEM_BULK_DESCRIPTION,
        errors=(400, 401, 403, 409, 413, 415),
    )
    return router


def _item_patch_router(resource: Resource) -> APIRouter:
    """Bulk PATCH at ``resource.item_patch_path``: each item is a PATCH of its own (207)."""
    assert resource.item_patch_path is not None
    router = APIRouter(tags=[resource.label])
    can_modify = Depends(require(resource.permission("modify")))
    example = None
    if resource.patch_example is not None:
        item = {"id": "<document id>", "etag": "<its etag>", "data": resource.patch_example}
        example = {"data": [item]}

    async def bulk_patch(
        request: Request,
        principal: Annotated[Principal, can_modify],
        conn: WriteConnection,
        body: Annotated[ItemBulkBody, Body(openapi_examples=_examples(example))],
    ) -> Response:
        settings = request.app.state.settings
        check_bulk_size(len(body.data), resource.max_bulk_items(settings), resource.min_bulk_items)
        limits = PatchLimits.from_settings(settings)

        async def patch_one(item: ItemPatch) -> tuple[Rendered, bool]:
            operations = [op.model_dump(by_alias=True, exclude_unset=True) for op in item.data]
            rendered = await service.patch_document(
                conn, resource, principal, item.id, item.etag, operations, limits
            )
            return rendered, False

        written = await write_items(
            conn, ItemPatch, body.data, patch_one, order=_by_id, counts=UPDATE_COUNTS
        )
        return json_response(written, 207)

    _add_item_route(
        router,
        resource,
        resource.item_patch_path,
        bulk_patch,
        "PATCH",
        summary=f"Patch many {resource.label} documents, each item on its own",
        description=ITEM_PATCH_DESCRIPTION,
        errors=(400, 401, 403, 413, 415),
    )
    return router


def _add_item_route(
    router: APIRouter,
    resource: Resource,
    path: str,
    handler: Callable[..., Any],
    method: str,
    *,
    summary: str,
    description: str,
    errors: tuple[int, ...],
) -> None:
    """A route answering one result per item (HTTP 207); other methods on it are 405."""
    data_model: Any = resource.data_model
    router.add_api_route(
        path,
        handler,
        methods=[method],
        status_code=207,
        summary=summary,
        description=description.format(label=resource.label, prefix=resource.prefix),
        responses={
            207: {
                "model": ItemResultsOut[data_model],
                "description": "One answer per item",
            },
            **problem_responses(*errors),
        },
    )
    _refuse_other_methods(router, path, _bulk_methods(resource, path))


def _by_id(raw: Any) -> str:
    # Documents are locked in id order, whatever order two concurrent calls name them in.
    return str(raw.get("id", "")) if isinstance(raw, dict) else ""


def _refuse_other_methods(router: APIRouter, path: str, allowed: list[str]) -> None:
    async def other_methods(request: Request) -> Response:
        raise MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}; use {' or '.join(allowed)}.",
            headers={"Allow": ", ".join(allowed)},
        )

    others = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]
    router.add_api_route(
        path,
        other_methods,
        methods=[method for method in others if method not in allowed],
        include_in_schema=False,
    )


def list_parameters(resource: Resource) -> list[dict[str, object]]:
    """The list's query parameters for OpenAPI: bbox/near/radius when it is on the map."""
    geo = GEO_LIST_PARAMETERS if resource.geo is not None else []
    return [*LIST_PARAMETERS, AFTER_PARAMETER, *geo]


async def list_response(
    request: Request,
    resource: Resource,
    principal: Principal,
    scope: dict[str, str] | None = None,
    scope_filter: Node | None = None,
) -> Response:
    """One page, or the whole list streamed when the client asks for everything.

    ``scope`` adds equality clauses a route implies (a campaign's door records);
    ``scope_filter`` any other clause (``/id in [...]``: a campaign's statuses).
    """
    settings = request.app.state.settings
    representation = list_representation(request, resource)
    owner, visible = resource.owner(principal), resource.visible_to(principal)
    # Everything the parse depends on beside the query string.
    context = (
        resource.name,
        owner,
        visible,
        representation,
        None if scope is None else tuple(scope.items()),
        scope_filter,
    )

    def parse() -> ListRequest:
        return parse_list_request(
            request.query_params,
            resource.field_policy,
            settings,
            owner,
            scope,
            scope_filter,
            geo=resource.geo,
            representation=representation,
            visible=visible,
            keyset_paging=True,
        )

    listing = request.app.state.recent_lists.parsed(request.scope["query_string"], context, parse)
    return await answer_list(request, resource, principal, listing, representation)


def list_representation(
    request: Request, resource: Resource, *, geo: bool = True
) -> Representation:
    """What the client's Accept header picks among what this list offers: JSON, CSV,
    and GeoJSON for documents on the map (unless the route leaves it out: ``geo``);
    406 when it accepts none of them."""
    csv = csv_export.offer(request.app.state.settings.max_csv_columns)
    on_map = geo and resource.geo is not None
    offered = (JSON, GEOJSON, csv) if on_map else (JSON, csv)
    return negotiate(request.headers.get("accept"), offered)


async def answer_list(
    request: Request,
    resource: Resource,
    principal: Principal,
    listing: ListRequest,
    representation: Representation = JSON,
) -> Response:
    """Answer a parsed list request: one page, or everything streamed."""
    pool = request.app.state.list_pool
    if listing.stream:
        bounds = StreamBounds.of(request.app.state.settings)
        return ListStream(pool, resource, listing, principal, bounds)
    async with pool.acquire() as conn:
        listed = await service.list_page(conn, resource, listing)
    return listed_response(request, resource.name, listing, listed)


def listed_response(
    request: Request, name: str, listing: ListRequest, listed: service.Listed
) -> Response:
    """A list page; a file (CSV) names its next page in a Link header when it came
    back full, as its body has no room for meta."""
    shape = listed.representation
    headers = shape.headers(name, listed.meta)
    following = _next_page(request, listing, listed) if shape.attachment else None
    if following is not None:
        headers["Link"] = f'<{following}>; rel="next"'
    return Response(content=listed.body, media_type=shape.content_type, headers=headers)


def _next_page(request: Request, listing: ListRequest, listed: service.Listed) -> str | None:
    """A feed's next page is at its next token; a list's past a full page."""
    if listing.feed:
        token = jsoncodec.loads(listed.meta)["next"]
        return str(request.url.include_query_params(since=token))
    query = listing.query
    if 0 < query.limit == listed.rows:
        return str(request.url.include_query_params(skip=query.skip + query.limit))
    return None


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


ITEM_BULK_DESCRIPTION = """\
Each item of `data` is what `POST {prefix}` takes, and stands alone: it is written
(with everything its create does) in its own savepoint, so one bad item never fails
the others. An item may carry a client-chosen `id`: the same id with the same body
again is a replay (status 200, the stored document, nothing written); with another
body it is a 409 for that item.

The answer is HTTP 207, in input order: `{{"index": 0, "status": 201, "document":
{{...}}}}` for a written item, `{{"index": 3, "status": 400, "error": {{problem}}}}`
for a refused one (the problem the single POST would answer), and `meta` counts
`created`, `replayed` and `failed`. At most POLIS_MAX_BULK_ITEMS items (else 413).
An `Idempotency-Key` on the whole call works as on any POST.
"""


ITEM_PATCH_DESCRIPTION = """\
Each item is `{{"id", "etag", "data": [RFC 6902 operations]}}`: what `PATCH
{prefix}/{{id}}` takes, with the etag you read the document at in place of the
If-Match header. Items stand alone, each in its own savepoint: one failing never
fails the others.

The answer is HTTP 207, in input order: `{{"index": 0, "status": 200, "document":
{{...}}}}` for a patched item; for a refused one its `error` (the problem the single
PATCH would answer): 404 no such {label}, 412 the etag is not the current one, 409 a
failed `test`, 400 a bad patch or a result that is not a valid {label}. `meta` counts
`updated` and `failed`. Documents are locked in id order, so concurrent calls do not
deadlock.
"""


LIST_DESCRIPTION = """\
Query parameters, every one optional:

- `filter`: an expression, e.g. `/data/status eq "complete" and /data/name like "Door*"`
  (operators eq, neq, gt, gte, lt, lte, like, in, nin, between; and, or, not, parentheses).
  In `like`, `*` is any run of characters and `?` one character; `%` and `_` match only
  themselves, so `like "My%"` looks for a literal `My%`.
- `filter[/data/field]=value`: equality on one attribute; repeatable, ANDed.
- `limit` (default 100; `9007199254740991` means all, streamed) and `skip` (default 0).
- `sort`: `["data/name","ASC"]` or repeated `sort=/data/name&sort=DESC`; ties by id.
- `count=true`: adds `meta.total`.
- `since=<token>`: the change feed, the exact way to sync a local copy. Documents created,
  changed or deleted after the token (deleted ones as tombstones, `meta.isDeleted: true`),
  in change order, each once in its latest version; empty means from the beginning.
  `meta.next` is the token to send next; `meta.more` is true while calling again at once
  gives more. Paged by `limit` up to the maximum page size; `filter` applies; `skip`,
  `sort` and `count` are refused. A token older than the tombstone horizon gets 410
  `SYNC_TOKEN_EXPIRED`: sync again from an empty `since`.
"""
