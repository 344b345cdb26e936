"""create / get / list / patch / delete for any resource, with precondition checks.

Services run inside the transaction their caller opened and never commit.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import asyncpg
from pydantic import ValidationError

from polis_api import jsoncodec
from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents.envelope import CreateBody, StoredDocument, utc_now_ms
from polis_api.documents.etag import parse_etag_header
from polis_api.documents.feed import feed_changes
from polis_api.documents.listing import ListRequest
from polis_api.documents.patch import PatchLimits, apply_patch, parse_operations
from polis_api.documents.repository import Rendered
from polis_api.documents.representations import JSON, Representation
from polis_api.documents.resource import COMPANION_WRITTEN, Companion, Resource, WriteContext
from polis_api.documents.validation import dump_data, validate_data
from polis_api.errors import (
    ApiError,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)

STREAM_RETRY_AFTER_SECONDS = 5


class TooManyStreams(ApiError):
    status = 429
    code = "TOO_MANY_STREAMS"
    title = "Too many streamed lists"


def not_found(resource: Resource, doc_id: uuid.UUID) -> NotFound:
    return NotFound(f"No {resource.label} with id {doc_id}.")


async def get_document(
    conn: asyncpg.Connection | asyncpg.Pool,
    resource: Resource,
    principal: Principal,
    doc_id: uuid.UUID,
) -> Rendered:
    visible = resource.visible_to(principal)
    if visible is None:
        rendered = await repo.fetch_rendered(conn, resource.sql, resource.owner(principal), doc_id)
    else:
        rendered = await repo.fetch_rendered_visible(
            conn, resource.sql, resource.owner(principal), doc_id, visible
        )
    if rendered is None:
        raise not_found(resource, doc_id)
    return rendered


async def require_visible(
    conn: asyncpg.Connection | asyncpg.Pool,
    resource: Resource,
    principal: Principal,
    doc_id: uuid.UUID,
) -> None:
    """404 when a restricted caller may not see this document (docs/visibility.md);
    free for every other caller."""
    if resource.visible_to(principal) is not None:
        await get_document(conn, resource, principal, doc_id)


def check_envelope(body: CreateBody[Any], principal: Principal) -> None:
    """The envelope fields a client may not choose."""
    # Any 'meta' key is refused, null included: the server owns every field of it
    if "meta" in body.model_fields_set:
        raise ValidationFailed(
            "/meta is written by the server only; leave it out of the body.",
            errors=[FieldError(path="/meta", message="is written by the server only")],
        )
    if body.customerId is not None and body.customerId != principal.customer_id:
        raise Forbidden("The body names another tenant's customerId.")


async def create_document(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    body: CreateBody[Any],
) -> tuple[Rendered, bool]:
    """The stored document and whether it is new (False: its natural key existed)."""
    check_envelope(body, principal)
    ctx = WriteContext(conn, principal, utc_now_ms())
    data = resource.hooks.accept_params(dump_data(body.data), body.params or {})
    return await create_from_data(
        ctx, resource, data, doc_id=body.id, security_group_id=body.securityGroupId
    )


async def create_from_data(
    ctx: WriteContext,
    resource: Resource,
    data: dict[str, Any],
    *,
    doc_id: uuid.UUID | None = None,
    security_group_id: uuid.UUID | None = None,
) -> tuple[Rendered, bool]:
    """Create a document from already validated ``data`` (hooks still run)."""
    data = await resource.hooks.prepare(ctx, data, None)
    doc = StoredDocument(
        id=doc_id or uuid.uuid4(),
        customer_id=ctx.principal.customer_id,
        security_group_id=security_group_id or ctx.principal.security_group_id,
        data=data,
        created=ctx.now,
        modified=ctx.now,
        created_by=ctx.principal.user_id,
        modified_by=ctx.principal.user_id,
    )
    return await insert_document(ctx, resource, doc)


async def bulk_create(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    items: list[CreateBody[Any]],
) -> list[Rendered]:
    """Create every item or none: a failing item fails the call, naming its index.

    Items are written in natural-key order, so two bulk calls naming the same new
    keys in different orders lock them in the same order and cannot deadlock; an
    item repeating an earlier item's key gets that item's document back. The
    answer keeps the input order.
    """
    rendered: list[Rendered | None] = [None] * len(items)
    for index in sorted(range(len(items)), key=lambda i: _key_order(resource, items[i])):
        try:
            rendered[index], _ = await create_document(conn, resource, principal, items[index])
        except ApiError as exc:
            raise _item_failed(index, exc) from exc
    return [document for document in rendered if document is not None]


def creation_order(resource: Resource, model: type[CreateBody[Any]], raw: Any) -> tuple[str, ...]:
    """Where an unparsed bulk item sorts among others: by the natural key it would hold,
    else by the fields its hooks lock (read from the raw item: parsed once, when written)."""
    if not resource.natural_keys:
        return _lock_order(resource, raw)
    try:
        item = model.model_validate(raw)
    except ValidationError:
        return ()  # fails again, with its index, when it is written
    return _key_order(resource, item)


def _key_order(resource: Resource, item: CreateBody[Any]) -> tuple[str, ...]:
    try:
        data = resource.hooks.accept_params(dump_data(item.data), item.params or {})
    except ApiError:
        return ()  # fails again, with its index, when it is created
    for key in resource.natural_keys:
        value = key.normalise(data)
        if value is not None:
            return (key.label, *value)
    return ()


def _lock_order(resource: Resource, raw: Any) -> tuple[str, ...]:
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict):
        data = raw if isinstance(raw, dict) else {}  # a flat item, or one that fails later
    return tuple(str(data.get(field, "")) for field in resource.lock_order)


def _item_failed(index: int, exc: ApiError) -> ApiError:
    errors = [
        FieldError(path=f"/data/{index}{e.path if e.path != '/' else ''}", message=e.message)
        for e in exc.errors
    ] or [FieldError(path=f"/data/{index}", message=exc.detail)]
    failure = type(exc)(f"Item {index} failed, so nothing was written: {exc.detail}", errors=errors)
    failure.extra = exc.extra
    return failure


async def insert_document(
    ctx: WriteContext, resource: Resource, doc: StoredDocument
) -> tuple[Rendered, bool]:
    """Insert ``doc``, or return the live document that already has its natural key.

    ON CONFLICT waits for a concurrent insert of the same key to commit, so of
    several racing creates exactly one inserts and the others return its document.
    """
    etag = doc.etag(resource.name)
    companion = await resource.hooks.written_with(ctx, doc)
    if companion is None:
        body = await repo.insert(ctx.conn, resource.sql, doc, etag)
    else:
        body = await _insert_with(ctx, resource, doc, etag, companion)
    if body is not None:
        await resource.hooks.after_write(ctx, doc)
        return Rendered(body, etag), True
    existing = await existing_by_natural_key(ctx.conn, resource, ctx.principal, doc.data)
    if existing is None:
        existing = await same_document_retried(ctx, resource, doc)
    return existing, False


async def _insert_with(
    ctx: WriteContext, resource: Resource, doc: StoredDocument, etag: str, companion: Companion
) -> str | None:
    """Insert ``doc`` and write its companion revision, one statement for both; the row
    it revises is locked only by that statement, so not for the Python before it."""
    other = companion.resource
    revised = companion.revised
    body, written = await repo.insert_with_revision(
        ctx.conn,
        resource.sql,
        doc,
        etag,
        other.sql,
        revised,
        revised.etag(other.name),
        companion.expected_etag,
    )
    if body is not None:
        ctx.memo[COMPANION_WRITTEN] = written
        if written:
            await other.hooks.after_write(ctx, revised)
    return body


async def same_document_retried(
    ctx: WriteContext, resource: Resource, doc: StoredDocument
) -> Rendered:
    """A create naming an id that exists: a retry of the same create gets the document.

    Phones choose ids so a retry cannot duplicate; the same id with different data
    is a different document, and that is a 409. Fields the server derives (such as
    a campaign's ``ended``) are left out of the comparison.
    """
    stored = await repo.fetch_data(ctx.conn, resource.sql, ctx.principal.customer_id, doc.id)
    derived = resource.hooks.server_fields
    if stored is not None and _without(stored, derived) == _without(doc.data, derived):
        rendered = await repo.fetch_rendered(
            ctx.conn, resource.sql, ctx.principal.customer_id, doc.id
        )
        if rendered is not None:
            return rendered
    raise Conflict(f"A different {resource.label} with id {doc.id} already exists.")


def _without(data: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in fields}


async def existing_by_natural_key(
    conn: asyncpg.Connection, resource: Resource, principal: Principal, data: dict[str, Any]
) -> Rendered | None:
    """The live document that holds one of ``data``'s natural keys, if any."""
    for key in resource.natural_keys:
        if key.normalise(data) is None:
            continue
        found = await repo.fetch_by_key(conn, resource.sql, key, principal.customer_id, data)
        if found is not None:
            return found
    return None


def required_etags(if_match: str | None) -> list[str]:
    """The etags a PATCH/DELETE may proceed on; 428 when the client sent none."""
    tags = parse_etag_header(if_match)
    if tags is None:
        raise PreconditionRequired()
    return tags


async def _current_for_write(
    ctx: WriteContext, resource: Resource, doc_id: uuid.UUID, if_match: str | None
) -> tuple[StoredDocument, str]:
    tags = required_etags(if_match)
    found = await repo.fetch_for_write(ctx.conn, resource.sql, ctx.principal.customer_id, doc_id)
    if found is None:
        raise not_found(resource, doc_id)
    current, etag = found
    if "*" not in tags and etag not in tags:
        raise PreconditionFailed(etag)
    return current, etag


async def patch_document(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    doc_id: uuid.UUID,
    if_match: str | None,
    operations: list[dict[str, Any]],
    limits: PatchLimits = PatchLimits(),
) -> Rendered:
    """Apply a JSON Patch under the If-Match precondition.

    A patch that leaves the data as it was (no operations, or operations that undo
    each other or only test) writes nothing: the answer is the current document with
    its etag, as a GET would give it, and no new revision or ``modified`` appears.
    """
    ctx = WriteContext(conn, principal, utc_now_ms())
    current, etag = await _current_for_write(ctx, resource, doc_id, if_match)
    operations = parse_operations(operations, limits)
    if not operations:
        return await get_document(conn, resource, principal, doc_id)
    patched = apply_patch(current.data, operations, limits)
    data = validate_data(resource.data_model, patched)
    written = _checked_size(data, limits)
    if written == jsoncodec.canonical_bytes(current.data):
        return await get_document(conn, resource, principal, doc_id)
    ctx = dataclasses.replace(ctx, revising=current)
    data = await resource.hooks.prepare(ctx, data, current.data)
    revised = current.revised(data=data, by=principal.user_id, at=ctx.now)
    return await write_revision(ctx, resource, revised, etag)


def _checked_size(data: dict[str, Any], limits: PatchLimits) -> bytes:
    """``data`` as canonical JSON; 413 when it is larger than a body may be."""
    written = jsoncodec.canonical_bytes(data)
    if len(written) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The patched document would be {len(written)} bytes of data; at most "
            f"{limits.max_bytes} are allowed (POLIS_MAX_BODY_BYTES). Nothing was written."
        )
    return written


