"""Writing an import: batches of rows, a few set-based statements per batch.

Each kind of document is found or created by its natural key (the partial unique
indexes the resources declare): one SELECT for the keys already there, one INSERT
... ON CONFLICT DO NOTHING for the rest. So importing a file again finds everything
and creates nothing, and a concurrent writer of the same key never makes a twin.

A row is all or nothing. Rows that fail validation never reach the database. If
the database refuses a batch for something one row holds, the import starts again
with a savepoint per batch (see ``run_import``); a refused batch's savepoint is
rolled back and its rows are written again one at a time, each in its own
savepoint, so only the faulty row fails. A fault that is no row's (the database
going away) fails the whole import, which then wrote nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg

from polis_api.auth import Principal
from polis_api.config import Settings
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.envelope import StoredDocument, utc_now_ms
from polis_api.documents.resource import Resource, WriteContext
from polis_api.errors import ApiError, ValidationFailed
from polis_api.imports.rows import (
    Columns,
    ParsedRow,
    Record,
    RowError,
    locate,
    parse_row,
    read_records,
)
from polis_api.resources import list_doors
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.lists import LIST_MEMBERS, LISTS

KINDS = ("households", "contacts", "contactHouseholds", "listMembers")
# What the database refuses because of a value one row holds (not a fault of its own).
ROW_FAULTS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    ApiError,
)


@dataclass
class Report:
    """The import's answer: per kind, how many rows created or found their document."""

    max_errors: int
    rows: int = 0
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    existing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    omitted: int = 0

    def fail(self, error: RowError) -> None:
        self.failed += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)
        else:
            self.omitted += 1

    def count(self, outcome: dict[str, bool]) -> None:
        for kind, created in outcome.items():
            (self.created if created else self.existing)[kind] += 1

    def as_json(self, dry_run: bool) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "existing": self.existing,
            "failed": self.failed,
            "errors": [error.as_json() for error in self.errors],
            "errorsOmitted": self.omitted,
            "dryRun": dry_run,
        }


class RowRefused(Exception):
    """PostgreSQL refused a value some row of the batch holds (import without savepoints)."""


async def run_import(
    conn: asyncpg.Connection,
    principal: Principal,
    file: IO[bytes],
    mapping: dict[str, str],
    settings: Settings,
    *,
    dry_run: bool,
) -> Report:
    """Imports the spooled CSV in one transaction (a savepoint of the request's);
    a dry run does everything and then rolls it back, so it reports the same.

    The first attempt writes batches without savepoints: a savepoint per batch would
    cost PostgreSQL a subtransaction each, and past 64 of them in one transaction
    every other session's visibility checks slow down until it commits. Only when
    PostgreSQL refuses some row is it all rolled back and done again from the start
    of the file with a savepoint per batch, which finds the row and fails it alone.
    """
    try:
        return await _attempt(conn, principal, file, mapping, settings, dry_run, careful=False)
    except RowRefused:
        file.seek(0)
        return await _attempt(conn, principal, file, mapping, settings, dry_run, careful=True)


async def _attempt(
    conn: asyncpg.Connection,
    principal: Principal,
    file: IO[bytes],
    mapping: dict[str, str],
    settings: Settings,
    dry_run: bool,
    *,
    careful: bool,
) -> Report:
    records = read_records(file, settings.import_max_row_bytes)
    header = await asyncio.to_thread(next, records, None)
    if header is None:
        raise ValidationFailed("The CSV is empty: it needs a header line naming its columns.")
    if header.cells is None:
        raise ValidationFailed(f"The CSV header (line {header.line}) {header.problem}.")
    columns = locate(mapping, header.cells)
    ctx = WriteContext(conn, principal, utc_now_ms())
    importer = Importer(ctx, columns, Report(settings.import_max_errors), careful=careful)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await _write_batches(importer, records, columns, settings.import_batch_rows)
    except BaseException:
        await transaction.rollback()
        raise
    if dry_run:
        await transaction.rollback()
    else:
        await transaction.commit()
    return importer.report


