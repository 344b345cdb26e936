"""The columns of a CSV list and how one cell is written (docs/exports.md); pure.

A row is ``id``, the ``meta`` times and the document's ``data`` flattened: a nested
object becomes dotted columns (``address.coords.lat``), anything else (a scalar, an
array, an object the data model leaves open) is one column. The fixed columns come
from the resource's data model, so they are known before any row is read; the keys
of its declared open parts (an interaction's survey responses, a contact's own
fields) are found by one query in the list's snapshot (documents/csv_export.py).

Cells: a JSON string is always quoted (RFC 4180, quotes doubled) and, when it
begins with ``= + - @``, a tab or a carriage return, prefixed with ``'`` so that a
spreadsheet shows it as text instead of running it as a formula (OWASP, "CSV
Injection"). Numbers and booleans are written bare: they cannot start a formula,
and a spreadsheet should see ``-3`` as a number. Arrays and objects are written as
their compact JSON text (quoted); null and an absent field as an empty cell.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from polis_api import jsoncodec

# The characters a spreadsheet takes as the start of a formula, and the two that
# can hide one after them (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = re.compile(r"^[-=+@\t\r]")
LINE_END = "\r\n"  # RFC 4180 §2.1


@dataclass(frozen=True, slots=True)
class OpenPart:
    """A part of ``data`` whose keys the data model leaves open: each key found in the
    listed documents becomes columns ``<prefix>.<key>...``, down to ``depth`` levels
    (a value that is not an object stops the path early)."""

    at: tuple[str, ...]  # ("survey", "responses")
    prefix: str  # "survey": columns survey.<questionId>.<field>
    depth: int = 1

    def column(self, keys: Sequence[str]) -> Column:
        expanded = len(keys) < self.depth  # an object here had its keys found too
        return Column(f"{self.prefix}.{'.'.join(keys)}", (*self.at, *keys), expanded)


@dataclass(frozen=True, slots=True)
class Column:
    """One data column: its header and the path of its value inside ``data``.

    ``expanded``: the column of an open part, where an object value has columns of its
    own (deeper keys), so the cell is left empty rather than repeating them as JSON.
    """

    name: str
    path: tuple[str, ...]
    expanded: bool = False


def model_columns(model: type[BaseModel], open_parts: Iterable[OpenPart] = ()) -> list[Column]:
    """The data columns the model declares, in its field order; an open part's own
    column is left out (its keys become columns once they are known)."""
    schema = model.model_json_schema()
    skipped = {part.at for part in open_parts}
    columns: list[Column] = []
    _walk(schema, schema.get("$defs", {}), (), skipped, columns)
    return columns


def _walk(
    node: dict[str, Any],
    defs: dict[str, Any],
    path: tuple[str, ...],
    skipped: set[tuple[str, ...]],
    columns: list[Column],
) -> None:
    for name, field in node.get("properties", {}).items():
        at = (*path, name)
        if at in skipped:
            continue
        nested = _nested_object(field, defs)
        if nested is None:
            columns.append(Column(".".join(at), at))
        else:
            _walk(nested, defs, at, skipped, columns)


def _nested_object(field: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a nested model (optional or not); None for anything else."""
    field = _resolved(field, defs)
    options = [option for option in field.get("anyOf", ()) if option.get("type") != "null"]
    if len(options) == 1:
        field = _resolved(options[0], defs)
    closed = field.get("additionalProperties") in (None, False)
    if field.get("type") == "object" and field.get("properties") and closed:
        return field
    return None


