"""Which statuses a campaign allows (docs/statuses.md): a pure rule, shared by doors and flags."""

from __future__ import annotations

from collections.abc import Set


def campaign_allows(linked: Set[str], status_id: str | None) -> bool:
    """A campaign allows the statuses linked to it; one that links none allows them all.

    ``linked`` holds the ids of the campaign's linked statuses that still exist.
    Naming no status is always allowed.
    """
    return status_id is None or not linked or status_id in linked
