"""Contacts through HTTP: the data model and its bounds, dedupe, households, tenancy (SPEC §9)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from polis_api.resources.contacts import age_on
from tests.builders import assert_problem, create, if_match, replace_field
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed

CONTACTS = "/v2/contacts"
HOUSEHOLDS = "/v2/households"


def contact(given: str = "Ada", surname: str = "Lovelace", **data: Any) -> dict[str, Any]:
    name = {"given": given, "surname": surname}
    return {"data": {"profile": {"name": {"anglican": name}}, **data}}


def with_profile(**profile: Any) -> dict[str, Any]:
    return {"data": {"profile": profile}}


async def household(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    document = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, headers)
    return str(document["id"])


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.get(CONTACTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


async def test_a_full_contact_is_created_read_listed_patched_and_deleted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home = await household(client, admin)
    body = contact(
        externalId="v-1",
        primaryHouseholdId=home,
        notes="Met at the fair.",
        fields={"ward": 7, "volunteer": True, "tags": ["a", 1, False], "score": 2.5},
    )
    body["data"]["profile"].update(
        emails=[{"email": "ada@example.org", "active": True, "primary": True}],
        phones=[{"phone": "+1 404 555 0100", "phoneType": "mobile", "primary": True}],
        gender="f",
        languages=["en", "fr"],
    )
    created = await create(client, CONTACTS, body, admin)
    assert created["data"] == body["data"]
    assert created["meta"]["resource"] == "contacts"

    read = await client.get(f"{CONTACTS}/{created['id']}", headers=admin)
    assert read.json() == created
    assert [c["id"] for c in await listed(client, admin, {})] == [created["id"]]

    patched = await client.patch(
        f"{CONTACTS}/{created['id']}",
        json={"data": [{"op": "replace", "path": "/profile/name/anglican/surname", "value": "K"}]},
        headers={**admin, **if_match(created)},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["profile"]["name"]["anglican"]["surname"] == "K"

    deleted = await client.delete(
        f"{CONTACTS}/{created['id']}", headers={**admin, **if_match(patched.json())}
    )
    assert deleted.status_code == 204
    assert (await client.get(f"{CONTACTS}/{created['id']}", headers=admin)).status_code == 404


async def test_age_follows_the_birthdate(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await create(client, CONTACTS, with_profile(birthdate="1985-12-10", age=3), admin)

    today = datetime.now(UTC).date()
    assert created["data"]["profile"]["age"] == age_on("1985-12-10", today)

    patched = await client.patch(
        f"{CONTACTS}/{created['id']}",
        json={"data": [{"op": "replace", "path": "/profile/birthdate", "value": "2000-01-01"}]},
        headers={**admin, **if_match(created)},
    )
    assert patched.json()["data"]["profile"]["age"] == age_on("2000-01-01", today)


def test_age_counts_whole_years_to_the_birthday() -> None:
    assert age_on("2000-03-01", date(2026, 2, 28)) == 25
    assert age_on("2000-03-01", date(2026, 3, 1)) == 26
    assert age_on("2000-02-29", date(2026, 2, 28)) == 25


async def test_age_without_a_birthdate_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, CONTACTS, with_profile(age=42), admin)

    assert created["data"]["profile"]["age"] == 42


A = "a"


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (contact(given=A * 200), True),
        (contact(given=A * 201), False),
        (contact(surname=A * 201), False),
        ({"data": {"notes": A * 2048}}, True),
        ({"data": {"notes": A * 2049}}, False),
        ({"data": {"externalId": A * 200}}, True),
        ({"data": {"externalId": A * 201}}, False),
        ({"data": {"externalId": ""}}, False),
        (with_profile(emails=[{"email": f"{A * 240}@example.org"}]), True),  # 252
        (with_profile(emails=[{"email": f"{A * 243}@example.org"}]), False),  # 255
        (with_profile(emails=[{"email": "not-an-address"}]), False),
        (with_profile(emails=[{"email": f"p{n}@x.org"} for n in range(20)]), True),
        (with_profile(emails=[{"email": f"p{n}@x.org"} for n in range(21)]), False),
        (with_profile(phones=[{"phone": "1" * 50}]), True),
        (with_profile(phones=[{"phone": "1" * 51}]), False),
        (with_profile(phones=[{"phone": ""}]), False),
        (with_profile(phones=[{"phone": f"{n}"} for n in range(21)]), False),
        (with_profile(phones=[{"phone": "1", "phoneType": "fax"}]), False),
        (with_profile(emails=[{"email": "a@x.org", "primary": True}] * 2), False),
        (with_profile(emails=[{"email": "a@x.org", "primary": True}, {"email": "b@x.org"}]), True),
        (with_profile(phones=[{"phone": "1", "primary": True}] * 2), False),
        (with_profile(phones=[{"phone": "1", "primary": "yes"}]), False),
        (with_profile(gender="o"), True),
        (with_profile(gender="x"), False),
        (with_profile(languages=["en"] * 20), True),
        (with_profile(languages=["en"] * 21), False),
        (with_profile(languages=["eng"]), False),
        (with_profile(languages=["EN"]), False),
        (with_profile(birthdate="2000-02-29"), True),
        (with_profile(birthdate="2001-02-29"), False),
        (with_profile(birthdate="20000101"), False),
        (with_profile(birthdate="2999-01-01"), False),
        (with_profile(age=150), True),
        (with_profile(age=151), False),
        (with_profile(age=-1), False),
        (with_profile(age="40"), False),
        ({"data": {"fields": {f"f{n}": n for n in range(100)}}}, True),
        ({"data": {"fields": {f"f{n}": n for n in range(101)}}}, False),
        ({"data": {"fields": {"k" * 100: 1}}}, True),
        ({"data": {"fields": {"k" * 101: 1}}}, False),
        ({"data": {"fields": {"": 1}}}, False),
        ({"data": {"fields": {"t": A * 1000}}}, True),
        ({"data": {"fields": {"t": A * 1001}}}, False),
        ({"data": {"fields": {"l": [1] * 100}}}, True),
        ({"data": {"fields": {"l": [1] * 101}}}, False),
        ({"data": {"fields": {"o": {"nested": 1}}}}, False),
        ({"data": {"fields": {"l": [[1]]}}}, False),
        ({"data": {"fields": {"n": None}}}, False),
        ({"data": {"primaryHouseholdId": "not-a-uuid"}}, False),
        ({"data": {"unknown": 1}}, False),
        (with_profile(name={"anglican": {"nickname": "x"}}), False),
    ],
)
async def test_every_field_is_bounded(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], ok: bool
) -> None:
    response = await client.post(CONTACTS, json=body, headers=admin)

    if ok:
        assert response.status_code == 201, response.text
    else:
        assert_problem(response, 400, "VALIDATION_ERROR")


async def test_a_primary_household_must_be_the_tenants(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await household(client, other_tenant.headers("admin"))

    for household_id in (theirs, str(uuid.uuid4())):
        response = await client.post(
            CONTACTS, json=contact(primaryHouseholdId=household_id), headers=tenant.headers()
        )
        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert problem["errors"][0]["path"] == "/data/primaryHouseholdId"
        assert household_id in problem["detail"]


async def test_a_repeated_external_id_returns_the_existing_contact(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create(client, CONTACTS, contact(externalId="v-9"), admin)

    again = await client.post(CONTACTS, json=contact("Other", externalId="v-9"), headers=admin)

    assert again.status_code == 200
    assert again.json() == first


async def test_the_same_full_name_in_the_same_household_is_one_contact(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home = await household(client, admin)
    first = await create(client, CONTACTS, contact(primaryHouseholdId=home), admin)

    again = await client.post(
        CONTACTS, json=contact("  ADA ", "lovelace", primaryHouseholdId=home), headers=admin
    )

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]


@pytest.mark.parametrize(
    "differs",
    [
        {"given": "Ada", "surname": "Lovelace", "suffix": "Jr"},
        {"given": "Ada", "surname": "Lovelace", "middlename": "B"},
        {"given": "Ada", "surname": "Lovelace", "title": "Dr"},
    ],
)
async def test_every_name_part_tells_contacts_apart(
    client: httpx.AsyncClient, admin: dict[str, str], differs: dict[str, str]
) -> None:
    home = await household(client, admin)
    await create(client, CONTACTS, contact(primaryHouseholdId=home), admin)

    other = {"data": {"profile": {"name": {"anglican": differs}}, "primaryHouseholdId": home}}
    await create(client, CONTACTS, other, admin)


async def test_names_are_not_deduplicated_across_households_or_external_ids(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home, elsewhere = await household(client, admin), await household(client, admin)
    await create(client, CONTACTS, contact(primaryHouseholdId=home), admin)

    await create(client, CONTACTS, contact(primaryHouseholdId=elsewhere), admin)
    await create(client, CONTACTS, contact(primaryHouseholdId=home, externalId="x-1"), admin)
    await create(client, CONTACTS, contact(primaryHouseholdId=home, externalId="x-2"), admin)
    # Without a household a name alone never merges two people.
    await create(client, CONTACTS, contact(), admin)
    await create(client, CONTACTS, contact(), admin)


async def test_a_deleted_contact_frees_its_keys(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await create(client, CONTACTS, contact(externalId="v-del"), admin)
    await client.delete(f"{CONTACTS}/{first['id']}", headers={**admin, **if_match(first)})

    again = await create(client, CONTACTS, contact(externalId="v-del"), admin)

    assert again["id"] != first["id"]


async def test_a_patch_onto_another_contacts_external_id_is_a_conflict(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create(client, CONTACTS, contact(externalId="taken"), admin)
    other = await create(client, CONTACTS, contact(externalId="free"), admin)

    response = await client.patch(
        f"{CONTACTS}/{other['id']}",
        json={"data": [{"op": "replace", "path": "/externalId", "value": "taken"}]},
        headers={**admin, **if_match(other)},
    )

    assert_problem(response, 409)


@pytest.mark.parametrize("key", ["externalId", "name"])
async def test_twenty_concurrent_creates_make_one_contact(
    client: httpx.AsyncClient, admin: dict[str, str], key: str
) -> None:
    home = await household(client, admin)
    body = contact(externalId="race") if key == "externalId" else contact(primaryHouseholdId=home)

    answers = await asyncio.gather(
        *(client.post(CONTACTS, json=body, headers=admin) for _ in range(20))
    )

    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(await listed(client, admin, {})) == 1


async def test_another_tenants_contact_is_not_found(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await create(client, CONTACTS, contact(externalId="same"), other_tenant.headers())

    assert (
        await client.get(f"{CONTACTS}/{theirs['id']}", headers=tenant.headers())
    ).status_code == 404
    # Their externalId is no key of ours: a create makes our own contact.
    ours = await create(client, CONTACTS, contact(externalId="same"), tenant.headers())
    assert ours["id"] != theirs["id"]


async def test_name_parts_external_id_and_household_filter(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    home = await household(client, admin)
    ada = await create(client, CONTACTS, contact(externalId="e-1", primaryHouseholdId=home), admin)
    await create(client, CONTACTS, contact("Grace", "Hopper"), admin)

    for params in (
        {"filter": '/data/profile/name/anglican/surname like "Love*"'},
        {"filter": '/data/profile/name/anglican/given like "?da"'},
        {"filter[/data/externalId]": "e-1"},
        {"filter[/data/primaryHouseholdId]": home},
        {"filter": '/data/profile/name/anglican/given eq "Ada"'},
    ):
        assert [c["id"] for c in await listed(client, admin, params)] == [ada["id"]], params


async def test_since_follows_contacts(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    feed = Feed(client, CONTACTS, admin)
    first = await create(client, CONTACTS, contact(externalId="s-1"), admin)
    assert [d["id"] for d in await feed.until({first["id"]})] == [first["id"]]

    await client.delete(f"{CONTACTS}/{first['id']}", headers={**admin, **if_match(first)})
    second = await create(client, CONTACTS, contact(externalId="s-2"), admin)
    changes = await feed.until({first["id"], second["id"]})

    assert [(d["id"], d["meta"]["isDeleted"]) for d in changes] == [
        (first["id"], True),
        (second["id"], False),
    ]


async def _associate(
    client: httpx.AsyncClient, headers: dict[str, str], contact_id: str, household_id: str
) -> dict[str, Any]:
    response = await client.put(
        f"{CONTACTS}/{contact_id}/households/{household_id}", headers=headers
    )
    assert response.status_code == 201, response.text
    association: dict[str, Any] = response.json()
    return association


async def test_a_contacts_households_carry_their_association(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ada = (await create(client, CONTACTS, contact(), admin))["id"]
    grace = (await create(client, CONTACTS, contact("Grace"), admin))["id"]
    home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, admin)
    work = await create(client, HOUSEHOLDS, {"data": {"unitNum": "2"}}, admin)
    hers = await create(client, HOUSEHOLDS, {"data": {"unitNum": "3"}}, admin)
    at_home = await _associate(client, admin, ada, home["id"])
    at_work = await _associate(client, admin, ada, work["id"])
    await _associate(client, admin, grace, hers["id"])
    path = f"{CONTACTS}/{ada}/households"

    answer = await client.get(path, params={"sort": '["data/unitNum","DESC"]'}, headers=admin)

    assert answer.status_code == 200, answer.text
    documents = answer.json()["data"]
    assert [d["id"] for d in documents] == [work["id"], home["id"]]
    assert [d["params"]["contactHouseholdId"] for d in documents] == [
        at_work["id"],
        at_home["id"],
    ]
    assert {k: v for k, v in documents[1].items() if k != "params"} == home

    filtered = await client.get(
        path, params={"filter[/data/unitNum]": "1", "count": "true"}, headers=admin
    )
    assert [d["id"] for d in filtered.json()["data"]] == [home["id"]]
    assert filtered.json()["meta"] == {"total": 1}
    limited = await client.get(
        path, params={"limit": "1", "skip": "1", "sort": '["data/unitNum","ASC"]'}, headers=admin
    )
    assert [d["id"] for d in limited.json()["data"]] == [work["id"]]

    await client.delete(
        f"{CONTACTS}/{ada}/households/{work['id']}", headers={**admin, **if_match(at_work)}
    )
    after = await client.get(path, headers=admin)
    assert [d["id"] for d in after.json()["data"]] == [home["id"]]


async def test_a_contacts_households_refuse_feed_options_and_unknown_contacts(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    ada = (await create(client, CONTACTS, contact(), tenant.headers()))["id"]
    theirs = (await create(client, CONTACTS, contact(), other_tenant.headers()))["id"]
    path = f"{CONTACTS}/{ada}/households"

    for option in ({"skip": "1"}, {"sort": "/data/unitNum"}, {"count": "true"}):
        refused = await client.get(path, params={"since": "", **option}, headers=tenant.headers())
        assert next(iter(option)) in assert_problem(refused, 400, "VALIDATION_ERROR")["detail"]
    bad = await client.get(path, params={"since": "nonsense"}, headers=tenant.headers())
    assert_problem(bad, 400, "BAD_SYNC_TOKEN")
    for unknown in (theirs, str(uuid.uuid4())):
        for params in ({}, {"since": ""}):
            missing = await client.get(
                f"{CONTACTS}/{unknown}/households", params=params, headers=tenant.headers()
            )
            assert_problem(missing, 404)


# --- a contact's households as a change feed -------------------------------------------


@pytest.fixture
async def raw(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, standing for another writer."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def _feed_view(changes: list[dict[str, Any]]) -> dict[str, tuple[bool, str | None]]:
    """Each delivered household: whether it is a tombstone, and its association id."""
    return {d["id"]: (d["meta"]["isDeleted"], d["params"]["contactHouseholdId"]) for d in changes}


async def test_a_contacts_households_feed_follows_associations_and_households(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ada = (await create(client, CONTACTS, contact(), admin))["id"]
    grace = (await create(client, CONTACTS, contact("Grace"), admin))["id"]
    home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, admin)
    work = await create(client, HOUSEHOLDS, {"data": {"unitNum": "2"}}, admin)
    older = await create(client, HOUSEHOLDS, {"data": {"unitNum": "3"}}, admin)
    hers = await create(client, HOUSEHOLDS, {"data": {"unitNum": "4"}}, admin)
    at_home = await _associate(client, admin, ada, home["id"])
    at_work = await _associate(client, admin, ada, work["id"])
    await _associate(client, admin, grace, hers["id"])
    path = f"{CONTACTS}/{ada}/households"
    feed = Feed(client, path, admin)

    first = await feed.until({home["id"], work["id"]})
    assert _feed_view(first) == {
        home["id"]: (False, at_home["id"]),
        work["id"]: (False, at_work["id"]),
    }
    assert len(first) == 2 and {k: v for k, v in first[0].items() if k != "params"} in (home, work)
    assert await feed.to_the_end() == []

    # An association made now to a household older than the token; a dissociation; a
    # change of an associated household; a change of someone else's household.
    at_older = await _associate(client, admin, ada, older["id"])
    response = await client.delete(
        f"{CONTACTS}/{ada}/households/{work['id']}", headers={**admin, **if_match(at_work)}
    )
    assert response.status_code == 204, response.text
    renamed = await replace_field(client, admin, HOUSEHOLDS, home, "unitNum", "1a")
    await replace_field(client, admin, HOUSEHOLDS, hers, "unitNum", "4a")

    second = await feed.until({older["id"], work["id"], home["id"]})
    assert _feed_view(second) == {
        older["id"]: (False, at_older["id"]),
        work["id"]: (True, None),
        home["id"]: (False, at_home["id"]),
    }
    assert len(second) == 3
    assert next(d for d in second if d["id"] == home["id"])["data"] == renamed["data"]
    assert await feed.to_the_end() == []

    # Deleting an associated household is its tombstone; associating again revives one.
    response = await client.delete(
        f"{HOUSEHOLDS}/{older['id']}", headers={**admin, **if_match(older)}
    )
    assert response.status_code == 204, response.text
    again = await _associate(client, admin, ada, work["id"])
    third = await feed.until({older["id"], work["id"]})
    assert _feed_view(third) == {
        older["id"]: (True, at_older["id"]),
        work["id"]: (False, again["id"]),
    }
    assert len(third) == 2

    # The live set the feed leaves a phone with is the list's.
    live = {d["id"] for d in [*first, *second, *third] if not d["meta"]["isDeleted"]}
    gone = {d["id"] for d in third if d["meta"]["isDeleted"]}
    listed = (await client.get(path, headers=admin)).json()["data"]
    assert {d["id"] for d in listed} == live - gone == {home["id"], work["id"]}


async def test_a_contacts_households_feed_takes_a_filter(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ada = (await create(client, CONTACTS, contact(), admin))["id"]
    home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, admin)
    work = await create(client, HOUSEHOLDS, {"data": {"unitNum": "2"}}, admin)
    await _associate(client, admin, ada, home["id"])
    await _associate(client, admin, ada, work["id"])
    feed = Feed(client, f"{CONTACTS}/{ada}/households", admin, **{"filter[/data/unitNum]": "2"})

    changes = await feed.until({work["id"]})

    assert [d["id"] for d in changes] == [work["id"]]
    assert (await feed.call(limit="1"))["data"] == []


async def test_a_late_committing_dissociation_is_not_skipped(
    client: httpx.AsyncClient, admin: dict[str, str], raw: asyncpg.Connection, tenant: Tenant
) -> None:
    ada = (await create(client, CONTACTS, contact(), admin))["id"]
    home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, admin)
    later = await create(client, HOUSEHOLDS, {"data": {"unitNum": "2"}}, admin)
    at_home = await _associate(client, admin, ada, home["id"])
    feed = Feed(client, f"{CONTACTS}/{ada}/households", admin)
    await feed.until({home["id"]})

    writer = raw.transaction()  # another writer dissociates first and commits last
    await writer.start()
    try:
        await raw.execute(
            "UPDATE contact_households SET is_deleted = true WHERE customer_id = $1 AND id = $2",
            tenant.customer_id,
            uuid.UUID(at_home["id"]),
        )
        at_later = await _associate(client, admin, ada, later["id"])
        # The quicker, later association is held back while the older writer runs...
        assert await feed.to_the_end() == []
        await writer.commit()
    except BaseException:
        await writer.rollback()
        raise

    # ...so the token never passes the dissociation: both come.
    changes = await feed.until({home["id"], later["id"]})
    assert _feed_view(changes) == {home["id"]: (True, None), later["id"]: (False, at_later["id"])}
    assert len(changes) == 2


async def test_a_contacts_households_feed_stays_in_its_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = tenant.headers("admin"), other_tenant.headers("admin")
    ada = (await create(client, CONTACTS, contact(), mine))["id"]
    home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, mine)
    await _associate(client, mine, ada, home["id"])
    # The other tenant associates its own contact with the same ids' worth of rows.
    their_contact = (await create(client, CONTACTS, contact(), theirs))["id"]
    their_home = await create(client, HOUSEHOLDS, {"data": {"unitNum": "1"}}, theirs)
    await _associate(client, theirs, their_contact, their_home["id"])

    changes = await Feed(client, f"{CONTACTS}/{ada}/households", mine).until({home["id"]})
    assert [d["id"] for d in changes] == [home["id"]]
    refused = await client.get(f"{CONTACTS}/{ada}/households", params={"since": ""}, headers=theirs)
    assert_problem(refused, 404)
