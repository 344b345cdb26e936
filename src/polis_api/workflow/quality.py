"""Server-owned quality flags of an interaction (``data.qualityFlags``, SPEC §13).

Each flag is a small pure function of what the interaction names and what the
server looked up; the interaction hook gathers them. A flag never refuses a write:
a canvasser's work is stored, and the flag tells the organiser to look at it.
"""

from __future__ import annotations

from collections.abc import Set

from polis_api.workflow.campaign_statuses import campaign_allows

STATUS_MISMATCH = "status-mismatch"


def status_mismatch(campaign_statuses: Set[str], status_id: str | None) -> list[str]:
    """``status-mismatch`` when the interaction names a status its campaign does not allow."""
    return [] if campaign_allows(campaign_statuses, status_id) else [STATUS_MISMATCH]
