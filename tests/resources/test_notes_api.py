"""Notes through HTTP, and the roles around contacts and notes (SPEC §3, §9)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.builders import assert_problem, create, if_match
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed
from tests.resources.test_contacts_api import CONTACTS, contact

NOTES = "/v2/notes"


def note(contact_id: str, text: str = "Asked about the library vote.") -> dict[str, Any]:
    return {"data": {"contactId": contact_id, "text": text}}


async def a_contact(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await create(client, CONTACTS, contact(), headers))["id"])


async def test_a_note_is_created_read_filtered_patched_and_deleted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ada, grace = await a_contact(client, admin), await a_contact(client, admin)
    first = await create(client, NOTES, note(ada), admin)
    await create(client, NOTES, note(grace), admin)

    assert (await client.get(f"{NOTES}/{first['id']}", headers=admin)).json() == first
    mine = await client.get(NOTES, params={"filter[/data/contactId]": ada}, headers=admin)
    assert [n["id"] for n in mine.json()["data"]] == [first["id"]]

    patched = await client.patch(
        f"{NOTES}/{first['id']}",
        json={"data": [{"op": "replace", "path": "/text", "value": "Moved away."}]},
        headers={**admin, **if_match(first)},
    )
    assert patched.json()["data"]["text"] == "Moved away."
    gone = await client.delete(
        f"{NOTES}/{first['id']}", headers={**admin, **if_match(patched.json())}
    )
    assert gone.status_code == 204


@pytest.mark.parametrize(
    ("text", "ok"),
    [("a", True), ("a" * 2048, True), ("a" * 2049, False), ("", False), ("  ", False)],
)
async def test_note_text_is_one_to_2048_characters(
    client: httpx.AsyncClient, admin: dict[str, str], text: str, ok: bool
) -> None:
    response = await client.post(
        NOTES, json=note(await a_contact(client, admin), text), headers=admin
    )

    if ok:
        assert response.status_code == 201, response.text
    else:
        assert_problem(response, 400, "VALIDATION_ERROR")


async def test_a_note_names_a_live_contact_of_the_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await a_contact(client, other_tenant.headers())
    deleted = await create(client, CONTACTS, contact("Gone"), tenant.headers())
    await client.delete(
        f"{CONTACTS}/{deleted['id']}", headers={**tenant.headers(), **if_match(deleted)}
    )

    for contact_id in (theirs, deleted["id"], str(uuid.uuid4())):
        response = await client.post(NOTES, json=note(contact_id), headers=tenant.headers())
        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert problem["errors"][0]["path"] == "/data/contactId"
        assert contact_id in problem["detail"]
    assert_problem(
        await client.post(NOTES, json={"data": {"text": "x"}}, headers=tenant.headers()), 400
    )


async def test_since_follows_notes(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    feed = Feed(client, NOTES, admin)
    written = await create(client, NOTES, note(await a_contact(client, admin)), admin)

    assert [n["id"] for n in await feed.until({written["id"]})] == [written["id"]]


async def test_a_viewer_reads_contacts_and_notes_but_writes_neither(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    ada = await a_contact(client, tenant.headers())
    viewer = tenant.headers("viewer")

    assert (await client.get(CONTACTS, headers=viewer)).status_code == 200
    assert (await client.get(NOTES, headers=viewer)).status_code == 200
    assert (await client.get(f"{CONTACTS}/{ada}/households", headers=viewer)).status_code == 200
    refused = await client.post(NOTES, json=note(ada), headers=viewer)
    assert "insert@notes" in assert_problem(refused, 403)["detail"]
    refused = await client.post(CONTACTS, json=contact(), headers=viewer)
    assert "insert@contacts" in assert_problem(refused, 403)["detail"]


async def test_a_canvasser_may_add_notes_but_not_change_contacts(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    ada = await a_contact(client, tenant.headers())
    canvasser = tenant.headers("canvasser")

    written = await create(client, NOTES, note(ada), canvasser)
    patch = await client.patch(
        f"{NOTES}/{written['id']}",
        json={"data": []},
        headers={**canvasser, **if_match(written)},
    )
    assert "modify@notes" in assert_problem(patch, 403)["detail"]
    refused = await client.post(CONTACTS, json=contact(), headers=canvasser)
    assert "insert@contacts" in assert_problem(refused, 403)["detail"]
