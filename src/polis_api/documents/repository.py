"""Every SQL statement the generic document mechanism runs.

PostgreSQL renders the response envelope itself (``json_build_object``) and Python
passes the text through; the etag is computed in Python at write time and stored.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, Protocol

import asyncpg

from polis_api.documents.envelope import StoredDocument
from polis_api.documents.geo import Geo
from polis_api.documents.keys import NaturalKey
from polis_api.documents.keyset import Keyset
from polis_api.documents.visibility import VisibleTo
from polis_api.filtering.to_sql import Params, embedded_column

_COLUMNS = (
    "id, customer_id, security_group_id, data, created, modified, created_by, modified_by, "
    "is_deleted"
)


def timestamp_sql(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def document_json_sql(resource: str, row: str = "", data: str = "", extra: str = "") -> str:
    """The envelope as a ``json`` expression over one row, keys in Polis' order.

    ``row`` qualifies the columns (``"c."``) when several tables are joined; ``data``
    replaces the data expression (a member with its embedded documents); ``extra`` adds
    members after the envelope's (``'params', ...``). All three are written by code,
    never by requests.
    """
    return (
        f"json_build_object('id', {row}id, 'data', {data or row + 'data'}, "
        "'meta', json_build_object("
        f"'created', {timestamp_sql(row + 'created')}, "
        f"'modified', {timestamp_sql(row + 'modified')}, "
        f"'resource', '{resource}', 'createdBy', {row}created_by, "
        f"'isDeleted', {row}is_deleted, 'modifiedBy', {row}modified_by, 'etag', {row}etag), "
        f"'customerId', {row}customer_id, 'securityGroupId', {row}security_group_id"
        + (f", {extra}" if extra else "")
        + ")"
    )


@dataclass(frozen=True, slots=True)
class Embed:
    """Another resource's document shown inside each listed item at ``data.<at>``.

    It is the document whose id the item holds in ``data.<by>``, rendered by the same
    statement (a join, never a query per item). A change to it is a change of the
    item: the item's feed position is the greatest of the writers of the joined rows.
    """

    at: str  # "contact": where the document appears, and the filter path /data/contact/...
    table: str  # "contacts"
    resource: str  # its meta.resource
    by: str  # "contactId": the item's data field holding the document's id

    @property
    def column(self) -> str:
        return embedded_column(self.at)


_SOURCE_COLUMNS = (*_COLUMNS.split(", "), "etag")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A document as response bytes plus its etag (for the ETag header)."""

    body: str
    etag: str


