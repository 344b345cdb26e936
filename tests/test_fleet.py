"""Sixty phones on a bad network against `polis-api serve --workers 2` (tests/fleet.py)."""

from __future__ import annotations

import pytest

from polis_api.config import Settings
from tests.conftest import running_server
from tests.fleet import FleetSize, run_fleet

pytestmark = pytest.mark.slow


async def test_a_fleet_on_a_bad_network_loses_nothing_and_readers_converge(
    database_url: str, settings: Settings
) -> None:
    with running_server(database_url, "fleet") as base_url:
        report = await run_fleet(base_url, settings, FleetSize())
    # Every kind of fault really happened, so the invariants run_fleet checked were tested.
    faults = report.faults
    assert faults.cut_off and faults.lost_answers and faults.dropped and faults.duplicates
    assert faults.batches and faults.replays
    assert report.deleted == FleetSize().deleted_knocks