async def write_revision(
    ctx: WriteContext, resource: Resource, revised: StoredDocument, expected_etag: str
) -> Rendered:
    new_etag = revised.etag(resource.name)
    try:
        body = await repo.update_if_etag(ctx.conn, resource.sql, revised, new_etag, expected_etag)
    except asyncpg.UniqueViolationError as exc:
        keys = " or ".join(key.label for key in resource.natural_keys)
        raise Conflict(f"Another {resource.label} already has this {keys}.") from exc
    if body is None:
        # Only reachable if the row changed between our locked read and the write.
        raise PreconditionFailed(expected_etag)
    await resource.hooks.after_write(ctx, revised)
    return Rendered(body, new_etag)


async def delete_document(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    doc_id: uuid.UUID,
    if_match: str | None,
) -> None:
    ctx = WriteContext(conn, principal, utc_now_ms())
    current, etag = await _current_for_write(ctx, resource, doc_id, if_match)
    await write_revision(ctx, resource, current.deleted(by=principal.user_id, at=ctx.now), etag)


@dataclasses.dataclass(frozen=True, slots=True)
class Listed:
    """A rendered list page, in the representation it was written in."""

    body: str
    representation: Representation
    meta: str  # the meta object ("{}" when there is none)
    rows: int

    @classmethod
    def of(cls, shape: Representation, rows: list[str], meta: str) -> Listed:
        # One string built once: a page is ~50 kB, and each `+` would copy it again.
        body = f"{shape.opening}{shape.separator.join(rows)}{shape.closing(meta)}"
        return cls(body, shape, meta, len(rows))

    def with_meta(self, meta: str) -> str:
        """This page's body with another meta object (a route adding keys of its own)."""
        closing = self.representation.closing(self.meta)
        return self.body[: len(self.body) - len(closing)] + self.representation.closing(meta)


