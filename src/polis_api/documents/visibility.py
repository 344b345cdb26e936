"""Assigned-only visibility (docs/visibility.md): which rows a restricted caller reads.

A tenant may switch ``viewUnassignedData`` off (``/v1/settings``). Then a token whose
roles are only canvasser and/or viewer reads the documents of a resource that declares a
``Visibility`` only where the declared condition holds for its ``sub``; every other row
is simply absent, so gets answer 404 and lists, feeds and maps leave it out.

The tenant's setting is read in the same statement as the rows (a primary-key lookup
PostgreSQL evaluates once per statement), so there is no cache to go stale and the
check costs nothing for callers it does not apply to: their SQL has no such clause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from polis_api.auth import Principal
from polis_api.filtering.to_sql import Params

# True when the tenant ($1) lets everyone read unassigned data (the Polis default).
_UNASSIGNED_VISIBLE = (
    "coalesce((SELECT (s.data ->> 'viewUnassignedData')::boolean FROM tenant_settings AS s "
    "WHERE s.customer_id = $1), true)"
)


@dataclass(frozen=True, slots=True)
class Visibility:
    """How a resource's rows relate to what a caller was assigned.

    ``condition(row, sub)`` is an SQL condition on one row, qualified by ``row`` (the
    table's name or alias), with ``sub`` the parameter holding the caller's ``sub`` as
    text and ``$1`` the tenant. Written by code in resources/, never from a request.
    """

    condition: Callable[[str, str], str]

    def clause(self, row: str, sub: str) -> str:
        """The condition, or nothing to check when the tenant shows unassigned data."""
        return f"({_UNASSIGNED_VISIBLE} OR {self.condition(row, sub)})"


def restricted(visibility: Visibility | None, principal: Principal) -> Visibility | None:
    """The rule that applies to this caller, or None when it reads everything."""
    if visibility is None or not principal.assigned_only:
        return None
    return visibility


@dataclass(frozen=True, slots=True)
class VisibleTo:
    """A resource's rule bound to one restricted caller."""

    visibility: Visibility
    sub: str
    row: str  # what the rows go by in the statement: the resource's table name

    def where(self, bound: Params) -> str:
        return self.visibility.clause(self.row, bound.add(self.sub))


def visible_to(visibility: Visibility | None, principal: Principal, row: str) -> VisibleTo | None:
    """What a list or get of this resource must add for this caller (None: nothing)."""
    rule = restricted(visibility, principal)
    return VisibleTo(rule, str(principal.user_id), row) if rule is not None else None
