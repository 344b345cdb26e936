"""What is known about the request in flight, for log lines and metrics.

A context variable, so every log line written while a request runs (by any module,
in any task it starts) can name the request; a mutable record, so that code deep
inside (the token verifier, the router) can add what only it learns (the tenant,
the route template) for the edge to report when the response is done.
"""

from __future__ import annotations

import os
import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass

# Unreserved URI characters only (RFC 3986 §2.3): the id is echoed in a header and
# used as a problem's ``instance`` (a URI reference), so it must need no escaping.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._~-]+")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route: str | None = None
    # Noted on every verified token, read only when a line is logged: kept as given.
    tenant_id: uuid.UUID | None = None

    @property
    def tenant(self) -> str | None:
        return None if self.tenant_id is None else str(self.tenant_id)


_current: ContextVar[RequestContext | None] = ContextVar("polis_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def begin(request_id: str) -> Token[RequestContext | None]:
    """Starts a request's context in the running task (the edge middleware's)."""
    return _current.set(RequestContext(request_id))


def end(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def note_tenant(customer_id: uuid.UUID) -> None:
    context = _current.get()
    if context is not None:
        context.tenant_id = customer_id


def note_route(template: str) -> None:
    context = _current.get()
    if context is not None:
        context.route = template


def new_request_id() -> str:
    # 32 random hex digits, as uuid4().hex spelt them, without building a UUID on
    # every request (a microsecond of each GET by id).
    return os.urandom(16).hex()


def request_id_from(header: bytes | None, max_length: int) -> str:
    """The client's X-Request-Id when it is sane (short, URI-safe), else a new one.

    An unusable id is replaced rather than refused: the header is for tracing, and a
    request should never fail because of it.
    """
    if header is not None and 0 < len(header) <= max_length:
        text = header.decode("latin-1")
        if _SANE_REQUEST_ID.fullmatch(text):
            return text
    return new_request_id()