@dataclass(frozen=True)
class DocumentSql:
    """The fixed statements for one document table (built once, reused forever)."""

    table: str
    resource: str
    natural_key: tuple[str, ...] = ()
    embeds: tuple[Embed, ...] = ()
    geo: Geo | None = None

    @property
    def document(self) -> str:
        """The stored document itself (what a write returns and its etag covers)."""
        return document_json_sql(self.resource)

    @property
    def listed(self) -> str:
        """An item as lists show it: with its embedded documents, if it has any."""
        if not self.embeds:
            return self.document
        embedded = ", ".join(f"'{embed.at}', {embed.column}" for embed in self.embeds)
        return document_json_sql(self.resource, data=f"data || jsonb_build_object({embedded})")

    @property
    def source(self) -> str:
        """What lists read from: the table, or the table joined to what it embeds.

        The joined form keeps the table's own columns (so its indexes still serve
        filters on its own fields), adds each embedded document as a jsonb column,
        and moves ``txid`` to the latest writer of any joined row: the change feed
        then sees an embedded change as a change of the item (docs/sync.md).
        """
        return self._joined(located=False)

    @property
    def located_source(self) -> str:
        """``source`` with each row's household (docs/geography.md), for geo lists.

        Inner joins along the declared references: a document whose chain breaks has
        no point, and geo lists leave such documents out anyway. After PostgreSQL
        flattens the subquery, conditions on the household's columns are conditions
        on the households table, which its GiST indexes serve.
        """
        return self._joined(located=True)

    def _joined(self, *, located: bool) -> str:
        hops = self.geo.via if located and self.geo is not None else ()
        if not self.embeds and not hops:
            return self.table
        own = ", ".join(f"t.{column}" for column in _SOURCE_COLUMNS)
        txids = ", ".join(["t.txid", *(f"e{n}.txid" for n in range(len(self.embeds)))])
        columns = [own, f"greatest({txids}) AS txid"]
        joins = []
        for n, embed in enumerate(self.embeds):
            alias = f"e{n}"
            rendered = document_json_sql(embed.resource, row=f"{alias}.")
            columns.append(
                f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE to_jsonb({rendered}) END "
                f"AS {embed.column}"
            )
            joins.append(
                f"LEFT JOIN {embed.table} AS {alias} ON {alias}.customer_id = t.customer_id "
                f"AND {alias}.id = (t.data ->> '{embed.by}')::uuid"
            )
        for n, hop in enumerate(hops):
            alias, previous = f"g{n}", ("t" if n == 0 else f"g{n - 1}")
            # The reference twice, as uuid and as text: the first meets the referenced
            # table's primary key, the second the referring table's expression index,
            # so the join can run from either side (from the households in a box too).
            reference = f"({previous}.data ->> '{hop.by}')"
            joins.append(
                f"JOIN {hop.table} AS {alias} ON {alias}.customer_id = t.customer_id "
                f"AND {alias}.id = {reference}::uuid AND {reference} = {alias}.id::text "
                f"AND NOT {alias}.is_deleted"
            )
        if hops:
            household = f"g{len(hops) - 1}"
            columns.append(f"{household}.data AS geo_household, {household}.id AS geo_household_id")
        return (
            f"(SELECT {', '.join(columns)} FROM {self.table} AS t {' '.join(joins)}) "
            f"AS {self.table}"
        )

    @property
    def feature(self) -> str:
        """A listed row as a GeoJSON Point feature ([lng, lat], RFC 7946 §3.1.2)."""
        assert self.geo is not None
        geo, row = self.geo, self.table
        properties = [f"'id', {row}.id", f"'householdId', {row}.{geo.household_id}"]
        for prop in geo.properties:
            if prop.via is None:
                value = f"{row}.data -> '{prop.field}'"
            else:
                value = (
                    f"(SELECT p.data -> '{prop.field}' FROM {prop.via.table} AS p "
                    f"WHERE p.customer_id = {row}.customer_id "
                    f"AND p.id = ({row}.data ->> '{prop.via.by}')::uuid)"
                )
            properties.append(f"'{prop.name}', {value}")
        return (
            "json_build_object('type', 'Feature', 'geometry', json_build_object("
            f"'type', 'Point', 'coordinates', json_build_array({geo.lng}, {geo.lat})), "
            f"'properties', json_build_object({', '.join(properties)}))"
        )

    @property
    def get(self) -> str:
        return (
            f"SELECT ({self.document})::text, etag FROM {self.table} "
            "WHERE customer_id = $1 AND id = $2 AND NOT is_deleted"
        )

    @property
    def get_for_write(self) -> str:
        # FOR UPDATE: a read-modify-write sees the latest committed row and holds it,
        # so hooks that derive from the previous data never race a concurrent writer.
        return (
            f"SELECT {_COLUMNS}, etag FROM {self.table} "
            "WHERE customer_id = $1 AND id = $2 AND NOT is_deleted FOR UPDATE"
        )

    @property
    def get_for_write_by_natural_key(self) -> str:
        return f"{self.get_stored_by_natural_key} FOR UPDATE"

    @property
    def get_stored_by_natural_key(self) -> str:
        """The stored row (columns and etag), unlocked: for a write conditional on its etag."""
        return (
            f"SELECT {_COLUMNS}, etag FROM {self.table} "
            f"WHERE customer_id = $1 AND {self._natural_key_matches} AND NOT is_deleted"
        )

    @property
    def _natural_key_matches(self) -> str:
        return " AND ".join(
            f"(data ->> '{field}') = ${n}" for n, field in enumerate(self.natural_key, start=2)
        )

    @property
    def insert(self) -> str:
        return (
            f"INSERT INTO {self.table} ({_COLUMNS}, etag) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            # No conflict target: an id or natural key already taken both mean "not inserted".
            f"ON CONFLICT DO NOTHING RETURNING ({self.document})::text"
        )

    @property
    def get_by_natural_key(self) -> str:
        return (
            f"SELECT ({self.document})::text, etag FROM {self.table} "
            f"WHERE customer_id = $1 AND {self._natural_key_matches} AND NOT is_deleted"
        )

    @property
    def update_if_etag(self) -> str:
        return f"{self.update_if_etag_unanswered} RETURNING ({self.document})::text"

    @property
    def update_if_etag_unanswered(self) -> str:
        return (
            f"UPDATE {self.table} SET data = $3, modified = $4, modified_by = $5, "
            "is_deleted = $6, etag = $7 "
            "WHERE customer_id = $1 AND id = $2 AND etag = $8 AND NOT is_deleted"
        )


@cache
def statements(
    table: str,
    resource: str,
    natural_key: tuple[str, ...] = (),
    embeds: tuple[Embed, ...] = (),
    geo: Geo | None = None,
) -> DocumentSql:
    return DocumentSql(table, resource, natural_key, embeds, geo)


def _row_values(doc: StoredDocument) -> tuple[Any, ...]:
    return (
        doc.id,
        doc.customer_id,
        doc.security_group_id,
        doc.data,
        doc.created,
        doc.modified,
        doc.created_by,
        doc.modified_by,
        doc.is_deleted,
    )


