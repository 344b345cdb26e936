"""AST → PostgreSQL boolean SQL text with asyncpg ``$n`` parameters.

We emit text rather than compile through SQLAlchemy because this is the hot path of
every list request. Two rules keep it safe:

- every value is a bound parameter (``Params.add``), never spliced in;
- the only request text that reaches the SQL is a path segment that passed the
  ``SEGMENT_RE`` allow-list, emitted as a single-quoted jsonb key.

The shapes below (``(data ->> 'status')``, ``(data -> 'a' -> 'b')``) are fixed on
purpose: expression indexes only help when the query repeats them textually.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from polis_api.errors import BadFilter
from polis_api.filtering.ast import (
    And,
    ArrayLiteral,
    Compare,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Range,
    Scalar,
)
from polis_api.filtering.parser import SEGMENT_RE, equality_filter, fail, parse_path

__all__ = [
    "ANY_DATA_PATH",
    "Column",
    "FieldPolicy",
    "Params",
    "compile_filter",
    "compile_sort",
    "embedded_column",
    "equality_filter",
    "resolve_path",
]


class ColumnKind(Enum):
    UUID = "uuid"
    TIMESTAMP = "timestamptz"
    DATA = "jsonb"


# Envelope paths that are real columns, with their SQL name and type.
COLUMNS: dict[str, tuple[str, ColumnKind]] = {
    "/id": ("id", ColumnKind.UUID),
    "/customerId": ("customer_id", ColumnKind.UUID),
    "/securityGroupId": ("security_group_id", ColumnKind.UUID),
    "/meta/created": ("created", ColumnKind.TIMESTAMP),
    "/meta/modified": ("modified", ColumnKind.TIMESTAMP),
    "/meta/createdBy": ("created_by", ColumnKind.UUID),
    "/meta/modifiedBy": ("modified_by", ColumnKind.UUID),
}
ALL_COLUMNS = frozenset(COLUMNS)
# A resource that lists its data paths also gets what sync and paging need, no more.
SYNC_COLUMNS = frozenset({"/id", "/meta/created", "/meta/modified"})

COMPARISON_SQL = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NEGATIONS = {"neq": "eq", "nin": "in"}  # compiled as NOT (eq/in), NULL counting as false
_LIKE_WILDCARDS = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_", "*": "%", "?": "_"})
_SHOWN_VALUE_CHARS = 60
_WIRE_TIMESTAMP = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def embedded_column(at: str) -> str:
    """The SQL column an embedded document (``data.<at>`` of a listed item) is read from."""
    return f"embedded_{at}"


class Params:
    """Bound values in order; ``$n`` numbering continues after the caller's own."""

    def __init__(self, start: list[object] | None = None) -> None:
        self.values: list[object] = list(start or [])

    def add(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """Which paths a resource allows in filters and sorts.

    ``allowed_data_paths=None`` allows any ``/data/...`` path; a set allows exactly
    those (written ``/data/campaignId``). ``allowed_columns=None`` means every
    envelope column with any data path, and only ``SYNC_COLUMNS`` with a set.
    """

    allowed_data_paths: frozenset[str] | None = None
    allowed_columns: frozenset[str] | None = None
    # Documents a listed item embeds at data.<name> (documents.repository.Embed):
    # paths below them read the embedded document's column.
    embedded: frozenset[str] = frozenset()
    # Data paths that hold a list of values (an interaction's qualityFlags): on them
    # `eq x` means "the list holds x", `in [x, y]` "holds x or y", and neq/nin the
    # opposite; ordering and `like` make no sense there and are refused. Served by a
    # GIN index on the path (jsonb containment, `@>`).
    list_paths: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # A typo here would silently forbid a field, so fail at import time instead.
        for text in (self.allowed_data_paths or frozenset()) | self.list_paths:
            segments = text.split("/")
            if segments[:2] != ["", "data"] or len(segments) < 3:
                raise ValueError(f"allowed data path {text!r} must look like /data/name")
            if not all(SEGMENT_RE.fullmatch(segment) for segment in segments[2:]):
                raise ValueError(f"allowed data path {text!r} has a bad segment")
        unreachable = self.list_paths - (self.allowed_data_paths or self.list_paths)
        if unreachable:
            raise ValueError(f"list paths {sorted(unreachable)} are not allowed data paths")
        if self.allowed_columns is not None and not self.allowed_columns <= ALL_COLUMNS:
            raise ValueError(f"unknown columns {sorted(self.allowed_columns - ALL_COLUMNS)}")

    @property
    def columns(self) -> frozenset[str]:
        if self.allowed_columns is not None:
            return self.allowed_columns
        return ALL_COLUMNS if self.allowed_data_paths is None else SYNC_COLUMNS

    def allows_data(self, text: str) -> bool:
        return self.allowed_data_paths is None or text in self.allowed_data_paths

    def allowed_list(self) -> str:
        columns = [text for text in COLUMNS if text in self.columns]
        if self.allowed_data_paths is None:
            return ", ".join([*columns, "/data/..."])
        return ", ".join([*columns, *sorted(self.allowed_data_paths)])


ANY_DATA_PATH = FieldPolicy()


@dataclass(frozen=True, slots=True)
class Column:
    """A resolved, allowed path: an envelope column or a key path inside ``data``."""

    kind: ColumnKind
    name: str  # the SQL column: id, created, ..., data, or an embedded document's column
    keys: tuple[str, ...]  # jsonb keys under that column; () for envelope columns
    text: str  # the path as /a/b, for messages
    position: int
    holds_list: bool = False  # a declared list path (FieldPolicy.list_paths)

    @property
    def jsonb(self) -> str:
        if self.kind is ColumnKind.TIMESTAMP:
            # As the client sees it (`…Z`), so it can meet a timestamp kept in data;
            # to_jsonb would give "...46.771+00:00", never equal to "...46.771Z".
            return f"to_jsonb({_WIRE_TIMESTAMP.format(self.name)})"
        if self.kind is not ColumnKind.DATA:
            return f"to_jsonb({self.name})"
        if self._indexes_arrays:
            return f"({self.name} #> {self._key_array})"
        return f"({self.name}" + "".join(f" -> '{key}'" for key in self.keys) + ")"

    @property
    def as_text(self) -> str:
        if self.kind is not ColumnKind.DATA:
            return f"{self.name}::text"
        if self._indexes_arrays:
            return f"({self.name} #>> {self._key_array})"
        *parents, last = self.keys
        return f"({self.name}" + "".join(f" -> '{key}'" for key in parents) + f" ->> '{last}')"

    @property
    def _indexes_arrays(self) -> bool:
        # `-> '0'` finds only an object key; `#>` also indexes an array, as a JSON
        # Pointer does (/data/lists/0/listId). Other paths keep the `->` shape indexes use.
        return any(key.isdigit() for key in self.keys)

    @property
    def _key_array(self) -> str:
        # Each key quoted, so a segment spelled NULL stays a key; SEGMENT_RE keeps
        # quotes, commas and braces out of them.
        return "'{" + ",".join(f'"{key}"' for key in self.keys) + "}'"

    @property
    def sort_key(self) -> str:
        return self.jsonb if self.kind is ColumnKind.DATA else self.name


# --- paths -------------------------------------------------------------------------


def resolve_path(
    path: Path, policy: FieldPolicy, *, verb: str = "filtered on", operand: bool = False
) -> Column:
    """Map a path to its column, or raise BadFilter if unknown or not allowed here.

    ``operand`` marks a path on the right of an operator, where an unknown one-word
    path is most likely a string value someone forgot to quote.
    """
    return _resolve(path, policy, f"column {path.position}", verb, operand=operand)


def _resolve(
    path: Path, policy: FieldPolicy, where: str, verb: str, *, operand: bool = False
) -> Column:
    if not path.segments:
        raise BadFilter(f"{where}: the path is empty; expected one such as /data/status")
    # Checked again here, not only in the parser: this is where segments become SQL.
    for segment in path.segments:
        if not SEGMENT_RE.fullmatch(segment):
            raise BadFilter(f"{where}: path segment {segment!r} is not allowed")
    text = path.text
    if text in COLUMNS:
        if text not in policy.columns:
            raise _not_allowed(text, policy, where, verb)
        name, kind = COLUMNS[text]
        return Column(kind, name, (), text, path.position)
    if path.segments[0] == "data":
        if len(path.segments) == 1:
            raise BadFilter(f"{where}: name a field under /data, e.g. /data/status")
        if not policy.allows_data(text):
            raise _not_allowed(text, policy, where, verb)
        if path.segments[1] in policy.embedded:
            return _embedded(path, where)
        holds_list = text in policy.list_paths
        return Column(ColumnKind.DATA, "data", path.segments[1:], text, path.position, holds_list)
    unquoted = operand and len(path.segments) == 1
    hint = ' (string values need double quotes: "x")' if unquoted else ""
    raise BadFilter(f"{where}: '{text}' is not a field{hint}; allowed: {policy.allowed_list()}")


def _embedded(path: Path, where: str) -> Column:
    at, keys = path.segments[1], path.segments[2:]
    if not keys:
        raise BadFilter(
            f"{where}: name a field of the embedded document, e.g. /data/{at}/data/... or "
            f"/data/{at}/id"
        )
    return Column(ColumnKind.DATA, embedded_column(at), keys, path.text, path.position)


def _not_allowed(text: str, policy: FieldPolicy, where: str, verb: str) -> BadFilter:
    return BadFilter(f"{where}: '{text}' cannot be {verb} here; allowed: {policy.allowed_list()}")


def compile_sort(path_text: str, direction: str, policy: FieldPolicy) -> str:
    """``("data/name", "asc")`` → ``(data -> 'name') ASC``; ``/data/id`` is the id."""
    where = f"sort path '{path_text}'"
    order = direction.strip().upper()
    if order not in ("ASC", "DESC"):
        raise BadFilter(f"sort direction must be ASC or DESC, found '{direction}'")
    if not path_text.strip():
        raise BadFilter("sort path is empty; expected a path such as /data/name")
    try:
        path = parse_path(path_text.strip())
    except BadFilter as exc:
        raise BadFilter(f"{where}: {exc.detail}") from None
    # Polis clients sort by "/data/id" meaning the document id, which is not in data.
    if path.segments == ("data", "id"):
        path = Path(("id",), path.position)
    return f"{_resolve(path, policy, where, 'sorted by').sort_key} {order}"


# --- boolean structure ---------------------------------------------------------------


def compile_filter(node: Node, policy: FieldPolicy, params: Params) -> str:
    """The WHERE-clause text for ``node``; values are appended to ``params``."""
    match node:
        case And(items):
            return _join([compile_filter(item, policy, params) for item in items], "AND")
        case Or(items):
            return _join([compile_filter(item, policy, params) for item in items], "OR")
        case Not(item):
            return _is_not_true(compile_filter(item, policy, params))
        case Compare():
            return _compile_compare(node, policy, params)


def _join(parts: list[str], keyword: str) -> str:
    if not parts:
        # The identity of the operator, so an empty group changes nothing.
        return "TRUE" if keyword == "AND" else "FALSE"
    return "(" + f" {keyword} ".join(parts) + ")"


def _is_not_true(sql: str) -> str:
    # SQL NULL (a missing field) counts as "not equal", so `neq`/`not` match it.
    return f"(({sql}) IS NOT TRUE)"


def _compile_compare(node: Compare, policy: FieldPolicy, params: Params) -> str:
    column = resolve_path(node.left, policy)
    if node.op == "neq" and isinstance(node.right, Literal) and node.right.value is None:
        return _is_not_nil(column)  # never NULL itself, so a plain negation suffices
    if node.op == "nin" and isinstance(node.right, ArrayLiteral) and not node.right.items:
        return "TRUE"  # `x nin []` holds for every document
    positive = _NEGATIONS.get(node.op)
    if positive is not None:
        return _is_not_true(_positive(column, positive, node, policy, params))
    return _positive(column, node.op, node, policy, params)


def _positive(column: Column, op: str, node: Compare, policy: FieldPolicy, params: Params) -> str:
    if column.holds_list:
        return _list_holds(column, op, node, params)
    match op, node.right:
        case "in", ArrayLiteral() as array:
            return _in_array(column, array, params)
        case "in", Path() as right:
            return _in_path(column, resolve_path(right, policy, operand=True))
        case "between", Range(low, high):
            return _between(column, low, high, params)
        case _, Path() as right if op in COMPARISON_SQL:
            return _path_vs_path(column, op, resolve_path(right, policy, operand=True))
        case _, Literal() as literal if op in COMPARISON_SQL or op == "like":
            return _compare_literal(column, op, literal, params)
    raise fail(node.left.position, f"'{node.op}' cannot take that operand")


# --- list paths: containment -----------------------------------------------------------


def _list_holds(column: Column, op: str, node: Compare, params: Params) -> str:
    """``eq``/``in`` on a list path: whether the list holds the value (or one of them)."""
    match op, node.right:
        case "eq", Literal(value=None):
            return _is_nil(column)
        case "eq", Literal() as literal:
            return _holds(column, literal, params)
        case "in", ArrayLiteral() as array:
            values = [item for item in array.items if item.value is not None]
            parts = [_is_nil(column)] if len(values) < len(array.items) else []
            parts += [_holds(column, item, params) for item in values]
            return _join(parts, "OR") if parts else "FALSE"
    raise fail(
        node.left.position,
        f"'{column.text}' is a list: use eq, neq, in or nin, which test whether it holds "
        f"a value ('{node.op}' cannot)",
    )


def _holds(column: Column, literal: Literal, params: Params) -> str:
    # `list @> [value]`: the shape a GIN index on the path serves.
    return f"{column.jsonb} @> {params.add([_json_value(literal)])}::jsonb"


# --- comparisons with literals -----------------------------------------------------


def _compare_literal(column: Column, op: str, literal: Literal, params: Params) -> str:
    if literal.value is None:
        if op != "eq":
            raise fail(literal.position, f"'{op}' cannot compare with nil; use eq or neq")
        return _is_nil(column)
    if op == "like":
        return _like(column, literal, params)
    symbol = COMPARISON_SQL[op]
    match column.kind:
        case ColumnKind.UUID:
            return f"{column.name} {symbol} {params.add(_uuid(column, literal))}::uuid"
        case ColumnKind.TIMESTAMP:
            return f"{column.name} {symbol} {params.add(_timestamp(column, literal))}::timestamptz"
        case ColumnKind.DATA:
            return _compare_data(column, op, literal, params)


def _compare_data(column: Column, op: str, literal: Literal, params: Params) -> str:
    symbol = COMPARISON_SQL[op]
    value = literal.value
    if isinstance(value, str):
        return f"{column.as_text} {symbol} {params.add(value)}"
    if isinstance(value, bool):  # before the number case: bool is an int subclass
        if op != "eq":
            raise fail(literal.position, f"'{op}' cannot compare booleans; use eq or neq")
        return f"{column.jsonb} = {params.add(value)}::jsonb"
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(literal.position, "NaN and Infinity are not allowed")
    # Guarding the type keeps jsonb's cross-type ordering (strings > numbers) out of it.
    x = column.jsonb
    return f"(jsonb_typeof({x}) = 'number' AND {x} {symbol} {params.add(value)}::jsonb)"


def _is_nil(column: Column) -> str:
    # `eq nil` matches an explicit JSON null and an absent field alike.
    if column.kind is ColumnKind.DATA:
        return f"({column.jsonb} IS NULL OR {column.jsonb} = 'null'::jsonb)"
    return f"{column.name} IS NULL"


def _is_not_nil(column: Column) -> str:
    if column.kind is ColumnKind.DATA:
        return f"({column.jsonb} IS NOT NULL AND {column.jsonb} <> 'null'::jsonb)"
    return f"{column.name} IS NOT NULL"


def _like(column: Column, literal: Literal, params: Params) -> str:
    if not isinstance(literal.value, str):
        raise fail(literal.position, f"'like' needs a \"string\" pattern, found {_shown(literal)}")
    if column.kind is ColumnKind.TIMESTAMP:
        raise fail(column.position, f"'{column.text}' is a timestamp; 'like' needs text")
    pattern = literal.value.translate(_LIKE_WILDCARDS)
    return f"{column.as_text} LIKE {params.add(pattern)}"


def _between(column: Column, low: Literal, high: Literal, params: Params) -> str:
    kinds = {_value_kind(low.value), _value_kind(high.value)}
    if len(kinds) != 1 or kinds & {"boolean", "nil"}:
        raise fail(
            high.position,
            f"between needs two strings or two numbers, found {_shown(low)} and {_shown(high)}",
        )
    lower = _compare_literal(column, "gte", low, params)
    upper = _compare_literal(column, "lte", high, params)
    return f"({lower} AND {upper})"


def _value_kind(value: Scalar) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


# --- in, and path against path ---------------------------------------------------------


def _in_array(column: Column, array: ArrayLiteral, params: Params) -> str:
    values = [item for item in array.items if item.value is not None]
    parts = [_is_nil(column)] if len(values) < len(array.items) else []
    if values:
        parts.append(_in_values(column, values, params))
    if not parts:
        return "FALSE"  # `x in []` holds for no document
    return parts[0] if len(parts) == 1 else _join(parts, "OR")


def _in_values(column: Column, items: list[Literal], params: Params) -> str:
    match column.kind:
        case ColumnKind.UUID:
            bound = [f"{params.add(_uuid(column, item))}::uuid" for item in items]
            return f"{column.name} IN ({', '.join(bound)})"
        case ColumnKind.TIMESTAMP:
            bound = [f"{params.add(_timestamp(column, item))}::timestamptz" for item in items]
            return f"{column.name} IN ({', '.join(bound)})"
        case ColumnKind.DATA:
            if all(isinstance(item.value, str) for item in items):
                bound = [params.add(item.value) for item in items]
                return f"{column.as_text} IN ({', '.join(bound)})"
            bound = [f"{params.add(_json_value(item))}::jsonb" for item in items]
            return f"{column.jsonb} IN ({', '.join(bound)})"


def _json_value(literal: Literal) -> Scalar:
    if isinstance(literal.value, float) and not math.isfinite(literal.value):
        raise fail(literal.position, "NaN and Infinity are not allowed")
    return literal.value


def _in_path(element: Column, array: Column) -> str:
    # jsonb_array_elements raises on a non-array, so guard with CASE (evaluated first).
    # Both operands are allow-listed paths (no request values), hence the noqa.
    b = array.jsonb
    exists = f"EXISTS (SELECT 1 FROM jsonb_array_elements({b}) AS e(v) WHERE e.v = {element.jsonb})"  # noqa: S608
    return f"(CASE WHEN jsonb_typeof({b}) = 'array' THEN {exists} ELSE FALSE END)"


def _path_vs_path(left: Column, op: str, right: Column) -> str:
    symbol = COMPARISON_SQL[op]
    if left.kind is right.kind and left.kind is not ColumnKind.DATA:
        # Two columns of one type compare natively.
        return f"{left.name} {symbol} {right.name}"
    return f"{left.jsonb} {symbol} {right.jsonb}"


# --- typed column values ---------------------------------------------------------------


def _uuid(column: Column, literal: Literal) -> uuid.UUID:
    if isinstance(literal.value, str):
        try:
            return uuid.UUID(literal.value)
        except ValueError:
            pass
    raise fail(
        literal.position,
        f"'{column.text}' is a uuid; expected a quoted uuid such as "
        f'"7d3f2b9e-1c2a-4b5d-9e8f-0a1b2c3d4e5f", found {_shown(literal)}',
    )


def _timestamp(column: Column, literal: Literal) -> datetime:
    if isinstance(literal.value, str):
        text = literal.value
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return _in_utc(column, literal, parsed)
    raise fail(
        literal.position,
        f"'{column.text}' is a timestamp; expected an ISO 8601 string such as "
        f'"2018-09-18T20:12:46.771Z", found {_shown(literal)}',
    )


def _in_utc(column: Column, literal: Literal, moment: datetime) -> datetime:
    """``moment`` in UTC, which must still fall in years 1 to 9999.

    A time without an offset is read as UTC, the API's only time zone. Converted
    here rather than by the driver: "9999-12-31T23:59:59-05:00" is past year 9999 in
    UTC, and the driver's overflow would be a 500 halfway through a statement.
    """
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise fail(
            literal.position,
            f"'{column.text}': {_shown(literal)} is out of range; timestamps must fall "
            "between years 1 and 9999 once converted to UTC",
        ) from None


def _shown(literal: Literal) -> str:
    match literal.value:
        case None:
            return "nil"
        case bool(flag):
            return "true" if flag else "false"
        case str(text) if len(text) > _SHOWN_VALUE_CHARS:
            return f'"{text[:_SHOWN_VALUE_CHARS]}…"'
        case str(text):
            return f'"{text}"'
        case number:
            return str(number)
