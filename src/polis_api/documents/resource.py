"""What a resource declares: its name, route, data model, filters and workflow hooks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from polis_api.auth import Principal
from polis_api.config import Settings
from polis_api.documents.csv_columns import OpenPart
from polis_api.documents.envelope import CreateBody, StoredDocument
from polis_api.documents.geo import Geo
from polis_api.documents.keys import NaturalKey
from polis_api.documents.repository import DocumentSql, Embed, statements
from polis_api.documents.visibility import Visibility, VisibleTo, visible_to
from polis_api.errors import ApiError, ValidationFailed
from polis_api.filtering.to_sql import ANY_DATA_PATH, FieldPolicy


@dataclass(frozen=True, slots=True)
class WriteContext:
    """What a hook may use while a write is in progress (inside its transaction)."""

    conn: asyncpg.Connection
    principal: Principal
    now: datetime
    # What one hook looked up for the next (prepare → after_write), within one write.
    memo: dict[str, Any] = field(default_factory=dict)
    # The stored document a PATCH revises (its id and creator); None on a create.
    revising: StoredDocument | None = None


class DocumentHooks:
    """A resource's own workflow; the defaults do nothing, so most resources need none."""

    # Data fields ``prepare`` derives on the server (not what the client sent).
    server_fields: frozenset[str] = frozenset()
    # Whether a per-item bulk create may write its items in one statement: true only
    # where ``after_write`` does nothing, so no item needs a savepoint of its own.
    creates_together: bool = False

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Fill server-owned fields and check references before ``data`` is stored.

        ``previous`` is the stored data on a PATCH, None on a create.
        """
        return data

    async def prepare_many(
        self, ctx: WriteContext, items: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any] | ApiError]:
        """``prepare`` for the creates of a bulk call: each item's data, or the error it
        fails with. Override to look every item's references up in one statement."""
        prepared: list[dict[str, Any] | ApiError] = []
        for data in items:
            try:
                prepared.append(await self.prepare(ctx, data, None))
            except ApiError as exc:
                prepared.append(exc)
        return prepared

    def accept_params(self, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Merge Polis create ``params`` into ``data``; most resources take none."""
        if params:
            raise ValidationFailed(f"This resource takes no params; got {sorted(params)}.")
        return data

    async def after_write(self, ctx: WriteContext, document: StoredDocument) -> None:
        """Runs in the same transaction, after the document row is written."""

    async def written_with(self, ctx: WriteContext, document: StoredDocument) -> Companion | None:
        """Another document's revision that a create of ``document`` makes, to be written
        by the insert's own statement, only if the insert happens and the other row still
        has the etag it was read at (a knock moving its door). ``after_write`` then finds
        ``ctx.memo[COMPANION_WRITTEN]`` true, or false when the row had changed and the
        revision must be made again under its lock. None: nothing to write with it."""
        return None

    async def seed_tenant(
        self, conn: asyncpg.Connection, customer_id: uuid.UUID, now: datetime
    ) -> list[StoredDocument]:
        """Documents a new tenant starts with (statuses' default set)."""
        return []


def _max_bulk_items(settings: Settings) -> int:
    return settings.max_bulk_items


STANDARD_ROUTES = frozenset({"create", "retrieve", "patch", "delete", "list"})


@dataclass(frozen=True)
class Resource:
    """One kind of document: the generic mechanism does everything else."""

    name: str  # meta.resource and the permission suffix: "campaigns"
    prefix: str  # "/v1/campaigns"
    table: str  # "campaigns"
    data_model: type[BaseModel]
    filterable: FieldPolicy = ANY_DATA_PATH
    # Data fields unique together within a tenant (a partial unique index in the
    # migration); creating a document that repeats them returns the existing one.
    natural_key: tuple[str, ...] = ()
    # Further keys, each its own partial unique index (SQL expressions, a condition):
    # a create repeating any one of them returns the document that holds it.
    unique_keys: tuple[NaturalKey, ...] = ()
    # Which of the standard endpoints build_routers adds, and where bulk create lives.
    routes: frozenset[str] = STANDARD_ROUTES
    bulk_path: str | None = None
    # Where bulk create with one answer per item lives (HTTP 207; documents/bulk_results).
    item_bulk_path: str | None = None
    # Data fields naming what a create's hooks lock (an interaction's door): a per-item
    # bulk writes its items in this order, so two calls naming the same doors in other
    # orders queue instead of deadlocking. Natural keys, when declared, order instead.
    lock_order: tuple[str, ...] = ()
    # Where bulk PATCH lives: {"data": [{"id", "etag", "data": [ops]}]}, one answer per item.
    item_patch_path: str | None = None
    # How many items one bulk call takes: at least ``min_bulk_items``, at most the setting.
    min_bulk_items: int = 0
    max_bulk_items: Callable[[Settings], int] = _max_bulk_items
    # A create body other than CreateBody[data_model] (interactions take flat data).
    create_body: type[BaseModel] | None = None
    hooks: DocumentHooks = field(default_factory=DocumentHooks)
    # Other documents each listed item shows inside its data (a list's members embed
    # their contact and household); filters and sorts reach into them.
    embeds: tuple[Embed, ...] = ()
    title: str = ""
    create_example: dict[str, Any] | None = None
    patch_example: list[dict[str, Any]] | None = None
    list_example_query: str | None = None
    # A catalogue the same for every tenant (status groups): its rows are stored under
    # this customer id and every tenant reads them. None: each tenant has its own rows.
    shared_owner: uuid.UUID | None = None
    # Where each document is on the map (documents/geo.py): its lists then take bbox=,
    # near= and radius=, and answer Accept: application/geo+json.
    geo: Geo | None = None
    # Which rows a canvasser or viewer still reads when the tenant switches
    # viewUnassignedData off (documents/visibility.py); None: the setting does not apply.
    visibility: Visibility | None = None
    # Parts of data whose keys the data model leaves open: as CSV, each key found in
    # the listed documents is a column of its own (documents/csv_export.py).
    csv_open: tuple[OpenPart, ...] = ()

    @property
    def sql(self) -> DocumentSql:
        return statements(self.table, self.name, self.natural_key, self.embeds, self.geo)

    @property
    def create_model(self) -> type[BaseModel]:
        """The model a create body is validated with."""
        data_model: Any = self.data_model
        return self.create_body or CreateBody[data_model]

    @property
    def field_policy(self) -> FieldPolicy:
        """What lists may filter and sort by: the declared paths, and the embedded ones."""
        if not self.embeds:
            return self.filterable
        return replace(self.filterable, embedded=frozenset(embed.at for embed in self.embeds))

    @property
    def natural_keys(self) -> tuple[NaturalKey, ...]:
        """Every key a create is deduplicated by, the plain ``natural_key`` first."""
        plain = (NaturalKey.of_fields(*self.natural_key),) if self.natural_key else ()
        return plain + self.unique_keys

    def owner(self, principal: Principal) -> uuid.UUID:
        """The customer id whose rows this caller reads."""
        return self.shared_owner if self.shared_owner is not None else principal.customer_id

    def visible_to(self, principal: Principal) -> VisibleTo | None:
        """The visibility rule this caller's reads must add, if any."""
        return visible_to(self.visibility, principal, self.table)

    def permission(self, verb: str) -> str:
        return f"{verb}@{self.name}"

    @property
    def label(self) -> str:
        return self.title or self.name.replace("-", " ")


@dataclass(frozen=True, slots=True)
class Companion:
    """A revision of another document, written in the same statement as a create if
    that document's row still has the etag it was read at."""

    resource: Resource
    revised: StoredDocument
    expected_etag: str


# In a create's ``WriteContext.memo`` when a companion was offered: whether it was written.
COMPANION_WRITTEN = "companion_written"