async def fetch_rendered(
    conn: asyncpg.Connection | asyncpg.Pool,
    sql: DocumentSql,
    customer_id: uuid.UUID,
    doc_id: uuid.UUID,
) -> Rendered | None:
    row = await conn.fetchrow(sql.get, customer_id, doc_id)
    return Rendered(row[0], row[1]) if row is not None else None


async def fetch_rendered_visible(
    conn: asyncpg.Connection | asyncpg.Pool,
    sql: DocumentSql,
    customer_id: uuid.UUID,
    doc_id: uuid.UUID,
    visible: VisibleTo,
) -> Rendered | None:
    """``fetch_rendered`` for a caller restricted to what is assigned to it."""
    bound = Params([customer_id, doc_id])
    text = f"{sql.get} AND {visible.where(bound)}"
    row = await conn.fetchrow(text, *bound.values)
    return Rendered(row[0], row[1]) if row is not None else None


async def fetch_by_natural_key(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, values: Sequence[str]
) -> Rendered | None:
    row = await conn.fetchrow(sql.get_by_natural_key, customer_id, *values)
    return Rendered(row[0], row[1]) if row is not None else None


@cache
def key_lookup_sql(table: str, document_sql: str, key: NaturalKey) -> str:
    """The live document whose key equals the key of the candidate data ``$2``.

    Inside each scalar subquery ``data`` names the candidate (the innermost FROM),
    outside it the table's column; each comparison is an index condition.
    """
    candidate = "(SELECT $2::jsonb AS data) AS candidate"
    matches = " AND ".join(
        f"{expression} = (SELECT {expression} FROM {candidate})" for expression in key.expressions
    )
    condition = f" AND {key.condition}" if key.condition else ""
    return (
        f"SELECT ({document_sql})::text, etag FROM {table} "
        f"WHERE customer_id = $1 AND NOT is_deleted{condition} AND {matches}"
    )


async def fetch_by_key(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    key: NaturalKey,
    customer_id: uuid.UUID,
    data: dict[str, Any],
) -> Rendered | None:
    """The live document holding ``key`` with the values ``data`` has for it."""
    row = await conn.fetchrow(key_lookup_sql(sql.table, sql.document, key), customer_id, data)
    return Rendered(row[0], row[1]) if row is not None else None


async def fetch_for_write(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, doc_id: uuid.UUID
) -> tuple[StoredDocument, str] | None:
    row = await conn.fetchrow(sql.get_for_write, customer_id, doc_id)
    if row is None:
        return None
    return stored_from_row(row), row["etag"]


async def fetch_for_write_by_natural_key(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, values: Sequence[str]
) -> tuple[StoredDocument, str] | None:
    row = await conn.fetchrow(sql.get_for_write_by_natural_key, customer_id, *values)
    if row is None:
        return None
    return stored_from_row(row), row["etag"]


async def fetch_data(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, doc_id: uuid.UUID
) -> dict[str, Any] | None:
    """Just the ``data`` of a live document: for reference checks between resources."""
    data: dict[str, Any] | None = await conn.fetchval(
        f"SELECT data FROM {sql.table} WHERE customer_id = $1 AND id = $2 AND NOT is_deleted",
        customer_id,
        doc_id,
    )
    return data


async def find_first(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, equals: dict[str, str]
) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """The oldest live document whose data fields (named by code, never by a request)
    equal the given text values."""
    matches = "".join(
        f" AND (data ->> '{field}') = ${n}" for n, field in enumerate(equals, start=2)
    )
    row = await conn.fetchrow(
        f"SELECT id, data FROM {sql.table} WHERE customer_id = $1 AND NOT is_deleted{matches} "
        "ORDER BY created, id LIMIT 1",
        customer_id,
        *equals.values(),
    )
    return (row["id"], row["data"]) if row is not None else None


async def count_live_by(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, equals: dict[str, str]
) -> int:
    """How many live documents have these data fields (named by code) equal to these
    text values."""
    matches = "".join(
        f" AND (data ->> '{field}') = ${n}" for n, field in enumerate(equals, start=2)
    )
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM {sql.table} WHERE customer_id = $1 AND NOT is_deleted{matches}",
        customer_id,
        *equals.values(),
    )
    return total


def stored_from_row(row: asyncpg.Record) -> StoredDocument:
    return StoredDocument(
        id=row["id"],
        customer_id=row["customer_id"],
        security_group_id=row["security_group_id"],
        data=row["data"],
        created=row["created"],
        modified=row["modified"],
        created_by=row["created_by"],
        modified_by=row["modified_by"],
        is_deleted=row["is_deleted"],
    )


async def insert(
    conn: asyncpg.Connection, sql: DocumentSql, doc: StoredDocument, etag: str
) -> str | None:
    """The new document's JSON, or None when the id is already taken in this tenant."""
    body: str | None = await conn.fetchval(sql.insert, *_row_values(doc), etag)
    return body


