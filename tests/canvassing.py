"""Builders for the canvassing flow: a door in a campaign, statuses, interactions."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.builders import SEED_CAMPAIGN, create

NEW_YORK = {"lat": 40.7128, "lng": -74.0060}
LOS_ANGELES = {"lat": 34.0522, "lng": -118.2437, "confidence": 5}
NEW_YORK_TO_LOS_ANGELES_MILES = 2445.56
# From seed 001's location (near Atlanta) to NEW_YORK, by haversine.
SEED_LOCATION_TO_NEW_YORK_MILES = 752.63

# Seed 001's POST example, verbatim but for its ids (see ``interaction``).
SEED_INTERACTION: dict[str, Any] = {
    "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
    "contactId": "0478dbbf-b6eb-4168-afa9-5ebab6fef4b6",
    "householdId": "c15e3515-aabf-42da-8d1b-31679f738eae",
    "contactHouseholdId": "d070b1dc-9611-4f29-9300-a32160d21baa",
    "timestamp": "2018-07-17T18:40:53.526Z",
    "unavailable": True,
    "unavailableReason": "Come Back",
    "successful": False,
    "survey": {
        "responses": {
            "9826940d-76a8-4700-8c92-5743ce7bb728": {
                "fields": {"available": "false"},
                "questionId": "9826940d-76a8-4700-8c92-5743ce7bb728",
            },
            "f386f88a-61f1-4f0d-b3d9-ba97e8238444": {
                "fields": {"dogliker": "true"},
                "questionId": "f386f88a-61f1-4f0d-b3d9-ba97e8238444",
            },
        },
        "surveyId": "375d437b-3b47-4940-b43d-be8daec4afff",
    },
    "location": {"lat": 33.43174362182617, "lng": -84.18405151367188, "confidence": 0},
}


@dataclass(frozen=True)
class Door:
    """One contact at one household inside one campaign, all existing in the tenant."""

    campaign_id: str
    contact_id: str
    household_id: str
    contact_household_id: str

    @property
    def path(self) -> str:
        """Seed 000's door route (it also answers with a trailing ``/status``)."""
        return (
            f"/v1/campaigns/{self.campaign_id}/contacts/{self.contact_id}"
            f"/households/{self.household_id}"
        )

    @property
    def params(self) -> dict[str, str]:
        """The ``params`` of a bulk item for this door."""
        return {"contactId": self.contact_id, "householdId": self.household_id}


async def new_campaign(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, headers)
    return str(document["id"])


async def new_household(
    client: httpx.AsyncClient, headers: dict[str, str], coords: dict[str, float] | None = NEW_YORK
) -> str:
    address: dict[str, Any] = {"number": "1", "streetName": "Main Street", "city": "Springfield"}
    if coords is not None:
        address["coords"] = coords
    document = await create(client, "/v2/households", {"data": {"address": address}}, headers)
    return str(document["id"])


async def associate(
    client: httpx.AsyncClient, headers: dict[str, str], contact_id: str, household_id: str
) -> str:
    response = await client.put(
        f"/v2/contacts/{contact_id}/households/{household_id}", headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def door(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    campaign_id: str | None = None,
    coords: dict[str, float] | None = NEW_YORK,
) -> Door:
    """A campaign (or the given one), a household at ``coords``, a contact living there."""
    campaign_id = campaign_id or await new_campaign(client, headers)
    household_id = await new_household(client, headers, coords)
    contact_id = str(uuid.uuid4())
    pair = await associate(client, headers, contact_id, household_id)
    return Door(campaign_id, contact_id, household_id, pair)


def interaction(at: Door, **data: Any) -> dict[str, Any]:
    """Seed 001's POST body for ``at``; keyword arguments replace (None removes) fields."""
    body = copy.deepcopy(SEED_INTERACTION)
    body.update(
        campaignId=at.campaign_id,
        contactId=at.contact_id,
        householdId=at.household_id,
        contactHouseholdId=at.contact_household_id,
    )
    body.update(data)
    return {key: value for key, value in body.items() if value is not None}


async def record_interaction(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door, **data: Any
) -> dict[str, Any]:
    return await create(client, "/v2/interactions", interaction(at, **data), headers)


async def status_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """The tenant's statuses by name (a new tenant has Polis' default set)."""
    response = await client.get("/v1/statuses?limit=1000", headers=headers)
    assert response.status_code == 200, response.text
    return {doc["data"]["name"]: doc["id"] for doc in response.json()["data"]}


async def status_named(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    query = urlencode({"filter": f'/data/name eq "{name}"'})
    response = await client.get(f"/v1/statuses?{query}", headers=headers)
    assert response.status_code == 200, response.text
    found = response.json()["data"]
    assert len(found) == 1, found
    return str(found[0]["id"])


async def door_record(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door
) -> dict[str, Any] | None:
    """The door's record in its campaign, or None when it has none."""
    response = await client.get(at.path, headers=headers)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def put_door(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door, data: dict[str, Any]
) -> dict[str, Any]:
    response = await client.put(at.path, json={"data": data}, headers=headers)
    assert response.status_code in (200, 201), response.text
    document: dict[str, Any] = response.json()
    return document


async def interactions_of(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v2/interactions", params={"filter[/data/campaignId]": campaign_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


def derived(state: str) -> dict[str, bool]:
    """What SPEC §2 derives from a door's state."""
    return {
        "contacted": not state.startswith("not-contacted-"),
        "successful": state == "contacted-available-successful",
        "available": state.startswith("contacted-available-"),
    }


def flags(record: dict[str, Any]) -> dict[str, bool]:
    data = record["data"]
    return {
        "contacted": data["contacted"],
        "successful": data["successful"],
        "available": data["availability"]["available"],
    }
