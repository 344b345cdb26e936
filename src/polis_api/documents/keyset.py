"""Keyset paging (docs/api.md, Paging): ``meta.next`` continues a list where its page ended.

``skip`` makes the database walk past every skipped row, so page 2,000 costs 2,000
pages; a keyset token instead names the last row's sort values, and the next page
starts right after them, as cheap as the first. A token is opaque to clients: urlsafe
base64 of JSON holding a version, a digest of the query it belongs to (filter, sort
and scope, so it cannot continue a different list), and each sort key's value as
text with its PostgreSQL type. Types come from a fixed set, so a forged token can
only name a value, never SQL.

NULLs follow PostgreSQL's default order (last ascending, first descending), so
"after" is spelt out per key rather than as one row comparison.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from polis_api import jsoncodec
from polis_api.errors import ValidationFailed
from polis_api.filtering.to_sql import Params

_VERSION = 1
# The types a sort key can have (data paths are jsonb; columns are uuid or timestamptz).
_TYPES = frozenset(
    {"jsonb", "text", "uuid", "timestamp with time zone", "boolean", "numeric", "bigint"}
)


@dataclass(frozen=True, slots=True)
class SortKey:
    expression: str
    descending: bool
    # Envelope columns are never NULL; leaving out the NULL arm keeps id > $n an index range.
    nullable: bool = True

    @classmethod
    def from_order_term(cls, term: str) -> SortKey:
        """``(data -> 'name') DESC`` or ``id ASC``, as compile_sort writes them."""
        expression, direction = term.rsplit(" ", 1)
        return cls(expression, direction == "DESC", nullable=not expression.isidentifier())


@dataclass(frozen=True, slots=True)
class Keyset:
    """How a list is ordered, and which query a token for it must come from."""

    keys: tuple[SortKey, ...]
    digest: str
    max_length: int

    @property
    def columns(self) -> str:
        """Each sort value as text with its type: what a page selects beside each row."""
        return ", ".join(
            f"({key.expression})::text, pg_typeof({key.expression})::text" for key in self.keys
        )

    def token_after(self, selected: Sequence[str | None]) -> str | None:
        """The token after a row, from its ``columns``; None when too long to send
        (a huge sort value): the client then pages with skip."""
        values = [[selected[2 * n + 1], selected[2 * n]] for n in range(len(self.keys))]
        packed = jsoncodec.dumps([_VERSION, self.digest, values]).encode()
        token = base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")
        return token if len(token) <= self.max_length else None


def keyset_for(
    keys: Sequence[SortKey], where: str, params: Sequence[Any], max_length: int
) -> Keyset:
    # The bound values as text: the same filter with another value is another list.
    values = repr([str(value) for value in params])
    text = "\x00".join([*(f"{k.expression} {k.descending}" for k in keys), where, values])
    return Keyset(tuple(keys), hashlib.sha256(text.encode()).hexdigest()[:24], max_length)


def after_predicate(keyset: Keyset, token: str, bound: Params) -> str:
    """The WHERE condition for "every row after the one ``token`` names"."""
    values = _decode(token, keyset)
    clauses = []
    for index, key in enumerate(keyset.keys):
        beyond = _beyond(key, values[index], bound)
        if beyond is None:
            continue
        same = [_equal(keyset.keys[j], values[j], bound) for j in range(index)]
        clauses.append("(" + " AND ".join([*same, beyond]) + ")")
    return "(" + " OR ".join(clauses) + ")" if clauses else "FALSE"


def _decode(token: str, keyset: Keyset) -> list[tuple[str, str | None]]:
    max_length = keyset.max_length
    if len(token) > max_length:
        raise ValidationFailed(
            f"'after' is {len(token)} characters long; a page token is at most {max_length} "
            "(POLIS_MAX_PAGE_TOKEN_LENGTH). Send meta.next exactly as it came."
        )
    try:
        version, digest, values = jsoncodec.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        )
        pairs = [(str(kind), None if text is None else str(text)) for kind, text in values]
    except (binascii.Error, ValueError, TypeError):
        version, digest, pairs = None, None, []
    if version != _VERSION:
        raise ValidationFailed("'after' is not a page token this server issued; send meta.next.")
    if digest != keyset.digest:
        raise ValidationFailed(
            "'after' continues a different list: send it with the same filter, sort and "
            "route as the page that gave it."
        )
    if len(pairs) != len(keyset.keys) or any(kind not in _TYPES for kind, _ in pairs):
        raise ValidationFailed("'after' is not a page token this server issued; send meta.next.")
    return pairs


def _value(value: tuple[str, str | None], bound: Params) -> str:
    kind, text = value
    # Bound as text, then cast: a jsonb parameter would go through the JSON codec and
    # arrive as a JSON string of the value's text.
    return f"{bound.add(text)}::text::{kind}"


def _equal(key: SortKey, value: tuple[str, str | None], bound: Params) -> str:
    if value[1] is None:
        return f"({key.expression}) IS NULL"
    return f"({key.expression}) = {_value(value, bound)}"


def _beyond(key: SortKey, value: tuple[str, str | None], bound: Params) -> str | None:
    """Rows strictly after ``value`` in this key's order; None when none can be."""
    if value[1] is None:
        # Ascending, NULLs come last: nothing is after them. Descending, they come first.
        return f"({key.expression}) IS NOT NULL" if key.descending else None
    if key.descending:
        return f"({key.expression}) < {_value(value, bound)}"
    after = f"({key.expression}) > {_value(value, bound)}"
    return f"({after} OR ({key.expression}) IS NULL)" if key.nullable else after