async def insert_with_revision(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    doc: StoredDocument,
    etag: str,
    other: DocumentSql,
    revised: StoredDocument,
    revised_etag: str,
    expected: str,
) -> tuple[str | None, bool]:
    """``insert``, and in the same statement ``update_if_etag`` of ``revised`` (in
    ``other``'s table) when the insert happened: (the new document's JSON or None,
    whether the revision was written)."""
    row = await conn.fetchrow(
        _insert_with_revision_sql(sql, other),
        *_row_values(doc),
        etag,
        *_revision_values(revised, revised_etag, expected),
    )
    return row[0], row[1]


@cache
def _insert_with_revision_sql(inserted: DocumentSql, revised: DocumentSql) -> str:
    # The update's parameters follow the insert's ten.
    update = re.sub(r"\$(\d+)", lambda n: f"${int(n[1]) + 10}", revised.update_if_etag_unanswered)
    return (
        f"WITH inserted AS ({inserted.insert}), "
        f"revised AS ({update} AND EXISTS (SELECT FROM inserted) RETURNING 1) "
        "SELECT (SELECT * FROM inserted), EXISTS (SELECT FROM revised)"
    )


async def insert_many(
    conn: asyncpg.Connection, sql: DocumentSql, docs: Sequence[StoredDocument]
) -> None:
    await conn.executemany(
        sql.insert, [(*_row_values(doc), doc.etag(sql.resource)) for doc in docs]
    )


async def update_if_etag(
    conn: asyncpg.Connection, sql: DocumentSql, doc: StoredDocument, etag: str, expected: str
) -> str | None:
    """Write ``doc`` only if its stored etag is still ``expected``; None if it was not."""
    body: str | None = await conn.fetchval(
        sql.update_if_etag, *_revision_values(doc, etag, expected)
    )
    return body


def _revision_values(doc: StoredDocument, etag: str, expected: str) -> tuple[Any, ...]:
    return (
        doc.customer_id,
        doc.id,
        doc.data,
        doc.modified,
        doc.modified_by,
        doc.is_deleted,
        etag,
        expected,
    )


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A compiled list request: WHERE and ORDER BY text plus their bound values."""

    where: str
    order_by: str
    params: list[Any]
    limit: int
    skip: int
    # Rows carry their household (DocumentSql.located_source): a geo list.
    located: bool = False
    # Set when the list can be continued by a meta.next page token (documents/keyset.py).
    keyset: Keyset | None = None

    def source(self, sql: DocumentSql) -> str:
        return sql.located_source if self.located else sql.source


def list_sql(sql: DocumentSql, query: ListQuery, item: str | None = None) -> tuple[str, list[Any]]:
    """``item`` renders each row (default: the listed document as JSON)."""
    limit_at = len(query.params) + 1
    text = (
        f"SELECT ({item or sql.listed})::text FROM {query.source(sql)} WHERE {query.where} "
        f"ORDER BY {query.order_by} LIMIT ${limit_at} OFFSET ${limit_at + 1}"
    )
    return text, [*query.params, query.limit, query.skip]


def page_sql(
    sql: DocumentSql, query: ListQuery, item: str | None = None, *, with_keys: bool = False
) -> tuple[str, list[Any]]:
    """One page: find its ids first, then render only those documents.

    Rendering in the same scan as OFFSET would build JSON for every skipped row
    (a deep page cost 170 ms where the first cost 1 ms); the inner query can be
    answered from an index alone. ``$1`` is always the tenant. ``with_keys`` adds
    each row's sort values (documents/keyset.py), for the next page's token.
    """
    limit_at = len(query.params) + 1
    source = query.source(sql)
    keys = f", {query.keyset.columns}" if with_keys and query.keyset is not None else ""
    text = (
        f"SELECT ({item or sql.listed})::text{keys} FROM {source} JOIN ("
        f"SELECT id AS page_id FROM {source} WHERE {query.where} "
        f"ORDER BY {query.order_by} LIMIT ${limit_at} OFFSET ${limit_at + 1}"
        f") AS page ON id = page.page_id WHERE customer_id = $1 ORDER BY {query.order_by}"
    )
    return text, [*query.params, query.limit, query.skip]


@dataclass(frozen=True, slots=True)
class Link:
    """Documents reached from one document through an association table: a contact's
    households through contact_households (``from_field`` contactId, ``to_field``
    householdId). Each listed document carries the association's id as ``params.<param>``."""

    table: str
    from_field: str
    to_field: str
    param: str

    def live_links(self, owner: str) -> str:
        return (
            f"FROM {self.table} AS link WHERE link.customer_id = $1 AND NOT link.is_deleted "
            f"AND (link.data ->> '{self.from_field}') = {owner}"
        )


