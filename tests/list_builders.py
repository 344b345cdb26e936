"""Builders for lists and their members: contacts, households, associations, lists."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.builders import create
from tests.canvassing import associate

LISTS = "/v1/lists"
ORGANIZATION = "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319"


def a_list(**data: Any) -> dict[str, Any]:
    return {"data": {"organizationId": ORGANIZATION, "name": "Main Street", **data}}


async def new_list(
    client: httpx.AsyncClient, headers: dict[str, str], list_id: str | None = None, **data: Any
) -> str:
    body = a_list(**data)
    if list_id is not None:
        body["id"] = list_id
    document = await create(client, LISTS, body, headers)
    return str(document["id"])


@dataclass(frozen=True)
class Pair:
    """A contact living at a household: what a list holds."""

    contact_id: str
    household_id: str
    contact_household_id: str

    def on(self, list_id: str) -> str:
        return f"{LISTS}/{list_id}/contacts/{self.contact_id}/households/{self.household_id}"

    @property
    def item(self) -> dict[str, Any]:
        return {"data": {"contactId": self.contact_id, "householdId": self.household_id}}


async def new_contact(
    client: httpx.AsyncClient, headers: dict[str, str], surname: str | None = None
) -> str:
    # A surname of its own, so contacts are never taken for one another (dedupe).
    name = {"given": "Ada", "surname": surname or f"Surname-{uuid.uuid4().hex[:8]}"}
    body = {"data": {"profile": {"name": {"anglican": name}}}}
    document = await create(client, "/v2/contacts", body, headers)
    return str(document["id"])


async def new_pair(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    surname: str | None = None,
    city: str = "Springfield",
) -> Pair:
    contact_id = await new_contact(client, headers, surname)
    address = {"number": "1", "streetName": "Main Street", "city": city}
    household = await create(client, "/v2/households", {"data": {"address": address}}, headers)
    household_id = str(household["id"])
    pair = await associate(client, headers, contact_id, household_id)
    return Pair(contact_id, household_id, pair)


async def put_on(
    client: httpx.AsyncClient, headers: dict[str, str], list_id: str, pair: Pair
) -> dict[str, Any]:
    response = await client.put(pair.on(list_id), headers=headers)
    assert response.status_code in (200, 201), response.text
    member: dict[str, Any] = response.json()
    return member


async def get_list(
    client: httpx.AsyncClient, headers: dict[str, str], list_id: str
) -> dict[str, Any]:
    response = await client.get(f"{LISTS}/{list_id}", headers=headers)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def members(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    list_id: str,
    params: dict[str, Any] | list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{LISTS}/{list_id}/contact-households", params=params or {}, headers=headers
    )
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents
