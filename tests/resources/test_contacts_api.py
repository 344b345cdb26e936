"""Contacts through HTTP: the data model and its bounds, dedupe, households, tenancy (SPEC §9)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.builders import create

CONTACTS = "/v2/contacts"


def contact(**data: Any) -> dict[str, Any]:
    name = {"given": "Ada", "surname": "Lovelace"}
    return {"data": {"profile": {"name": {"anglican": name}}, **data}}


async def test_a_contact_is_created_and_read_back(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, CONTACTS, contact(externalId="v-1"), admin)

    response = await client.get(f"{CONTACTS}/{created['id']}", headers=admin)

    assert response.status_code == 200
    assert response.json()["data"]["externalId"] == "v-1"
    assert response.json()["meta"]["resource"] == "contacts"