def linked_page_sql(
    sql: DocumentSql, link: Link, owner_id: uuid.UUID, query: ListQuery, item: str | None = None
) -> tuple[str, str, list[Any]]:
    """One page of the documents ``owner_id`` is linked to, as ``page_sql`` pages; the
    list's own filter and sort apply to the linked documents. ``item`` renders each
    (default: the document as JSON, with its link's id in ``params``)."""
    owner_at = len(query.params) + 1
    owner = f"${owner_at}::text"
    linked = f"id::text IN (SELECT (link.data ->> '{link.to_field}') {link.live_links(owner)})"
    link_id = (
        f"(SELECT link.id {link.live_links(owner)} "
        f"AND (link.data ->> '{link.to_field}') = {sql.table}.id::text LIMIT 1)"
    )
    document = document_json_sql(
        sql.resource, extra=f"'params', json_build_object('{link.param}', {link_id})"
    )
    text = (
        f"SELECT ({item or document})::text FROM {sql.table} JOIN ("
        f"SELECT id AS page_id FROM {sql.table} WHERE {query.where} AND {linked} "
        f"ORDER BY {query.order_by} LIMIT ${owner_at + 1} OFFSET ${owner_at + 2}"
        f") AS page ON id = page.page_id WHERE customer_id = $1 ORDER BY {query.order_by}"
    )
    count = f"SELECT count(*) FROM {sql.table} WHERE {query.where} AND {linked}"
    return text, count, [*query.params, str(owner_id), query.limit, query.skip]


def linked_feed_view(sql: DocumentSql, link: Link, owner_at: int) -> FeedView:
    """The change feed of the documents one owner (parameter ``owner_at``) is linked to.

    Every document ever linked to the owner is an item, live link or not. Its position
    is the greatest of its own ``txid`` and those of all its link rows to the owner,
    so linking, unlinking and changing the document each move it past every token
    issued before (the argument of docs/lists.md, "The change feed on members"). It
    is a tombstone when the document is deleted or no live link to it remains.
    ``params.<param>`` names the live link (null on a tombstone without one).
    """
    own = ", ".join(f"t.{column}" for column in _SOURCE_COLUMNS if column != "is_deleted")
    # array_agg rather than max(): PostgreSQL 15 has no max() for xid8.
    links = (
        f"SELECT (link.data ->> '{link.to_field}') AS linked_id, "
        "(array_agg(link.txid ORDER BY link.txid DESC))[1] AS txid, "
        "(array_agg(link.id ORDER BY link.id) FILTER (WHERE NOT link.is_deleted))[1] AS live_id "
        f"FROM {link.table} AS link WHERE link.customer_id = $1 "
        f"AND (link.data ->> '{link.from_field}') = ${owner_at}::text GROUP BY 1"
    )
    source = (
        f"(SELECT {own}, t.is_deleted OR links.live_id IS NULL AS is_deleted, "
        "greatest(t.txid, links.txid) AS txid, links.live_id AS link_id "
        f"FROM ({links}) AS links JOIN {sql.table} AS t "
        "ON t.customer_id = $1 AND t.id = links.linked_id::uuid) "
        f"AS {sql.table}"
    )
    listed = document_json_sql(
        sql.resource, extra=f"'params', json_build_object('{link.param}', link_id)"
    )
    return FeedView(source, listed)


async def fetch_linked_page(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    link: Link,
    owner_id: uuid.UUID,
    query: ListQuery,
    *,
    count: bool,
    item: str | None = None,
) -> tuple[list[str], int | None]:
    """The page, and with ``count`` the total (run both in one snapshot)."""
    text, count_text, args = linked_page_sql(sql, link, owner_id, query, item)
    rows = await conn.fetch(text, *args)
    total: int | None = await conn.fetchval(count_text, *args[:-2]) if count else None
    return [row[0] for row in rows], total


async def fetch_page(
    conn: asyncpg.Connection, sql: DocumentSql, query: ListQuery, item: str | None = None
) -> list[str]:
    text, args = page_sql(sql, query, item)
    return [row[0] for row in await conn.fetch(text, *args)]


async def fetch_page_and_next(
    conn: asyncpg.Connection, sql: DocumentSql, query: ListQuery, item: str, keyed: bool
) -> tuple[list[str], str | None]:
    """A page and, when it is full and the list pages by keyset, the next page's token."""
    with_keys = keyed and query.keyset is not None
    text, args = page_sql(sql, query, item, with_keys=with_keys)
    records = await conn.fetch(text, *args)
    rows = [record[0] for record in records]
    if not with_keys or not records or len(records) < query.limit:
        return rows, None
    assert query.keyset is not None
    return rows, query.keyset.token_after(records[-1][1:])