async def _write_batches(
    importer: Importer, records: Iterator[Record], columns: Columns, size: int
) -> None:
    """Writes every batch; the next one is read and validated (in a worker thread:
    CPU, not I/O) while this one is written, so Python and PostgreSQL work at once."""

    def read_next() -> asyncio.Future[list[ParsedRow | RowError]]:
        return asyncio.ensure_future(
            asyncio.to_thread(_next_batch, records, columns, size, importer.ctx)
        )

    upcoming = read_next()
    try:
        while batch := await upcoming:
            upcoming = read_next()
            await importer.write(batch)
        await importer.finish()
    finally:
        # Never leave the reader running on a file the request is about to close.
        with contextlib.suppress(BaseException):
            await upcoming


def _next_batch(
    records: Iterator[Record], columns: Columns, size: int, ctx: WriteContext
) -> list[ParsedRow | RowError]:
    """Up to ``size`` rows, read and validated."""
    today = ctx.now.date()
    batch: list[ParsedRow | RowError] = []
    for record in records:
        batch.append(parse_row(record, columns, today))
        if len(batch) == size:
            break
    return batch


class Importer:
    def __init__(
        self, ctx: WriteContext, columns: Columns, report: Report, *, careful: bool
    ) -> None:
        self.ctx = ctx
        # A savepoint per batch, and a row that PostgreSQL refuses fails alone; else
        # such a row raises RowRefused (see run_import).
        self.careful = careful
        self.list_column = columns.names.get("listId")
        self.report = report
        # Lists rows name, locked (as a member PUT locks its list) until the import ends.
        self.lists: dict[str, tuple[StoredDocument, str]] = {}
        self.lists_added_to: set[str] = set()

    async def write(self, batch: Sequence[ParsedRow | RowError]) -> None:
        self.report.rows += len(batch)
        rows = []
        for row in batch:
            if isinstance(row, RowError):
                self.report.fail(row)
            else:
                rows.append(row)
        rows = await self._on_known_lists(rows)
        if not self.careful:
            try:
                outcomes = await self._write(rows)
            except ROW_FAULTS as exc:
                raise RowRefused() from exc
        else:
            try:
                async with self.ctx.conn.transaction():
                    outcomes = await self._write(rows)
            except ROW_FAULTS:
                outcomes = await self._write_one_by_one(rows)
        for outcome in outcomes:
            self.report.count(outcome)

    async def _write_one_by_one(self, rows: Sequence[ParsedRow]) -> list[dict[str, bool]]:
        outcomes = []
        for row in rows:
            try:
                async with self.ctx.conn.transaction():
                    outcomes += await self._write([row])
            except ROW_FAULTS as exc:
                detail = exc.detail if isinstance(exc, ApiError) else str(exc)
                self.report.fail(RowError(row.line, None, f"could not be stored: {detail}"))
        return outcomes

    async def _on_known_lists(self, rows: list[ParsedRow]) -> list[ParsedRow]:
        """Locks the lists rows name (in id order); rows naming no list of the tenant fail.

        Only lists found are remembered, so a file of made-up ids cannot grow memory.
        """
        named = sorted(
            {row.list_id for row in rows if row.list_id and row.list_id not in self.lists}
        )
        unknown = set()
        for list_id in named:
            held = await repo.fetch_for_write(
                self.ctx.conn, LISTS.sql, self.ctx.principal.customer_id, uuid.UUID(list_id)
            )
            if held is None:
                unknown.add(list_id)
            else:
                self.lists[list_id] = held
        kept = []
        for row in rows:
            if row.list_id in unknown:
                message = f"no list with id {row.list_id} in your tenant"
                self.report.fail(RowError(row.line, self.list_column, message))
            else:
                kept.append(row)
        return kept

    async def _write(self, rows: Sequence[ParsedRow]) -> list[dict[str, bool]]:
        """Every row's documents, found or created; per row, which of them it created."""
        households, new_households = await self._find_or_create(
            HOUSEHOLDS, [row.household for row in rows]
        )
        contacts, new_contacts = await self._find_or_create(
            CONTACTS,
            [
                {**row.contact, "primaryHouseholdId": str(household)}
                for row, household in zip(rows, households, strict=True)
            ],
        )
        pairs = [
            {"contactId": str(contact), "householdId": str(household)}
            for contact, household in zip(contacts, households, strict=True)
        ]
        links, new_links = await self._find_or_create(CONTACT_HOUSEHOLDS, pairs)
        outcomes = [
            {"households": a, "contacts": b, "contactHouseholds": c}
            for a, b, c in zip(new_households, new_contacts, new_links, strict=True)
        ]
        listed = [n for n, row in enumerate(rows) if row.list_id is not None]
        members = [
            {**pairs[n], "listId": rows[n].list_id, "contactHouseholdId": str(links[n])}
            for n in listed
        ]
        _, new_members = await self._find_or_create(LIST_MEMBERS, members)
        for n, created in zip(listed, new_members, strict=True):
            outcomes[n]["listMembers"] = created
        added = [members[i] for i, created in enumerate(new_members) if created]
        self.lists_added_to.update(str(member["listId"]) for member in added)
        await list_doors.doors_for_members(
            self.ctx, [str(member["contactHouseholdId"]) for member in added]
        )
        return outcomes

    async def _find_or_create(
        self, resource: Resource, items: list[dict[str, Any]]
    ) -> tuple[list[uuid.UUID], list[bool]]:
        """For each item (in order): the id of the live document holding its natural
        key, and whether this item created it (only the first item of a new key did)."""
        conn, customer_id = self.ctx.conn, self.ctx.principal.customer_id
        keys = [tuple(str(data[name]) for name in resource.natural_key) for data in items]
        distinct = list(dict.fromkeys(keys))
        ids = await repo.ids_by_natural_key(conn, resource.sql, customer_id, distinct)
        new: dict[tuple[str, ...], StoredDocument] = {}
        for key, data in sorted(zip(keys, items, strict=True), key=lambda pair: pair[0]):
            if key not in ids and key not in new:
                new[key] = self._document(data)
        inserted = await repo.insert_many_new(conn, resource.sql, list(new.values()))
        ids.update({key: doc.id for key, doc in new.items() if doc.id in inserted})
        taken = [key for key, doc in new.items() if doc.id not in inserted]
        if taken:  # a concurrent writer created these keys meanwhile
            ids.update(await repo.ids_by_natural_key(conn, resource.sql, customer_id, taken))
        claimed: set[tuple[str, ...]] = set()
        created = []
        for key in keys:
            if key not in ids:
                raise ApiError(f"The {resource.label} with this key could not be stored.")
            created.append(key in new and new[key].id in inserted and key not in claimed)
            claimed.add(key)
        return [ids[key] for key in keys], created

    def _document(self, data: dict[str, Any]) -> StoredDocument:
        principal, now = self.ctx.principal, self.ctx.now
        return StoredDocument(
            id=uuid.uuid4(),
            customer_id=principal.customer_id,
            security_group_id=principal.security_group_id,
            data=data,
            created=now,
            modified=now,
            created_by=principal.user_id,
            modified_by=principal.user_id,
        )

    async def finish(self) -> None:
        """Recounts each list that gained members, as a member PUT does."""
        for list_id in sorted(self.lists_added_to):
            current, etag = self.lists[list_id]
            count = await repo.count_live_by(
                self.ctx.conn, LIST_MEMBERS.sql, self.ctx.principal.customer_id, {"listId": list_id}
            )
            if current.data.get("contactsCount") != count:
                revised = current.revised(
                    data={**current.data, "contactsCount": count},
                    by=self.ctx.principal.user_id,
                    at=self.ctx.now,
                )
                await service.write_revision(self.ctx, LISTS, revised, etag)
