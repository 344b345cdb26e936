"""GET {prefix}/{id} and GET {prefix} for every document resource, answered before
the framework.

Reading one document and reading a page are what phones do most. The routed
handlers (documents/router.py) cost more Python than the database work of a page in
FastAPI's routing (a pass over a hundred routes), dependency solving and wrappers, so
this layer answers a GET on either path itself, with the same shared steps —
``auth.admit`` (token, permission, tenant), then ``service.get_document`` and
``current_or_not_modified`` (ETag, 304), or ``router.list_response`` (every list
parameter, representation and stream) — and hands anything else (a malformed id,
another method, an unknown path) to the routed app, which documents the routes in
OpenAPI and answers the edge cases. Errors are the same problem+json.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polis_api.auth import admit, authorization_header
from polis_api.documents import service
from polis_api.documents.resource import Resource
from polis_api.documents.responses import current_or_not_modified
from polis_api.documents.router import list_response
from polis_api.edge.context import note_route
from polis_api.errors import ApiError
from polis_api.problems import problem_response


class DocumentReadFastPath:
    def __init__(self, app: ASGIApp, resources: Iterable[Resource]) -> None:
        self.app = app
        resources = tuple(resources)
        self.by_prefix = {
            resource.prefix + "/": resource
            for resource in resources
            if "retrieve" in resource.routes
        }
        self.lists = {
            resource.prefix: resource for resource in resources if "list" in resource.routes
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            listed = self.lists.get(scope["path"])
            if listed is not None:
                await self._answer_list(scope, receive, send, listed)
                return
            target = self._target(scope["path"])
            if target is not None:
                await self._answer(scope, receive, send, *target)
                return
        await self.app(scope, receive, send)

    def _target(self, path: str) -> tuple[Resource, uuid.UUID] | None:
        cut = path.rfind("/") + 1
        resource = self.by_prefix.get(path[:cut])
        if resource is None or len(path) - cut != 36:  # only the canonical 8-4-4-4-12 form
            return None
        try:
            return resource, uuid.UUID(path[cut:])
        except ValueError:
            return None

    async def _answer(
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
        except ApiError as exc:
            response = problem_response(exc)
        await response(scope, receive, send)

    async def _answer_list(
        self, scope: Scope, receive: Receive, send: Send, resource: Resource
    ) -> None:
        note_route(resource.prefix)
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            authorization = authorization_header(scope["headers"])
            principal = await admit(scope["app"].state, authorization, resource.permission("read"))
            response: Response = await list_response(Request(scope, receive), resource, principal)
            # A streamed list refuses (429, a CSV too wide) only when it is sent.
            await response(scope, receive, send_tracked)
        except ApiError as exc:
            if started:
                raise
            await problem_response(exc)(scope, receive, send)