def listed_data_sql(
    sql: DocumentSql, query: ListQuery, *, page: bool, after: Position | None = None
) -> tuple[str, list[Any]]:
    """The ``data`` of the rows a list answers: one page of them, or all (a stream).
    With ``after``, a change feed's page: the rows past that position, in change order
    (those still past the feed's horizon included, so never fewer)."""
    text = f"SELECT data FROM {query.source(sql)} WHERE {query.where}"
    args = list(query.params)
    if after is not None:
        n = len(args)
        text += f" AND (txid, id) > (${n + 1}::text::xid8, ${n + 2}::uuid)"
        args += [str(after.txid), after.id]
    if not page:
        return text, args
    limit_at = len(args) + 1
    text += f" ORDER BY {query.order_by} LIMIT ${limit_at} OFFSET ${limit_at + 1}"
    return text, [*args, query.limit, query.skip]


def open_keys_sql(rows: str, at: tuple[str, ...], depth: int, limit_at: int) -> str:
    """The distinct key paths, ``depth`` levels deep, under ``data #> at`` in ``rows``
    (a query yielding ``data``); a value that is not an object ends its path early.
    Each row of the answer is one path, padded with NULLs. ``at`` is written by code."""
    path = "'{" + ",".join(at) + "}'"
    levels = [
        f"CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(listed.data #> {path}) "
        f"= 'object' THEN listed.data #> {path} END) AS k1"
    ]
    for n in range(2, depth + 1):
        outer = f"k{n - 1}.value"
        levels.append(
            f"LEFT JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof({outer}) = 'object' "
            f"THEN {outer} END) AS k{n} ON true"
        )
    keys = ", ".join(f"k{n}.key" for n in range(1, depth + 1))
    order = ", ".join(f"{n} NULLS FIRST" for n in range(1, depth + 1))
    return (
        f"SELECT DISTINCT {keys} FROM ({rows}) AS listed {' '.join(levels)} "
        f"ORDER BY {order} LIMIT ${limit_at}"
    )


async def open_keys(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    query: ListQuery,
    at: tuple[str, ...],
    depth: int,
    *,
    page: bool,
    limit: int,
    after: Position | None = None,
) -> list[tuple[str, ...]]:
    """At most ``limit`` key paths (``open_keys_sql``) of the listed documents."""
    rows, args = listed_data_sql(sql, query, page=page, after=after)
    text = open_keys_sql(rows, at, depth, len(args) + 1)
    found = await conn.fetch(text, *args, limit)
    return [tuple(key for key in row if key is not None) for row in found]


async def count(conn: asyncpg.Connection, sql: DocumentSql, query: ListQuery) -> int:
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM {query.source(sql)} WHERE {query.where}", *query.params
    )
    return total


async def stream_rows(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    query: ListQuery,
    item: str | None = None,
    batch: int = 500,
) -> AsyncIterator[str]:
    """Rows through a server-side cursor: memory stays flat however many match.

    An SQL cursor (DECLARE) rather than a protocol-level one: PostgreSQL then plans
    for the first rows (cursor_tuple_fraction), walking the index in order instead
    of sorting everything before the first byte. Needs the caller's transaction.
    """
    text, args = list_sql(sql, query, item)
    await conn.execute(f"DECLARE polis_stream NO SCROLL CURSOR FOR {text}", *args)
    while rows := await conn.fetch(f"FETCH {batch} FROM polis_stream"):
        for row in rows:
            yield row[0]
    await conn.execute("CLOSE polis_stream")


# The change feed (since=): rows in commit order, tombstones included.


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a row stands in the change feed: its writer's transaction id, then its id."""

    txid: int
    id: uuid.UUID