async def list_page(conn: asyncpg.Connection, resource: Resource, request: ListRequest) -> Listed:
    sql = resource.sql
    if request.feed:
        if request.representation.resolve is None:
            bodies, meta = await feed_changes(conn, sql, request.query, request.since)
            return Listed.of(request.representation, bodies, meta)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _feed_file(conn, resource, request)
    if request.representation.resolve is None and not request.count:
        return await _page(conn, resource, request)
    # One snapshot for the page, its total and the columns, so they agree under
    # concurrent writes.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await _page(conn, resource, request)


async def _page(conn: asyncpg.Connection, resource: Resource, request: ListRequest) -> Listed:
    sql = resource.sql
    shape = await resolved(conn, resource, request)
    # meta.next only where a client reads JSON pages (not a map's features, not CSV).
    found, after = await repo.fetch_page_and_next(
        conn, sql, request.query, shape.item(sql), keyed=shape is JSON
    )
    total = await repo.count(conn, sql, request.query) if request.count else None
    return Listed.of(shape, shape.finished(found), _meta_text(total, after))


def _meta_text(total: int | None, after: str | None) -> str:
    meta: dict[str, Any] = {}
    if total is not None:
        meta["total"] = total
    if after is not None:
        meta["next"] = after
    return jsoncodec.dumps(meta)


