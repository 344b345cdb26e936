"""Lists as CSV (``Accept: text/csv``, docs/exports.md): every list route offers it.

The header goes out before the first row, so every column must be known first. The
fixed ones come from the resource's data model (documents/csv_columns.py); the keys
of its open parts (``Resource.csv_open``) from one query over the same rows, run in
the list's own snapshot: for a page, the page's documents; for a stream, the whole
filtered set. More columns than ``POLIS_MAX_CSV_COLUMNS`` is a 400 before anything
is sent. PostgreSQL then writes each row as a CSV line, as it writes JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import asyncpg

from polis_api.documents import repository as repo
from polis_api.documents.csv_columns import (
    Column,
    OpenCells,
    cells_sql,
    data_cell_sql,
    header_line,
    leaves_sql,
    line_sql,
    model_columns,
)
from polis_api.documents.feed import feed_start
from polis_api.documents.representations import Representation
from polis_api.errors import ApiError

if TYPE_CHECKING:
    from polis_api.documents.listing import ListRequest
    from polis_api.documents.resource import Resource

MEDIA_TYPE = "text/csv"


class CsvTooWide(ApiError):
    status = 400
    code = "CSV_TOO_WIDE"
    title = "The CSV would have too many columns"


def _meta_cells(feed: bool) -> list[tuple[str, str]]:
    """The envelope's columns: a feed may hold tombstones, so it says when each went."""
    cells = [
        ("id", "id::text"),
        ("meta.created", repo.timestamp_sql("created")),
        ("meta.modified", repo.timestamp_sql("modified")),
    ]
    if feed:
        deleted = f"CASE WHEN is_deleted THEN {repo.timestamp_sql('modified')} ELSE '' END"
        cells.append(("meta.deleted", deleted))
    return cells


@cache
def offer(max_columns: int) -> Representation:
    """The CSV representation, as negotiated; the rows' own one is built per list.

    One per setting rather than one per request: every list offers it, whatever it is asked.
    """

    async def resolve(
        conn: asyncpg.Connection, resource: Resource, request: ListRequest
    ) -> Representation:
        return await _for_rows(conn, resource, request, max_columns)

    return Representation(
        MEDIA_TYPE,
        _unresolved,
        "",
        _no_closing,
        separator="",
        resolve=resolve,
        attachment="csv",
    )


async def _for_rows(
    conn: asyncpg.Connection, resource: Resource, request: ListRequest, max_columns: int
) -> Representation:
    meta = _meta_cells(request.feed)
    columns = model_columns(resource.data_model, resource.csv_open)
    found = await _open_columns(conn, resource, request, max_columns, len(meta) + len(columns))
    names = [name for name, _ in meta] + [column.name for column in columns + found]
    fixed = [cell for _, cell in meta] + [data_cell_sql(column) for column in columns]
    if not found:
        return _csv(names, line_sql(fixed))
    leaves = " || ".join(f"E'\\x1f' || {leaves_sql(part)}" for part in resource.csv_open)
    cells = OpenCells(resource.csv_open, found)
    return _csv(names, f"({cells_sql(fixed)} || {leaves})", cells.line)


def _csv(names: list[str], line: str, finish: Callable[[str], str] | None = None) -> Representation:
    return Representation(
        MEDIA_TYPE,
        lambda sql: line,
        header_line(names),
        _no_closing,
        separator="",
        attachment="csv",
        finish=finish,
    )


async def _open_columns(
    conn: asyncpg.Connection,
    resource: Resource,
    request: ListRequest,
    max_columns: int,
    fixed: int,
) -> list[Column]:
    """The columns of the open parts' keys; 400 when, with the ``fixed`` ones, they
    would be more than ``max_columns``."""
    room = max_columns - fixed
    found: list[Column] = []
    if room < 0:
        raise _too_wide(max_columns, fixed)
    for part in resource.csv_open:
        keys = await repo.open_keys(
            conn,
            resource.sql,
            request.query,
            part.at,
            part.depth,
            page=not request.stream,
            limit=room - len(found) + 1,
            after=feed_start(request.since) if request.feed else None,
        )
        found += [part.column(key) for key in keys]
        if len(found) > room:
            raise _too_wide(max_columns, fixed)
    return found


def _too_wide(max_columns: int, fixed: int) -> CsvTooWide:
    return CsvTooWide(
        f"This list as CSV would have more than {max_columns} columns ({fixed} from the "
        f"data model, the rest for the keys its documents hold); at most {max_columns} "
        "are allowed (POLIS_MAX_CSV_COLUMNS). Narrow it with a filter, or ask for JSON."
    )


def _unresolved(sql: repo.DocumentSql) -> str:
    raise AssertionError("the CSV representation is resolved in the list's snapshot")


def _no_closing(meta: str) -> str:
    return ""