class FeedSql(Protocol):
    """What a change feed reads: rows with the envelope's columns, ``txid`` (the
    position) and ``is_deleted`` (tombstones), and how to render one as an item."""

    @property
    def source(self) -> str: ...

    @property
    def listed(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FeedView:
    """A feed over a derived row set (a document table joined to its links): the
    ``source`` subquery computes each item's position and whether it is a tombstone."""

    source: str
    listed: str


@dataclass(frozen=True, slots=True)
class Change:
    position: Position
    body: str


@dataclass(frozen=True, slots=True)
class Horizon:
    """The current snapshot's bounds: every transaction below ``oldest_running`` has
    finished (committed or rolled back), so no change can later appear behind a cursor
    there; ``next`` is the first transaction id not yet handed out. Transaction ids
    belong to one database cluster, named by ``cluster`` (its system identifier)."""

    oldest_running: int
    next: int
    cluster: int


async def snapshot_horizon(conn: asyncpg.Connection) -> Horizon:
    row = await conn.fetchrow(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text, c.system_identifier "
        "FROM pg_current_snapshot() AS s, pg_control_system() AS c"
    )
    return Horizon(int(row[0]), int(row[1]), int(row[2]))


def changes_sql(
    sql: FeedSql, query: ListQuery, after: Position, horizon: int, limit: int
) -> tuple[str, list[Any]]:
    """Rows strictly after ``after`` and below ``horizon``, in (txid, id) order.

    ``query.where`` must not exclude deleted rows: they are the tombstones. xid8 goes
    over the wire as text (asyncpg has no codec for it); the row comparison and the
    bound are index conditions on (customer_id, txid, id).
    """
    n = len(query.params)
    text = (
        # Aliased: an output column named txid would make ORDER BY sort the text.
        f"SELECT txid::text AS position, id, ({sql.listed})::text FROM {sql.source} "
        f"WHERE {query.where} AND txid < ${n + 1}::text::xid8 "
        f"AND (txid, id) > (${n + 2}::text::xid8, ${n + 3}::uuid) "
        f"ORDER BY txid, id LIMIT ${n + 4}"
    )
    return text, [*query.params, str(horizon), str(after.txid), after.id, limit]


async def fetch_changes(
    conn: asyncpg.Connection,
    sql: FeedSql,
    query: ListQuery,
    after: Position,
    horizon: int,
    limit: int,
) -> list[Change]:
    text, args = changes_sql(sql, query, after, horizon, limit)
    return [Change(Position(int(row[0]), row[1]), row[2]) for row in await conn.fetch(text, *args)]


async def purge_tombstones(conn: asyncpg.Connection, table: str, older_than: timedelta) -> int:
    """Remove deleted documents last written longer ago than ``older_than`` (every
    tenant: a maintenance task, not a request). Returns how many were removed."""
    status: str = await conn.execute(
        f"DELETE FROM {table} WHERE is_deleted AND modified < now() - $1::interval", older_than
    )
    return int(status.split()[-1])


async def try_stream_slot(conn: asyncpg.Connection, holder: str, slots: int) -> bool:
    """Take one of ``slots`` transaction-scoped advisory locks for ``holder``.

    False when all are taken: ``holder`` already has that many streams open, in any
    worker. The lock is released with the stream's transaction, however it ends
    (even when the worker dies). The two-key form keeps clear of the one-key locks
    idempotency takes.
    """
    taken: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM generate_series(1, $2) AS slot "
        "WHERE pg_try_advisory_xact_lock(hashtext($1), slot))",
        holder,
        slots,
    )
    return taken


# Set-based writes for bulk endpoints: one statement per step, whatever the size.


async def fetch_many_by_natural_key(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    customer_id: uuid.UUID,
    keys: Sequence[Sequence[str]],
    *,
    lock: bool = False,
) -> dict[tuple[str, ...], tuple[StoredDocument, str]]:
    """The live documents with these natural keys; with ``lock``, locked FOR UPDATE in
    key order, so concurrent bulk writers queue instead of deadlocking."""
    fields = sql.natural_key
    columns = ", ".join(f"k{n}" for n in range(len(fields)))
    arrays = ", ".join(f"${n + 2}::text[]" for n in range(len(fields)))
    matches = " AND ".join(f"(t.data ->> '{field}') = u.k{n}" for n, field in enumerate(fields))
    ordering = ", ".join(f"(t.data ->> '{field}')" for field in fields)
    rows = await conn.fetch(
        f"SELECT t.{_COLUMNS.replace(', ', ', t.')}, t.etag FROM {sql.table} AS t "
        f"JOIN unnest({arrays}) AS u({columns}) ON {matches} "
        f"WHERE t.customer_id = $1 AND NOT t.is_deleted ORDER BY {ordering}"
        + (" FOR UPDATE OF t" if lock else ""),
        customer_id,
        *([key[n] for key in keys] for n in range(len(fields))),
    )
    found = {}
    for row in rows:
        doc = stored_from_row(row)
        found[tuple(str(doc.data[field]) for field in fields)] = (doc, row["etag"])
    return found


async def ids_by_natural_key(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    customer_id: uuid.UUID,
    keys: Sequence[Sequence[str]],
) -> dict[tuple[str, ...], uuid.UUID]:
    """The ids of the live documents with these natural keys: what an import needs,
    without decoding each document's data."""
    fields = sql.natural_key
    columns = ", ".join(f"k{n}" for n in range(len(fields)))
    arrays = ", ".join(f"${n + 2}::text[]" for n in range(len(fields)))
    matches = " AND ".join(f"(t.data ->> '{field}') = u.k{n}" for n, field in enumerate(fields))
    rows = await conn.fetch(
        f"SELECT t.id, {columns} FROM {sql.table} AS t "
        f"JOIN unnest({arrays}) AS u({columns}) ON {matches} "
        "WHERE t.customer_id = $1 AND NOT t.is_deleted",
        customer_id,
        *([key[n] for key in keys] for n in range(len(fields))),
    )
    return {tuple(row[1:]): row[0] for row in rows}


