"""Who sees what when a tenant hides unassigned data (docs/visibility.md).

Everything a canvasser or viewer may still read hangs off its open walk lists: their
``doors`` are contact-household ids. Each rule below says how one resource's rows
relate to those doors; documents/visibility.py adds the rule to gets, lists and feeds.
"""

from __future__ import annotations

from polis_api.documents.visibility import Visibility


def assigned_doors(sub: str) -> str:
    """The contact-household ids (as text) on the open walk lists assigned to ``sub``."""
    return (
        "SELECT door FROM walklists AS w, jsonb_array_elements_text(w.data -> 'doors') AS door "  # noqa: S608
        "WHERE w.customer_id = $1 AND NOT w.is_deleted AND (w.data ->> 'status') = 'open' "
        f"AND (w.data ->> 'assigneeId') = {sub}"
    )


def _named_by_assigned_door(field: str) -> Visibility:
    """Rows a door's contact-household names in ``field`` (its contact, its household)."""

    def condition(row: str, sub: str) -> str:
        return (
            f"{row}.id::text IN (SELECT (ch.data ->> '{field}') FROM contact_households AS ch "  # noqa: S608
            f"WHERE ch.customer_id = $1 AND NOT ch.is_deleted "
            f"AND ch.id::text IN ({assigned_doors(sub)}))"
        )

    return Visibility(condition)


# A contact-household is visible when it is an assigned door.
ASSIGNED_DOOR = Visibility(lambda row, sub: f"{row}.id::text IN ({assigned_doors(sub)})")
# A row naming its door in data.contactHouseholdId (a door record, an interaction,
# a list member)
# when that door is assigned.
NAMES_ASSIGNED_DOOR = Visibility(
    lambda row, sub: f"({row}.data ->> 'contactHouseholdId') IN ({assigned_doors(sub)})"
)
ASSIGNED_CONTACT = _named_by_assigned_door("contactId")
ASSIGNED_HOUSEHOLD = _named_by_assigned_door("householdId")