async def _feed_file(conn: asyncpg.Connection, resource: Resource, request: ListRequest) -> Listed:
    """A change feed page in a representation with no room for meta (CSV)."""
    sql = resource.sql
    shape = await resolved(conn, resource, request)
    view = repo.FeedView(sql.source, shape.item(sql))
    bodies, meta = await feed_changes(conn, view, request.query, request.since)
    return Listed.of(shape, shape.finished(bodies), meta)


async def resolved(
    conn: asyncpg.Connection, resource: Resource, request: ListRequest
) -> Representation:
    """The representation the rows are written in (run in the list's snapshot)."""
    shape = request.representation
    return shape if shape.resolve is None else await shape.resolve(conn, resource, request)


async def linked_list_page(
    conn: asyncpg.Connection,
    resource: Resource,
    link: repo.Link,
    owner_id: uuid.UUID,
    request: ListRequest,
) -> Listed:
    """A page of the documents of ``resource`` that ``owner_id`` is linked to; with
    ``since``, their change feed (``repo.linked_feed_view``)."""
    if request.feed:
        return await view_feed_page(
            conn,
            lambda at: repo.linked_feed_view(resource.sql, link, at),
            request,
            str(owner_id),
            resource=resource,
        )
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        shape = await resolved(conn, resource, request)
        # JSON shows each document with its link's id; another representation its own.
        item = None if shape is JSON else shape.item(resource.sql)
        rows, total = await repo.fetch_linked_page(
            conn, resource.sql, link, owner_id, request.query, count=request.count, item=item
        )
    return Listed.of(shape, shape.finished(rows), _meta_text(total, None))


