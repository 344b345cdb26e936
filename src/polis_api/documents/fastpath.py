"""GET {prefix}/{id}, GET {prefix} and POST {prefix} for every document resource,
answered before the framework.

Reading one document, reading a page and recording a knock are what phones do most.
The routed handlers (documents/router.py) cost more in FastAPI's routing (a pass over
a hundred routes) and dependency solving than in the database, so this layer answers
those requests itself, with the same shared steps as the routes:

- ``auth.admit`` (token, permission, tenant);
- for a read, ``service.get_document`` and ``current_or_not_modified`` (ETag, 304);
- for a page, ``router.list_response`` (every list parameter, representation and
  stream);
- for a create, the resource's create model, then ``service.create_document`` in one
  transaction, committed before the answer is sent.

Anything else goes to the routed app, which documents the routes in OpenAPI and
answers the edge cases: a malformed id, a body that is not valid JSON or that the
model refuses (the routed create names each field), an ``Idempotency-Key`` (its
middleware stores the answer), another method or path. Errors raised here are
answered by the app's own exception handlers, so they are the same problem+json.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from polis_api.auth import admit, authorization_header
from polis_api.documents import service
from polis_api.documents.resource import Resource
from polis_api.documents.responses import current_or_not_modified, document_response
from polis_api.documents.router import list_response
from polis_api.edge.context import note_route
from polis_api.idempotency import HEADER as IDEMPOTENCY_KEY
from polis_api.middleware import read_whole_body, replaying
from polis_api.problems import TrackedSend


class DocumentFastPath:
    def __init__(self, app: ASGIApp, resources: Iterable[Resource]) -> None:
        self.app = app
        resources = tuple(resources)
        self.readable = {
            resource.prefix + "/": resource
            for resource in resources
            if "retrieve" in resource.routes
        }
        self.listable = {
            resource.prefix: resource for resource in resources if "list" in resource.routes
        }
        self.creatable = {
            resource.prefix: resource for resource in resources if "create" in resource.routes
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method = scope["method"]
            if method == "GET":
                listed = self.listable.get(scope["path"])
                if listed is not None:
                    await self._list(scope, receive, send, listed)
                    return
                target = self._read_target(scope["path"])
                if target is not None:
                    await self._read(scope, receive, send, *target)
                    return
            elif method == "POST":
                resource = self.creatable.get(scope["path"])
                if resource is not None and not _has_header(scope, IDEMPOTENCY_KEY):
                    await self._create(scope, receive, send, resource)
                    return
        await self.app(scope, receive, send)

    def _read_target(self, path: str) -> tuple[Resource, uuid.UUID] | None:
        cut = path.rfind("/") + 1
        resource = self.readable.get(path[:cut])
        if resource is None or len(path) - cut != 36:  # only the canonical 8-4-4-4-12 form
            return None
        try:
            return resource, uuid.UUID(path[cut:])
        except ValueError:
            return None

    async def _read(
        self, scope: Scope, receive: Receive, send: Send, resource: Resource, doc_id: uuid.UUID
    ) -> None:
        state = scope["app"].state
        note_route(resource.prefix + "/{id}")  # the routed twin's template, for the metrics
        if_none_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        try:
            # the same single header the rate limiter counted (400 when there are several)
            authorization = authorization_header(scope["headers"])
            principal = await admit(state, authorization, resource.permission("read"))
            rendered = await service.get_document(state.pool, resource, principal, doc_id)
            response = current_or_not_modified(rendered, if_none_match)
        except Exception as exc:
            response = await _handled(scope, exc)
        await response(scope, receive, send)

    async def _list(self, scope: Scope, receive: Receive, send: Send, resource: Resource) -> None:
        note_route(resource.prefix)
        tracked = TrackedSend(send)
        try:
            authorization = authorization_header(scope["headers"])
            principal = await admit(scope["app"].state, authorization, resource.permission("read"))
            response: Response = await list_response(Request(scope, receive), resource, principal)
            # A streamed list refuses (429, a CSV too wide) only when it is sent.
            await response(scope, receive, tracked)
        except Exception as exc:
            if tracked.started:
                raise
            await (await _handled(scope, exc))(scope, receive, send)

    async def _create(self, scope: Scope, receive: Receive, send: Send, resource: Resource) -> None:
        # BodyGuard, outside, has read the whole body within its bound and replays it.
        body = await read_whole_body(receive)
        item = _valid_body(resource.create_model, body)
        if item is None:
            await self.app(scope, replaying(body, receive), send)
            return
        state = scope["app"].state
        note_route(resource.prefix)
        try:
            authorization = authorization_header(scope["headers"])
            principal = await admit(state, authorization, resource.permission("insert"))
            async with state.pool.acquire() as conn, conn.transaction():
                rendered, created = await service.create_document(conn, resource, principal, item)
            response = document_response(rendered, 201 if created else 200)
        except Exception as exc:
            response = await _handled(scope, exc)
        await response(scope, receive, send)


def _valid_body(model: type[BaseModel], body: bytes) -> Any | None:
    """The body as the routed create would take it (FastAPI's ``json.loads``, then the
    model), or None when the routed create must answer it."""
    try:
        return model.model_validate(json.loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError too
        return None


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The answer the app's exception handlers give ``exc`` (problem+json), as the
    routed handlers' failures get; re-raised when none handles it."""
    handlers = scope["app"].exception_handlers
    for kind in type(exc).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            response: Response = await handler(Request(scope), exc)
            return response
    raise exc