def _resolved(field: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    reference = field.get("$ref")
    if isinstance(reference, str):
        resolved: dict[str, Any] = defs[reference.rsplit("/", 1)[-1]]
        return resolved
    return field


def text_cell(text: str) -> str:
    """A text value as a CSV cell: neutralised, then quoted (the rule above)."""
    if _FORMULA_START.match(text):
        text = "'" + text
    return '"' + text.replace('"', '""') + '"'


def header_line(names: Iterable[str]) -> str:
    """The header row. Names hold keys clients chose (question ids, field names), so
    they get the same treatment as any text cell."""
    return ",".join(text_cell(name) for name in names) + LINE_END


# The rendering in SQL: the same rule, applied by PostgreSQL to each row.


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted_sql(text: str) -> str:
    return f"('\"' || replace({text}, '\"', '\"\"') || '\"')"


def _text_cell_sql(text: str) -> str:
    # regexp_replace: the value is read once; E'' so PostgreSQL sees a real tab and CR.
    neutralised = f"regexp_replace({text}, E'^([-=+@\\t\\r])', '''\\1')"
    return _quoted_sql(neutralised)


def json_cell_sql(value: str, *, expanded: bool = False) -> str:
    """SQL for one cell from a jsonb expression; never NULL, so a row never loses one."""
    as_json = _quoted_sql(f"({value})::text")
    objects = "''" if expanded else as_json
    string = _text_cell_sql(f"({value} #>> '{{}}')")
    return (
        f"CASE jsonb_typeof({value}) WHEN 'string' THEN {string} "
        f"WHEN 'number' THEN ({value})::text WHEN 'boolean' THEN ({value})::text "
        f"WHEN 'object' THEN {objects} WHEN 'array' THEN {as_json} ELSE '' END"
    )


def data_cell_sql(column: Column) -> str:
    path = "{" + ",".join(_path_element(key) for key in column.path) + "}"
    return json_cell_sql(f"data #> {sql_literal(path)}", expanded=column.expanded)


def _path_element(key: str) -> str:
    """A key inside a PostgreSQL text[] literal: quoted, with \\ and " escaped."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cells_sql(cells: Sequence[str]) -> str:
    """SQL joining cell expressions with commas (no line end). One array_to_string,
    not a chain of ||, which would copy the growing line once per cell."""
    return f"array_to_string(ARRAY[{', '.join(cells)}], ',')"


def line_sql(cells: Sequence[str]) -> str:
    """SQL for a whole CSV line (its line end included) from cell expressions."""
    return f"({cells_sql(cells)} || E'\\r\\n')"


# An open part's cells. Probing every found key in every row (hundreds of survey
# columns, a few answered per row) cost a path lookup per column per row; instead
# PostgreSQL lists each row's own leaves with their cells already written, and Python
# puts them in their columns (OpenCells).

# Between a row's fixed cells and each open part's leaves. The leaves are JSON text,
# which never holds a raw control character, so the last separators are found from
# the right whatever the fixed cells hold.
PART_SEPARATOR = "\x1f"


def leaves_sql(part: OpenPart) -> str:
    """SQL: this row's leaves under ``part`` as JSON text ``[[[k1, k2, null], cell],
    ...]``, walked as the keys were found (``repository.open_keys_sql``)."""
    at = sql_literal("{" + ",".join(_path_element(key) for key in part.at) + "}")
    joins = [
        f"jsonb_each(CASE WHEN jsonb_typeof(data #> {at}) = 'object' THEN data #> {at} END) AS k1"
    ]
    for n in range(2, part.depth + 1):
        outer = f"k{n - 1}.value"
        joins.append(
            f"LEFT JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof({outer}) = 'object' "
            f"THEN {outer} END) AS k{n} ON true"
        )
    levels = range(part.depth, 0, -1)
    value = "coalesce(" + ", ".join(f"k{n}.value" for n in levels) + ")"
    keys = ", ".join(f"k{n}.key" for n in range(1, part.depth + 1))
    # Above the deepest level, an object was walked into: its keys have the columns.
    walked = f"k{part.depth}.key IS NULL AND jsonb_typeof({value}) = 'object'"
    cell = f"CASE WHEN {walked} THEN '' ELSE {json_cell_sql(value)} END"
    # Every name here is written by code; the keys are read from the row itself.
    pairs = f"json_agg(json_build_array(json_build_array({keys}), {cell}))"
    return f"coalesce((SELECT {pairs}::text FROM {' '.join(joins)}), '[]')"  # noqa: S608


class OpenCells:
    """Puts each row's open leaves (``leaves_sql``) in their columns."""

    def __init__(self, parts: Sequence[OpenPart], columns: Sequence[Column]) -> None:
        self._parts = len(parts)
        self._width = len(columns)
        self._index: dict[tuple[int, tuple[str, ...]], int] = {}
        for position, column in enumerate(columns):
            for number, part in enumerate(parts):
                if column.path[: len(part.at)] == part.at:
                    self._index[(number, column.path[len(part.at) :])] = position

    def line(self, row: str) -> str:
        """The whole CSV line from a row: fixed cells, then each part's leaves."""
        fixed, *parts = row.rsplit(PART_SEPARATOR, self._parts)
        cells = [""] * self._width
        for number, leaves in enumerate(parts):
            for path, cell in jsoncodec.loads(leaves):
                at = self._index.get((number, tuple(key for key in path if key is not None)))
                if at is not None:  # always, within the snapshot the keys were found in
                    cells[at] = cell
        return fixed + "," + ",".join(cells) + LINE_END