async def view_feed_page(
    conn: asyncpg.Connection,
    view_at: Callable[[int], repo.FeedSql],
    request: ListRequest,
    *values: Any,
    resource: Resource | None = None,
) -> Listed:
    """A feed page over a derived row set: ``view_at(n)`` builds it with ``values``
    bound from parameter ``$n`` on, after the list request's own parameters.

    Given the ``resource`` it lists, the page may be in another representation than
    JSON (CSV); the columns of its open parts then come from the resource's own rows.
    """
    query = request.query
    view = view_at(len(query.params) + 1)
    bound = dataclasses.replace(query, params=[*query.params, *values])
    if resource is None or request.representation.resolve is None:
        bodies, meta = await feed_changes(conn, view, bound, request.since)
        return Listed.of(request.representation, bodies, meta)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        shape = await resolved(conn, resource, request)
        rendered = repo.FeedView(view.source, shape.item(resource.sql))
        bodies, meta = await feed_changes(conn, rendered, bound, request.since)
    return Listed.of(shape, shape.finished(bodies), meta)


async def _list_meta(conn: asyncpg.Connection, sql: repo.DocumentSql, request: ListRequest) -> str:
    if not request.count:
        return "{}"
    return '{"total":' + str(await repo.count(conn, sql, request.query)) + "}"


async def open_stream(conn: asyncpg.Connection, principal: Principal, per_identity: int) -> None:
    """Counts the stream against its caller's limit; run inside the stream's transaction."""
    holder = f"{principal.customer_id}/{principal.user_id}"
    if not await repo.try_stream_slot(conn, holder, per_identity):
        raise TooManyStreams(
            f"This user already has {per_identity} streamed lists open; let one finish, "
            "or page with a smaller limit.",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
        )


@dataclasses.dataclass(frozen=True, slots=True)
class OpenedStream:
    representation: Representation
    meta: str
    chunks: AsyncGenerator[bytes]


async def open_stream_list(
    conn: asyncpg.Connection, resource: Resource, request: ListRequest
) -> OpenedStream:
    """The representation and meta of a streamed list, then its chunks (run in the
    caller's repeatable read transaction, so all three see one snapshot)."""
    shape = await resolved(conn, resource, request)
    meta = await _list_meta(conn, resource.sql, request)
    return OpenedStream(shape, meta, stream_list(conn, resource, request, shape, meta))


async def stream_list(
    conn: asyncpg.Connection,
    resource: Resource,
    request: ListRequest,
    shape: Representation,
    meta: str,
    chunk_bytes: int = 65536,
) -> AsyncGenerator[bytes]:
    """The whole list as chunks of at most ~64 KiB, read through a cursor.

    The first chunk comes only after the first rows were fetched, so a failing
    database fails it before any status is sent.
    """
    sql = resource.sql
    buffer = [shape.opening]
    size = 0
    separator = ""
    finish = shape.finish
    async for rendered in repo.stream_rows(conn, sql, request.query, shape.item(sql)):
        row = rendered if finish is None else finish(rendered)
        buffer.append(separator + row)
        separator = shape.separator
        size += len(row)
        if size >= chunk_bytes:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    buffer.append(shape.closing(meta))
    yield "".join(buffer).encode()
