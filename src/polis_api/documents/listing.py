"""List parameters (docs/api.md, Lists): both filter spellings, limit/skip, both sort spellings,
after= for keyset pages (documents/keyset.py) and since= for the change feed (docs/sync.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from polis_api import jsoncodec
from polis_api.config import Settings
from polis_api.documents.feed import SyncToken, token_since
from polis_api.documents.geo import GEO_PARAMETERS, Geo, geo_where, nearest_first, parse_geo
from polis_api.documents.keyset import Keyset, SortKey, after_predicate, keyset_for
from polis_api.documents.repository import ListQuery
from polis_api.documents.representations import GEOJSON, JSON, Representation
from polis_api.documents.visibility import VisibleTo
from polis_api.errors import BadFilter, ValidationFailed
from polis_api.filtering.ast import And, Node
from polis_api.filtering.parser import parse_filter
from polis_api.filtering.to_sql import (
    ANY_DATA_PATH,
    FieldPolicy,
    Params,
    compile_filter,
    compile_sort,
    equality_filter,
)

# JavaScript's Number.MAX_SAFE_INTEGER: what the Polis mobile app sends for "all".
LIMIT_ALL = 9007199254740991
DEFAULT_LIMIT = 100
_DIRECTIONS = {"ASC", "DESC"}
_KNOWN = {"filter", "limit", "skip", "sort", "count", "since"}
# A feed comes in change order from a position, so these list options make no sense there
# (nor bbox/near: a document leaving the box would never reach the phone as a change).
_NOT_WITH_SINCE = ("skip", "sort", "count", "after")
_DIGITS = re.compile(r"[0-9]{1,20}")


def _query_parameter(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# OpenAPI for the list parameters, which are read from the raw query string (the
# bracket form's keys are open-ended, so FastAPI cannot declare them itself).
LIST_PARAMETERS = [
    _query_parameter(
        "filter",
        {"type": "string", "maxLength": 4096},
        'An expression, e.g. /data/status eq "complete". Also filter[/data/field]=value.',
    ),
    _query_parameter(
        "limit",
        {"type": "integer", "minimum": 0, "maximum": LIMIT_ALL, "default": DEFAULT_LIMIT},
        f"Page size; {LIMIT_ALL} means all (streamed).",
    ),
    _query_parameter("skip", {"type": "integer", "minimum": 0, "default": 0}, "Offset."),
    _query_parameter(
        "sort",
        {"type": "array", "items": {"type": "string"}},
        'JSON ["data/name","ASC"] or repeated sort=/data/name&sort=DESC; ties by id.',
    ),
    _query_parameter("count", {"type": "boolean", "default": False}, "Add meta.total."),
    _query_parameter(
        "since",
        {"type": "string"},
        "The change feed: documents created, changed or deleted (as tombstones, "
        "meta.isDeleted true) after this sync token, in change order, each once in its "
        "latest version. Empty: from the beginning. Send meta.next as the next since; "
        "call again at once while meta.more is true. Pages of at most the maximum page "
        "size; filter applies; skip, sort and count are refused. 410 SYNC_TOKEN_EXPIRED: "
        "sync again from an empty since.",
    ),
]


# OpenAPI for the lists of documents on the map (docs/geography.md).
# Only where service.list_page answers (the generic list routes): it gives meta.next.
AFTER_PARAMETER = _query_parameter(
    "after",
    {"type": "string", "maxLength": 2048},
    "Continue after the full page whose meta.next this is (same filter, sort and limit).",
)
GEO_LIST_PARAMETERS = [
    _query_parameter(
        "bbox",
        {"type": "string"},
        "swLat,swLng,neLat,neLng: only documents inside the box (edges included); "
        "swLng > neLng is a box across the antimeridian.",
    ),
    _query_parameter(
        "near",
        {"type": "string"},
        "lat,lng: nearest first (unless sort is given); only documents with coordinates.",
    ),
    _query_parameter(
        "radius",
        {"type": "number", "exclusiveMinimum": 0},
        "With near: only documents within this many miles (great-circle); at most "
        "POLIS_MAX_NEAR_RADIUS_MILES.",
    ),
]


@dataclass(frozen=True, slots=True)
class ListRequest:
    query: ListQuery
    count: bool
    stream: bool
    # With since=: a change feed page continuing from this token (None: from the start).
    feed: bool = False
    since: SyncToken | None = None
    representation: Representation = JSON


class RecentLists:
    """The list requests parsed lately, by everything their parse depends on.

    Phones ask for the same lists again and again (a campaign's first page, the page
    after the same token), and parsing the parameters into SQL (filter, sort, the
    page token's check) was a fifth of a page's Python. A parse is a pure function of
    its inputs, except a change feed's (its token ages), so every other result is
    kept, up to ``size`` of them, the oldest dropped first. Refusals are not kept: a
    bad request is parsed, and refused, each time. Nor are long query strings (a
    large filter): memory stays bounded by ``size`` short ones, whatever clients send.
    """

    def __init__(self, size: int = 512, max_query_bytes: int = 1024) -> None:
        self._size = size
        self._max_query_bytes = max_query_bytes
        self._kept: dict[Hashable, ListRequest] = {}

    def parsed(
        self, query: bytes, context: Hashable, parse: Callable[[], ListRequest]
    ) -> ListRequest:
        """The request kept for this query string in this ``context`` (the caller,
        the route, the representation), else ``parse()``'s, kept unless a feed."""
        if len(query) > self._max_query_bytes:
            return parse()
        key = (query, context)
        found = self._kept.get(key)
        if found is not None:
            return found
        listing = parse()
        if not listing.feed:
            if len(self._kept) >= self._size:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = listing
        return listing


def parse_list_request(
    params: QueryParams,
    policy: FieldPolicy,
    settings: Settings,
    customer_id: uuid.UUID,
    scope: dict[str, str] | None = None,
    scope_filter: Node | None = None,
    *,
    geo: Geo | None = None,
    representation: Representation = JSON,
    visible: VisibleTo | None = None,
    keyset_paging: bool = False,
) -> ListRequest:
    """``scope`` and ``scope_filter`` are what the route implies (a campaign's records,
    a campaign's statuses), applied before and beside the client's own filter.

    ``geo`` is the resource's place on the map, when it has one: the list then takes
    bbox=, near= and radius= (docs/geography.md).

    ``visible`` limits a restricted caller to its assigned rows (docs/visibility.md).

    ``keyset_paging``: the route answers pages through ``service.list_page``, which
    gives ``meta.next``; it then takes ``after=`` too.
    """
    known = _KNOWN | set(GEO_PARAMETERS) if geo is not None else _KNOWN
    if keyset_paging:
        known = known | {"after"}
    since = _since(params, representation)
    bound = Params([customer_id])
    # A feed includes deleted documents: they are the tombstones a phone must see.
    where = "customer_id = $1" if since is not None else "customer_id = $1 AND NOT is_deleted"
    for path, value in (scope or {}).items():
        where += f" AND {compile_filter(equality_filter(path, value), ANY_DATA_PATH, bound)}"
    if scope_filter is not None:
        where += f" AND {compile_filter(scope_filter, ANY_DATA_PATH, bound)}"
    if visible is not None:
        where += f" AND {visible.where(bound)}"
    node = _filter_node(params, settings, known)
    if node is not None:
        where += f" AND {compile_filter(node, policy, bound)}"
    limit = _non_negative_int(params, "limit", DEFAULT_LIMIT)
    if since is not None:
        return _feed_request(since, where, bound, limit, settings, representation)
    skip = _non_negative_int(params, "skip", 0)
    terms = _order_terms(params.getlist("sort"), policy, settings.max_sort_terms)
    order_by = ", ".join(terms)
    located = geo is not None and (
        representation is GEOJSON or any(name in params for name in GEO_PARAMETERS)
    )
    nearest = False
    if geo is not None and located:
        wanted = parse_geo(params, settings.max_near_radius_miles)
        where += f" AND {geo_where(geo, wanted, bound)}"
        if wanted is not None and wanted.near is not None and not params.getlist("sort"):
            order_by, nearest = nearest_first(geo, wanted.near, bound), True
    keyset = None
    if keyset_paging and not nearest:
        keys = [SortKey.from_order_term(term) for term in terms]
        keyset = keyset_for(keys, where, bound.values, settings.max_page_token_length)
        where = _continue_after(params, keyset, where, bound, skip)
    elif "after" in params:
        raise ValidationFailed("'after' cannot continue a list sorted by near=; page it with skip.")
    return ListRequest(
        query=ListQuery(
            where=where,
            order_by=order_by,
            params=bound.values,
            limit=limit,
            skip=skip,
            located=located,
            keyset=keyset,
        ),
        count=_boolean(params, "count"),
        # Beyond one page a client wants "everything": stream it rather than buffer.
        stream=limit > settings.max_page_size,
        representation=representation,
    )


def _since(params: QueryParams, representation: Representation) -> str | None:
    values = params.getlist("since")
    if len(values) > 1:
        raise ValidationFailed("Send at most one 'since' token.")
    if values:
        if representation is GEOJSON:
            raise ValidationFailed(
                "'since' answers JSON or CSV; the change feed is not offered as "
                f"{representation.media_type}."
            )
        for name in (*_NOT_WITH_SINCE, *GEO_PARAMETERS):
            if name in params:
                raise ValidationFailed(
                    f"'{name}' cannot be combined with 'since': a change feed comes in "
                    "change order and is paged by meta.next."
                )
    return values[0] if values else None


def _feed_request(
    since: str,
    where: str,
    bound: Params,
    limit: int,
    settings: Settings,
    representation: Representation,
) -> ListRequest:
    token = token_since(since, settings.tombstone_days, datetime.now(UTC))
    # Never streamed: a larger limit (the app's "all" included) gets one full page,
    # and meta.more tells the client to call again.
    query = ListQuery(
        where=where,
        order_by="txid, id",
        params=bound.values,
        limit=min(limit, settings.max_page_size),
        skip=0,
    )
    return ListRequest(
        query=query,
        count=False,
        stream=False,
        feed=True,
        since=token,
        representation=representation,
    )


def _filter_node(params: QueryParams, settings: Settings, known: set[str]) -> Node | None:
    clauses: list[Node] = []
    expressions = params.getlist("filter")
    if len(expressions) > 1:
        raise BadFilter("Send at most one 'filter' expression; combine clauses with 'and'.")
    for text in expressions:
        clauses.append(
            parse_filter(
                text,
                max_length=settings.max_filter_length,
                max_clauses=settings.max_filter_clauses,
                max_depth=settings.max_filter_depth,
            )
        )
    for key, value in params.multi_items():
        if key.startswith("filter[") and key.endswith("]"):
            clauses.append(equality_filter(key[len("filter[") : -1], value))
        elif key not in known and key.startswith("filter"):
            raise BadFilter(f"Unknown list parameter '{key}'; use filter[/data/field]=value.")
        elif key not in known:
            # A typo such as "limt=" or "srot=" must not silently be ignored.
            extra = ", bbox, near, radius" if "bbox" in known else ""
            raise ValidationFailed(
                f"Unknown list parameter {key!r}; lists take filter, filter[/data/field], "
                f"limit, skip, sort, count{extra} and since."
            )
    if len(clauses) > settings.max_filter_clauses:
        raise BadFilter(f"At most {settings.max_filter_clauses} filter clauses are allowed.")
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


def _continue_after(
    params: QueryParams, keyset: Keyset, where: str, bound: Params, skip: int
) -> str:
    """``where`` narrowed to the rows after the ``after=`` token, when one is sent."""
    values = params.getlist("after")
    if not values:
        return where
    if len(values) > 1:
        raise ValidationFailed("Send at most one 'after' token.")
    if skip:
        raise ValidationFailed("'after' and 'skip' cannot be combined: 'after' is the position.")
    predicate = after_predicate(keyset, values[0], bound)
    return f"{where} AND {predicate}"


def _order_terms(values: list[str], policy: FieldPolicy, max_terms: int) -> list[str]:
    """``sort=["data/name","ASC"]`` or ``sort=/data/name&sort=ASC``; ties broken by id.

    At most ``max_terms`` paths (POLIS_MAX_SORT_TERMS): each is an ORDER BY key, and
    past a few they only cost the database work without changing the order.
    """
    pairs = _sort_pairs(_sort_tokens(values))
    if len(pairs) > max_terms:
        raise BadFilter(
            f"sort: {len(pairs)} sort keys given; at most {max_terms} are allowed "
            "(each path counts once, with or without its direction)."
        )
    terms: list[str] = []
    for number, (path, direction) in enumerate(pairs):
        try:
            terms.append(compile_sort(path, direction or "ASC", policy))
        except BadFilter:
            # A bare word where a direction could stand is a misspelt direction.
            previous = pairs[number - 1] if number else None
            if previous and previous[1] is None and direction is None and "/" not in path:
                raise BadFilter(
                    f"sort: expected ASC or DESC after '{previous[0]}', found '{path}'."
                ) from None
            raise
    if not any(term.startswith("id ") for term in terms):
        terms.append("id ASC")
    return terms


def _sort_pairs(tokens: list[str]) -> list[tuple[str, str | None]]:
    """Each path with the direction that follows it, or None when none does."""
    pairs: list[tuple[str, str | None]] = []
    index = 0
    while index < len(tokens):
        path = tokens[index]
        if path.upper() in _DIRECTIONS:
            raise BadFilter(f"sort: '{path}' must follow a path, e.g. sort=/data/name&sort=ASC.")
        direction = tokens[index + 1].upper() if index + 1 < len(tokens) else None
        if direction in _DIRECTIONS:
            pairs.append((path, direction))
            index += 2
        else:
            pairs.append((path, None))
            index += 1
    return pairs


def _sort_tokens(values: list[str]) -> list[str]:
    tokens: list[str] = []
    for value in values:
        if value.lstrip().startswith("["):
            tokens.extend(_json_sort(value))
        elif value.strip():
            tokens.append(value.strip())
    return tokens


def _json_sort(value: str) -> list[str]:
    try:
        parsed = jsoncodec.loads(value)
    except ValueError as exc:
        raise BadFilter(f'sort: {value!r} is not a JSON array like ["data/name","ASC"].') from exc
    flat: list[str] = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        items = item if isinstance(item, list) else [item]
        if not all(isinstance(part, str) for part in items):
            raise BadFilter("sort: every entry must be a string (a path or ASC/DESC).")
        flat.extend(items)
    return flat


def _non_negative_int(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    # Only ASCII digits: int() alone would also take "+5", " 5", "1_0" and non-ASCII digits.
    value = int(raw) if _DIGITS.fullmatch(raw) else -1
    if value < 0 or value > LIMIT_ALL:
        raise ValidationFailed(
            f"'{name}' must be a whole number from 0 to {LIMIT_ALL}; got {raw!r}."
        )
    return value


def _boolean(params: QueryParams, name: str) -> bool:
    raw = (params.get(name) or "false").lower()
    if raw not in {"true", "false", "1", "0"}:
        raise ValidationFailed(f"'{name}' must be true or false; got {raw!r}.")
    return raw in {"true", "1"}
