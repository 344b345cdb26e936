"""Builders for turfs and walk lists: doors placed on a small grid near (0, 0)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.builders import create
from tests.canvassing import Door, door, put_door

TURFS = "/v1/turfs"
WALKLISTS = "/v1/walklists"
ASSIGNEE = "0c5d7a8e-3b1f-4e2a-9c4d-5e6f7a8b9c0d"

# A 0.01° square (about a kilometre) with a hole in its middle.
SQUARE = [[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]
HOLE = [[0.004, 0.004], [0.006, 0.004], [0.006, 0.006], [0.004, 0.006], [0.004, 0.004]]


def boundary(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings) or [SQUARE]}


def turf(campaign_id: str, *rings: list[list[float]], **data: Any) -> dict[str, Any]:
    return {
        "data": {
            "campaignId": campaign_id,
            "name": "North of the park",
            "boundary": boundary(*rings),
            **data,
        }
    }


async def placed_door(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    campaign_id: str,
    lng: float | None,
    lat: float | None = 0.0,
) -> Door:
    """A door of the campaign, with its door record, at (lng, lat) (None: no coords)."""
    coords = None if lng is None or lat is None else {"lat": lat, "lng": lng}
    at = await door(client, headers, campaign_id=campaign_id, coords=coords)
    await put_door(client, headers, at, {"type": "normal"})
    return at


def walklist(campaign_id: str, **data: Any) -> dict[str, Any]:
    return {"data": {"campaignId": campaign_id, "name": "Saturday", "assigneeId": ASSIGNEE, **data}}


async def new_walklist(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **data: Any
) -> dict[str, Any]:
    return await create(client, WALKLISTS, walklist(campaign_id, **data), headers)


def near(lng: float, lat: float = 0.0) -> dict[str, float]:
    return {"lat": lat, "lng": lng}
