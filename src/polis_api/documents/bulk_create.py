"""Per-item bulk create (HTTP 207), with every item written by one statement.

Each item still stands alone: it is parsed, checked and prepared on its own and
answers for itself (documents/bulk_results). Where a resource's hooks allow it
(``creates_together``: nothing to do after each write), the items that pass are
inserted together, in natural-key order, by one ``INSERT … ON CONFLICT DO NOTHING``
instead of one savepoint and statement each. An item the statement skipped repeats a
key or an id that is taken, by an earlier item or a stored document, and answers as
its single create would: the document holding the key (200), or 409.
Other resources keep one savepoint per item.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from polis_api.auth import Principal
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.bulk_results import (
    ItemOutcome,
    parse_item,
    render,
    write_items,
)
from polis_api.documents.envelope import CreateBody, StoredDocument, utc_now_ms
from polis_api.documents.keys import NaturalKey
from polis_api.documents.repository import Rendered
from polis_api.documents.resource import Resource, WriteContext
from polis_api.documents.validation import dump_data
from polis_api.errors import ApiError


async def create_items(
    conn: asyncpg.Connection, resource: Resource, principal: Principal, items: Sequence[Any]
) -> str:
    """The 207 body of a bulk create of ``items``, in input order."""
    model: type[CreateBody[Any]] = resource.create_model  # type: ignore[assignment]
    if not resource.hooks.creates_together:
        return await _create_one_by_one(conn, resource, principal, model, items)
    ctx = WriteContext(conn, principal, utc_now_ms())
    return await _create_together(ctx, resource, model, items)


async def _create_together(
    ctx: WriteContext, resource: Resource, model: type[CreateBody[Any]], items: Sequence[Any]
) -> str:
    outcomes: dict[int, ItemOutcome] = {}
    accepted = _accepted(resource, ctx.principal, model, items, outcomes)
    prepared = await resource.hooks.prepare_many(ctx, [data for _, data, _ in accepted])
    keys = resource.natural_keys
    candidates = []
    for (index, _, body), data in zip(accepted, prepared, strict=True):
        if isinstance(data, ApiError):
            outcomes[index] = ItemOutcome.failed(data)
        else:
            candidates.append(_candidate(ctx, resource.name, keys, index, body, data))
    candidates.sort(key=lambda candidate: candidate.order)  # stable: input order on ties
    outcomes.update(await _insert(ctx, resource, candidates))
    return render([outcomes[index] for index in range(len(items))])


async def _create_one_by_one(
    conn: asyncpg.Connection,
    resource: Resource,
    principal: Principal,
    model: type[CreateBody[Any]],
    items: Sequence[Any],
) -> str:
    """Each item in its own savepoint, by the resource's ordinary create."""

    async def create_one(item: CreateBody[Any]) -> tuple[Rendered, bool]:
        return await service.create_document(conn, resource, principal, item)

    def order(raw: Any) -> tuple[str, ...]:
        return service.creation_order(resource, model, raw)

    ordered = resource.natural_keys or resource.lock_order
    return await write_items(conn, model, items, create_one, order=order if ordered else None)


def _accepted(
    resource: Resource,
    principal: Principal,
    model: type[CreateBody[Any]],
    items: Sequence[Any],
    outcomes: dict[int, ItemOutcome],
) -> list[tuple[int, dict[str, Any], CreateBody[Any]]]:
    """The items that parse and pass the envelope checks, with their data; the others
    get their failure in ``outcomes``."""
    accepted = []
    for index, raw in enumerate(items):
        try:
            body = parse_item(model, raw)
            service.check_envelope(body, principal)
            data = resource.hooks.accept_params(dump_data(body.data), body.params or {})
        except ApiError as exc:
            outcomes[index] = ItemOutcome.failed(exc)
            continue
        accepted.append((index, data, body))
    return accepted


@dataclass(frozen=True, slots=True)
class _Candidate:
    index: int
    doc: StoredDocument
    etag: str
    order: tuple[str, ...]  # the natural key it holds: where it is written in the batch


def _candidate(
    ctx: WriteContext,
    resource: str,
    keys: tuple[NaturalKey, ...],
    index: int,
    body: CreateBody[Any],
    data: dict[str, Any],
) -> _Candidate:
    by = ctx.principal.user_id
    doc = StoredDocument(
        id=body.id or uuid.uuid4(),
        customer_id=ctx.principal.customer_id,
        security_group_id=body.securityGroupId or ctx.principal.security_group_id,
        data=data,
        created=ctx.now,
        modified=ctx.now,
        created_by=by,
        modified_by=by,
    )
    return _Candidate(index, doc, doc.etag(resource), _key_order(keys, data))


def _key_order(keys: tuple[NaturalKey, ...], data: dict[str, Any]) -> tuple[str, ...]:
    # Two calls naming the same new keys in other orders then take the key locks in
    # the same order, and the second waits for the first instead of deadlocking.
    for key in keys:
        value = key.normalise(data)
        if value is not None:
            return (key.label, *value)
    return ()


async def _insert(
    ctx: WriteContext, resource: Resource, candidates: list[_Candidate]
) -> dict[int, ItemOutcome]:
    docs = [candidate.doc for candidate in candidates]
    inserted = await repo.insert_many_rendered(
        ctx.conn, resource.sql, docs, [candidate.etag for candidate in candidates]
    )
    outcomes = {}
    for candidate in candidates:
        body = inserted.pop(candidate.doc.id, None)  # pop: a repeated id is inserted once
        if body is not None:
            outcomes[candidate.index] = ItemOutcome(201, body)
        else:
            outcomes[candidate.index] = await _not_inserted(ctx, resource, candidate.doc)
    return outcomes


async def _not_inserted(ctx: WriteContext, resource: Resource, doc: StoredDocument) -> ItemOutcome:
    """What the single create answers when its insert found the key or the id taken."""
    try:
        existing = await service.existing_by_natural_key(
            ctx.conn, resource, ctx.principal, doc.data
        )
        if existing is None:
            existing = await service.same_document_retried(ctx, resource, doc)
    except ApiError as exc:
        return ItemOutcome.failed(exc)
    return ItemOutcome(200, existing.body)
