"""The status rule of a campaign and the flag it raises on interactions (SPEC §10, §13)."""

from __future__ import annotations

import pytest

from polis_api.workflow.campaign_statuses import campaign_allows
from polis_api.workflow.quality import STATUS_MISMATCH, status_mismatch

LINKED = frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("linked", "status_id", "allowed"),
    [
        (frozenset(), "anything", True),  # nothing linked: every status of the tenant
        (frozenset(), None, True),
        (LINKED, "a", True),
        (LINKED, "c", False),
        (LINKED, None, True),  # naming no status is never a mismatch
    ],
)
def test_campaign_allows(linked: frozenset[str], status_id: str | None, allowed: bool) -> None:
    assert campaign_allows(linked, status_id) is allowed
    assert status_mismatch(linked, status_id) == ([] if allowed else [STATUS_MISMATCH])