async def insert_many_new(
    conn: asyncpg.Connection, sql: DocumentSql, docs: Sequence[StoredDocument]
) -> set[uuid.UUID]:
    """Insert documents in one statement; returns the ids that were inserted (a key
    taken meanwhile by a concurrent writer leaves its document out)."""
    if not docs:
        return set()
    rows = await conn.fetch(
        f"INSERT INTO {sql.table} ({_COLUMNS}, etag) "
        "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::jsonb[], "
        "$5::timestamptz[], $6::timestamptz[], $7::uuid[], $8::uuid[], $9::bool[], $10::text[]) "
        "ON CONFLICT DO NOTHING RETURNING id",
        *_columns_of(docs, sql.resource),
    )
    return {row["id"] for row in rows}


async def update_many(
    conn: asyncpg.Connection, sql: DocumentSql, docs: Sequence[StoredDocument]
) -> None:
    """Write new revisions of documents the caller holds locked (fetched FOR UPDATE);
    a revision may be a soft delete (``StoredDocument.deleted``)."""
    if not docs:
        return
    etags = [doc.etag(sql.resource) for doc in docs]
    await conn.execute(_update_many_sql(sql.table), *_revisions_of(docs, etags))


async def update_many_rendered(
    conn: asyncpg.Connection, sql: DocumentSql, docs: Sequence[StoredDocument], etags: list[str]
) -> dict[uuid.UUID, str]:
    """``update_many`` with the etags already computed; each document's JSON by its id."""
    if not docs:
        return {}
    returning = f" RETURNING t.id, ({document_json_sql(sql.resource, row='t.')})::text"
    rows = await conn.fetch(_update_many_sql(sql.table) + returning, *_revisions_of(docs, etags))
    return {row[0]: row[1] for row in rows}


def _update_many_sql(table: str) -> str:
    return (
        f"UPDATE {table} AS t SET data = u.data, modified = u.modified, "
        "modified_by = u.modified_by, etag = u.etag, is_deleted = u.is_deleted "
        "FROM unnest($2::uuid[], $3::jsonb[], $4::timestamptz[], $5::uuid[], $6::text[], "
        "$7::bool[]) AS u(id, data, modified, modified_by, etag, is_deleted) "
        "WHERE t.customer_id = $1 AND t.id = u.id"
    )


def _revisions_of(docs: Sequence[StoredDocument], etags: list[str]) -> list[Any]:
    return [
        docs[0].customer_id,
        [doc.id for doc in docs],
        [doc.data for doc in docs],
        [doc.modified for doc in docs],
        [doc.modified_by for doc in docs],
        etags,
        [doc.is_deleted for doc in docs],
    ]


async def fetch_data_many(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT id, data FROM {sql.table} "
        "WHERE customer_id = $1 AND id = ANY($2::uuid[]) AND NOT is_deleted",
        customer_id,
        list(ids),
    )
    return {row["id"]: row["data"] for row in rows}


def _columns_of(docs: Sequence[StoredDocument], resource: str) -> list[list[Any]]:
    rows = [(*_row_values(doc), doc.etag(resource)) for doc in docs]
    return [list(column) for column in zip(*rows, strict=True)]


async def insert_many_rendered(
    conn: asyncpg.Connection,
    sql: DocumentSql,
    docs: Sequence[StoredDocument],
    etags: list[str],
    *,
    skip_taken: bool = True,
) -> dict[uuid.UUID, str]:
    """Insert new documents of one writer and moment (``created``, ``created_by`` and the
    tenant of the first) in one statement, in the order given; each inserted document's
    JSON by its id. With ``skip_taken``, one repeating an id or a key taken, by an
    earlier one or a stored document, is skipped; without, the statement fails
    (``UniqueViolationError``) and spares the per-row conflict checks."""
    if not docs:
        return {}
    first = docs[0]
    conflict = "ON CONFLICT DO NOTHING " if skip_taken else ""
    rows = await conn.fetch(
        f"INSERT INTO {sql.table} ({_COLUMNS}, etag) "
        "SELECT u.id, $1, u.security_group_id, u.data, $2, $2, $3, $3, false, u.etag "
        "FROM unnest($4::uuid[], $5::uuid[], $6::jsonb[], $7::text[]) "
        "WITH ORDINALITY AS u(id, security_group_id, data, etag, ord) ORDER BY u.ord "
        f"{conflict}RETURNING id, ({sql.document})::text",
        first.customer_id,
        first.created,
        first.created_by,
        [doc.id for doc in docs],
        [doc.security_group_id for doc in docs],
        [doc.data for doc in docs],
        etags,
    )
    return {row[0]: row[1] for row in rows}


async def existing_ids(
    conn: asyncpg.Connection, sql: DocumentSql, customer_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of ``ids`` are live documents of the tenant: reference checks for a batch."""
    rows = await conn.fetch(
        f"SELECT id FROM {sql.table} "
        "WHERE customer_id = $1 AND id = ANY($2::uuid[]) AND NOT is_deleted",
        customer_id,
        list(ids),
    )
    return {row[0] for row in rows}
