"""Bulk calls whose items stand alone: one savepoint and one answer per item (HTTP 207).

A phone's outbox holds the knocks it recorded offline. Sending it in one call must
not let one bad knock lose the others, so each item is parsed and written on its
own, in a savepoint, by the resource's ordinary create, and answers for itself:
``{"index", "status", "document"}``, or ``{"index", "status", "error"}`` carrying
the problem the single POST would have answered. A failed item's savepoint is
rolled back; the items before and after it are kept.

Errors that are not the item's fault (the database going away, a deadlock) are not
caught here: they fail the whole call, which rolls back and can be retried whole.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
import orjson
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polis_api.documents.envelope import PatchOperation
from polis_api.documents.repository import Rendered
from polis_api.documents.responses import DocumentOut
from polis_api.documents.validation import field_errors, validation_failed
from polis_api.errors import ApiError

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)

# Writes one parsed item: its document, and whether it is new (False: a replay).
ItemWrite = Callable[[M], Awaitable[tuple[Rendered, bool]]]


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    status: int
    body: str  # the rendered document, or the problem object, as JSON

    @property
    def succeeded(self) -> bool:
        return self.status < 300

    @classmethod
    def failed(cls, exc: ApiError) -> ItemOutcome:
        """The problem the item's single request would have answered."""
        return cls(exc.status, orjson.dumps(exc.problem()).decode())


# How many bulk calls in progress keep the cycle collector paused, and since when
# it has not run.
_pauses = 0
_uncollected_since = 0.0
# Calls that overlap without end (a fleet of phones sending outboxes) must not keep
# cyclic garbage forever: at most this long without a collection.
MAX_PAUSE_SECONDS = 5.0


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a bulk call runs (awaits included).

    A call of thousands of items keeps hundreds of thousands of acyclic objects alive
    until its answer is built; the cycle collector would walk them, and the whole
    heap, several times per call for nothing (30-45 % of a bulk call's CPU in
    profiles). Reference counting still frees everything as usual; collection
    resumes when the last paused call ends, and runs meanwhile when overlapping calls
    have kept it off for ``MAX_PAUSE_SECONDS``.
    """
    global _pauses
    if _pauses == 0:
        _started_pause()
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()
        elif time.monotonic() - _uncollected_since > MAX_PAUSE_SECONDS:
            gc.collect()
            _started_pause()


def _started_pause() -> None:
    global _uncollected_since
    _uncollected_since = time.monotonic()


async def _paused_for_the_request() -> AsyncIterator[None]:
    with cycle_collection_paused():
        yield


# A bulk route's parameter: the collector stays paused from before the body is
# validated (thousands of models) until the route returns.
CollectionPaused = Annotated[None, Depends(_paused_for_the_request)]


# The 207 body's counters: which success status each counts (the rest are "failed").
CREATE_COUNTS = (("created", 201), ("replayed", 200))
UPDATE_COUNTS = (("updated", 200),)


async def write_items(
    conn: asyncpg.Connection,
    model: type[M],
    items: Sequence[Any],
    write: ItemWrite[M],
    *,
    order: Callable[[Any], Any] | None = None,
    counts: Sequence[tuple[str, int]] = CREATE_COUNTS,
) -> str:
    """Write every item in its own savepoint; the 207 body, in input order.

    Items are written in ``order`` (a sort key over the raw item; stable, so equal
    keys keep input order): two calls naming the same documents or keys in any
    order then take their locks in the same order, and the second waits for the
    first instead of deadlocking.
    """
    sequence = (
        sorted(range(len(items)), key=lambda i: order(items[i])) if order else range(len(items))
    )
    outcomes: dict[int, ItemOutcome] = {}
    await conn.execute(_ITEM_SAVEPOINT)
    for index in sequence:
        outcomes[index] = await _write_one(conn, model, items[index], write)
    return render([outcomes[index] for index in range(len(items))], counts)


# Each item runs inside one savepoint: a failed item is rolled back to it (which keeps
# it), a written one releases it and takes the next in the same round trip, where
# ``conn.transaction()`` costs two round trips an item. The last one is released by
# the call's commit.
_ITEM_SAVEPOINT = "SAVEPOINT bulk_item"
_NEXT_ITEM = "RELEASE SAVEPOINT bulk_item; SAVEPOINT bulk_item"
_UNDO_ITEM = "ROLLBACK TO SAVEPOINT bulk_item"


async def _write_one(
    conn: asyncpg.Connection, model: type[M], item: Any, write: ItemWrite[M]
) -> ItemOutcome:
    try:
        parsed = parse_item(model, item)
    except ApiError as exc:
        return ItemOutcome.failed(exc)  # nothing ran: the savepoint stays as it is
    try:
        rendered, created = await write(parsed)
    except ApiError as exc:
        await conn.execute(_UNDO_ITEM)
        return ItemOutcome.failed(exc)
    await conn.execute(_NEXT_ITEM)
    return ItemOutcome(201 if created else 200, rendered.body)


def parse_item(model: type[M], item: Any) -> M:
    """One item as its single POST would parse it, failing with the same 400."""
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        raise validation_failed(field_errors(exc.errors())) from exc


def render(
    outcomes: Sequence[ItemOutcome], counts: Sequence[tuple[str, int]] = CREATE_COUNTS
) -> str:
    """``{"data": [{index, status, document | error}, ...], "meta": {counts}}``."""
    items = []
    for index, outcome in enumerate(outcomes):
        member = "document" if outcome.succeeded else "error"
        items.append(f'{{"index":{index},"status":{outcome.status},"{member}":{outcome.body}}}')
    tallies = {
        name: sum(outcome.status == status for outcome in outcomes) for name, status in counts
    }
    tallies["failed"] = len(outcomes) - sum(tallies.values())
    meta = "{" + ",".join(f'"{name}":{tally}' for name, tally in tallies.items()) + "}"
    return '{"data":[' + ",".join(items) + '],"meta":' + meta + "}"


class ItemBulkBody(BaseModel):
    """``{"data": [item, ...]}``; items are parsed one by one, so one bad item fails alone."""

    data: list[Any]


class ItemResultOut(BaseModel, Generic[D]):
    """Documentation only: one item's answer."""

    index: int
    status: int
    document: DocumentOut[D] | None = None
    error: dict[str, Any] | None = None


class ItemResultsMeta(BaseModel):
    created: int | None = None
    replayed: int | None = None
    updated: int | None = Field(default=None, description="Bulk PATCH only")
    failed: int


class ItemPatch(BaseModel):
    """One item of a bulk PATCH: which document, the etag it was read at, the patch."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    etag: str = Field(min_length=1, max_length=200)
    data: list[PatchOperation]


class ItemResultsOut(BaseModel, Generic[D]):
    """Documentation only: the 207 body, in input order."""

    data: list[ItemResultOut[D]]
    meta: ItemResultsMeta
