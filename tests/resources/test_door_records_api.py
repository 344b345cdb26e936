"""Contact-household-campaign records (the doors of a campaign) through HTTP, seed 000."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.builders import ETAG, TIMESTAMP, assert_problem, if_match
from tests.canvassing import (
    Door,
    associate,
    derived,
    door,
    door_record,
    flags,
    new_household,
    put_door,
    status_ids,
    status_named,
)
from tests.conftest import Tenant

SEED_PUT = {"data": {"availability": {"available": False, "unavailableReason": "Not Home"}}}
RECORD = "contact-household-campaigns"


def set_status(status_id: str) -> dict[str, Any]:
    """Seed 000's PATCH body."""
    return {"data": [{"op": "replace", "path": "/statusId", "value": status_id}]}


def bulk_item(at: Door, status_id: str, campaign_id: str | None = None) -> dict[str, Any]:
    """One item of seed 000's bulk body."""
    return {
        "data": {"campaignId": campaign_id or at.campaign_id, "statusId": status_id},
        "params": at.params,
    }


async def patch_door(
    client: httpx.AsyncClient, headers: dict[str, str], at: Door, record: dict[str, Any], body: Any
) -> httpx.Response:
    return await client.patch(
        at.path, json=body, headers={**headers, "etag": record["meta"]["etag"]}
    )


# --- seed 000 replayed ----------------------------------------------------------------------


async def test_seed_put_creates_the_record_then_updates_it(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    created = await client.put(f"{at.path}/status", json=SEED_PUT, headers=admin)

    assert created.status_code == 201, created.text
    document = created.json()
    assert document["data"] == {
        "campaignId": at.campaign_id,
        "contactHouseholdId": at.contact_household_id,
        "contacted": False,
        "successful": False,
        "state": "not-contacted-normal",
        "statusId": None,
        "type": "normal",
        "availability": {"available": False, "unavailableReason": "Not Home"},
        "reservation": {"reserved": False},
        "lastInteraction": None,
    }
    assert document["meta"]["resource"] == RECORD
    assert document["customerId"] == str(tenant.customer_id)
    assert ETAG.match(document["meta"]["etag"]) and TIMESTAMP.match(document["meta"]["created"])
    assert created.headers["ETag"] == f'"{document["meta"]["etag"]}"'

    again = await client.put(at.path, json=SEED_PUT, headers=admin)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == document["id"]
    assert again.json()["data"] == document["data"]


async def test_put_ignores_the_fields_the_server_owns(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    owned = {
        "contacted": True,
        "successful": True,
        "contactHouseholdId": str(uuid.uuid4()),
        "lastInteraction": {"timestamp": "2030-01-01T00:00:00.000Z"},
    }

    written = await put_door(client, admin, at, {**owned, "type": "do-not-knock"})

    assert written["data"]["state"] == "not-contacted-do-not-knock"
    assert flags(written) == derived("not-contacted-do-not-knock")
    assert written["data"]["contactHouseholdId"] == at.contact_household_id
    assert written["data"]["lastInteraction"] is None


async def test_get_answers_with_and_without_status_suffix(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    assert_problem(await client.get(at.path, headers=admin), 404, "NOT_FOUND")
    written = await put_door(client, admin, at, SEED_PUT["data"])

    for path in (at.path, f"{at.path}/status"):
        response = await client.get(path, headers=admin)

        assert response.status_code == 200, response.text
        assert response.json() == written
        assert response.headers["ETag"] == f'"{written["meta"]["etag"]}"'


async def test_seed_patch_sets_the_status_and_the_flags_follow(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, SEED_PUT["data"])
    not_home = await status_named(client, admin, "Not Home")

    response = await client.patch(
        f"{at.path}/status",
        json=set_status(not_home),
        headers={**admin, "etag": written["meta"]["etag"]},
    )

    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["id"] == written["id"]
    assert patched["data"]["statusId"] == not_home
    assert patched["data"]["state"] == "contacted-unavailable-not-home"
    assert patched["data"]["contacted"] is True
    assert patched["data"]["successful"] is False
    assert patched["data"]["availability"]["available"] is False
    assert patched["meta"]["etag"] != written["meta"]["etag"]
    assert patched["meta"]["modifiedBy"] == str(tenant.user_id)
    assert await door_record(client, admin, at) == patched


async def test_patch_without_the_path_suffix_and_with_if_match(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    come_back = await status_named(client, admin, "Come Back")

    response = await client.patch(
        at.path, json=set_status(come_back), headers={**admin, **if_match(written)}
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["state"] == "come-back"


async def test_patch_of_any_other_path_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"op": "replace", "path": "/state", "value": "come-back"}, "/state"),
        ({"op": "replace", "path": "/contacted", "value": True}, "/contacted"),
        ({"op": "copy", "from": "/campaignId", "path": "/statusId"}, "/campaignId"),
    ]

    for operation, named in cases:
        response = await patch_door(client, admin, at, written, {"data": [operation]})

        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert named in problem["detail"], problem
    assert await door_record(client, admin, at) == written


async def test_patch_needs_the_current_etag(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    not_home = await status_named(client, admin, "Not Home")

    missing = await client.patch(at.path, json=set_status(not_home), headers=admin)
    assert_problem(missing, 428, "PRECONDITION_REQUIRED")

    changed = await put_door(client, admin, at, {"type": "high-priority"})
    stale = await patch_door(client, admin, at, written, set_status(not_home))

    problem = assert_problem(stale, 412, "PRECONDITION_FAILED")
    assert problem["currentEtag"] == changed["meta"]["etag"]
    assert await door_record(client, admin, at) == changed


async def test_a_status_outside_the_tenant_is_400_naming_status_id(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    theirs = (await status_ids(client, other_tenant.headers("admin")))["Not Home"]

    for status_id in (theirs, str(uuid.uuid4())):
        patched = await patch_door(client, admin, at, written, set_status(status_id))
        put = await client.put(at.path, json={"data": {"statusId": status_id}}, headers=admin)

        for response in (patched, put):
            problem = assert_problem(response, 400, "VALIDATION_ERROR")
            assert [e["path"] for e in problem["errors"]] == ["/data/statusId"], problem
    assert await door_record(client, admin, at) == written


async def test_put_with_a_status_sets_state_and_a_mismatching_state_is_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    successful = await status_named(client, admin, "Successful")

    written = await put_door(client, admin, at, {"statusId": successful})

    assert written["data"]["state"] == "contacted-available-successful"
    assert flags(written) == derived("contacted-available-successful")
    mismatch = await client.put(
        at.path, json={"data": {"statusId": successful, "state": "come-back"}}, headers=admin
    )
    assert "/data/statusId" in [
        e["path"] for e in assert_problem(mismatch, 400, "VALIDATION_ERROR")["errors"]
    ]


async def test_unknown_pair_or_campaign_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    stranger = str(uuid.uuid4())
    other_household = await new_household(client, admin)
    unassociated = Door(at.campaign_id, stranger, other_household, "")
    no_campaign = Door(str(uuid.uuid4()), at.contact_id, at.household_id, at.contact_household_id)

    for method in ("GET", "PUT", "PATCH"):
        body = SEED_PUT if method == "PUT" else set_status(str(uuid.uuid4()))
        headers = {**admin, "If-Match": "*"}
        pair = await client.request(method, unassociated.path, json=body, headers=headers)
        problem = assert_problem(pair, 404, "NOT_FOUND")
        assert stranger in problem["detail"] and other_household in problem["detail"], problem

        campaign = await client.request(method, no_campaign.path, json=body, headers=headers)
        assert no_campaign.campaign_id in assert_problem(campaign, 404, "NOT_FOUND")["detail"]


async def test_malformed_ids_in_the_path_are_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    response = await client.get(at.path.replace(at.campaign_id, "not-a-uuid"), headers=admin)

    assert_problem(response, 400)


# --- bulk -----------------------------------------------------------------------------------


async def test_seed_bulk_writes_every_item_in_input_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await door(client, admin)
    second = await door(client, admin, campaign_id=first.campaign_id)
    successful = await status_named(client, admin, "Successful")
    existing = await put_door(client, admin, second, {"type": "high-priority"})

    response = await client.post(
        "/v1/campaigns/contact-households/bulk",
        json={"data": [bulk_item(second, successful), bulk_item(first, successful)]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"] == {}
    assert [d["data"]["contactHouseholdId"] for d in body["data"]] == [
        second.contact_household_id,
        first.contact_household_id,
    ]
    assert body["data"][0]["id"] == existing["id"], "an existing record is updated"
    for document, at in zip(body["data"], (second, first), strict=True):
        assert document["meta"]["resource"] == RECORD
        assert document["data"]["campaignId"] == first.campaign_id
        assert document["data"]["statusId"] == successful
        assert document["data"]["state"] == "contacted-available-successful"
        assert flags(document) == derived("contacted-available-successful")
        assert await door_record(client, admin, at) == document


async def test_concurrent_bulks_naming_the_same_doors_in_other_orders_both_succeed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await door(client, admin)
    doors = [first, *[await door(client, admin, campaign_id=first.campaign_id) for _ in range(3)]]
    statuses = await status_ids(client, admin)
    for round_number in range(3):
        if round_number:
            for at in doors:  # half the rounds race on existing records
                await put_door(client, admin, at, {})
        forward = [bulk_item(at, statuses["Not Home"]) for at in doors]
        backward = [bulk_item(at, statuses["Come Back"]) for at in reversed(doors)]

        responses = await asyncio.gather(
            *(
                client.post(
                    "/v1/campaigns/contact-households/bulk", json={"data": items}, headers=admin
                )
                for items in (forward, backward)
            )
        )

        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        for response, order in zip(responses, (doors, doors[::-1]), strict=True):
            assert [d["data"]["contactHouseholdId"] for d in response.json()["data"]] == [
                at.contact_household_id for at in order
            ]
        states = {(await door_record(client, admin, at) or {})["data"]["state"] for at in doors}
        assert len(states) == 1, "one bulk's writes are all applied after the other's"


async def test_bulk_with_bad_items_names_each_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    good = await door(client, admin)
    also_good = await door(client, admin, campaign_id=good.campaign_id)
    elsewhere = await door(client, admin)
    successful = await status_named(client, admin, "Successful")
    unassociated = Door(good.campaign_id, str(uuid.uuid4()), good.household_id, "")
    items = [
        bulk_item(good, successful),
        bulk_item(also_good, str(uuid.uuid4())),
        bulk_item(unassociated, successful),
        bulk_item(also_good, successful, campaign_id=elsewhere.campaign_id),
        bulk_item(also_good, successful),
    ]

    response = await client.post(
        "/v1/campaigns/contact-households/bulk", json={"data": items}, headers=admin
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    bad = {int(e["path"].split("/")[2]) for e in problem["errors"]}
    assert bad == {1, 2, 3}, problem
    assert any(e["path"] == "/data/1/data/statusId" for e in problem["errors"]), problem
    assert any(e["path"] == "/data/3/data/campaignId" for e in problem["errors"]), problem
    for at in (good, also_good, elsewhere):
        assert await door_record(client, admin, at) is None, "nothing was written"


async def test_bulk_needs_params_and_a_campaign(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    successful = await status_named(client, admin, "Successful")
    bodies = [
        {"data": [{"data": {"campaignId": at.campaign_id, "statusId": successful}}]},
        {"data": [{"data": {"statusId": successful}, "params": at.params}]},
        {
            "data": [
                bulk_item(Door(str(uuid.uuid4()), at.contact_id, at.household_id, ""), successful)
            ]
        },
    ]

    for body in bodies:
        response = await client.post(
            "/v1/campaigns/contact-households/bulk", json=body, headers=admin
        )

        assert_problem(response, 400)
    assert await door_record(client, admin, at) is None


# --- the campaign's map ---------------------------------------------------------------------


async def test_campaign_list_filters_and_syncs_by_modified(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doors = [await door(client, admin)]
    for _ in range(2):
        doors.append(await door(client, admin, campaign_id=doors[0].campaign_id))
    outsider = await door(client, admin)
    statuses = await status_ids(client, admin)
    records = [await put_door(client, admin, at, {}) for at in doors]
    await put_door(client, admin, outsider, {"statusId": statuses["Come Back"]})
    come_back = await patch_door(
        client, admin, doors[1], records[1], set_status(statuses["Come Back"])
    )
    assert come_back.status_code == 200, come_back.text
    url = f"/v1/campaigns/{doors[0].campaign_id}/contact-households"

    filtered = await client.get(url, params={"filter": '/data/state eq "come-back"'}, headers=admin)

    assert filtered.status_code == 200, filtered.text
    assert filtered.json() == {"data": [come_back.json()], "meta": {}}

    everything = (await client.get(url, headers=admin)).json()["data"]
    assert {d["data"]["contactHouseholdId"] for d in everything} == {
        at.contact_household_id for at in doors
    }
    seen = max(d["meta"]["modified"] for d in everything)
    await asyncio.sleep(0.01)
    changed = await patch_door(
        client, admin, doors[2], records[2], set_status(statuses["Not Home"])
    )
    assert changed.status_code == 200, changed.text

    delta = await client.get(url, params={"filter": f'/meta/modified gt "{seen}"'}, headers=admin)

    assert delta.status_code == 200, delta.text
    assert delta.json()["data"] == [changed.json()]


async def test_campaign_list_of_an_unknown_campaign_is_404(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    theirs = await door(client, other_tenant.headers("admin"))

    for campaign_id in (str(uuid.uuid4()), theirs.campaign_id):
        response = await client.get(
            f"/v1/campaigns/{campaign_id}/contact-households", headers=admin
        )

        assert_problem(response, 404, "NOT_FOUND")


# --- the state table ------------------------------------------------------------------------


async def test_every_default_status_gives_its_state_and_flags(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    record = await put_door(client, admin, at, {})
    response = await client.get("/v1/statuses?limit=1000", headers=admin)
    statuses = response.json()["data"]
    assert len(statuses) == 10

    for status in statuses:
        state = status["data"]["contactState"]
        patched = await patch_door(client, admin, at, record, set_status(status["id"]))

        assert patched.status_code == 200, patched.text
        record = patched.json()
        assert record["data"]["statusId"] == status["id"], status["data"]["name"]
        assert record["data"]["state"] == state, status["data"]["name"]
        assert flags(record) == derived(state), status["data"]["name"]


# --- permissions and tenancy ----------------------------------------------------------------


async def test_a_canvasser_sets_door_status(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    canvasser = tenant.headers("canvasser")
    not_home = await status_named(client, canvasser, "Not Home")

    created = await client.put(at.path, json=SEED_PUT, headers=canvasser)
    assert created.status_code == 201, created.text
    patched = await patch_door(client, canvasser, at, created.json(), set_status(not_home))
    assert patched.status_code == 200, patched.text
    bulk = await client.post(
        "/v1/campaigns/contact-households/bulk",
        json={"data": [bulk_item(at, not_home)]},
        headers=canvasser,
    )
    assert bulk.status_code == 200, bulk.text


async def test_a_viewer_reads_doors_but_cannot_write_them(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    not_home = await status_named(client, admin, "Not Home")
    viewer = tenant.headers("viewer")

    refused = [
        await client.put(at.path, json=SEED_PUT, headers=viewer),
        await patch_door(client, viewer, at, written, set_status(not_home)),
        await client.post(
            "/v1/campaigns/contact-households/bulk",
            json={"data": [bulk_item(at, not_home)]},
            headers=viewer,
        ),
    ]

    for response in refused:
        problem = assert_problem(response, 403, "FORBIDDEN")
        assert "modify@contact-household-campaigns" in problem["detail"], problem
    assert (await client.get(at.path, headers=viewer)).json() == written
    listed = await client.get(f"/v1/campaigns/{at.campaign_id}/contact-households", headers=viewer)
    assert listed.json()["data"] == [written]


@pytest.mark.parametrize("suffix", ["", "/status"])
async def test_another_tenants_door_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant, suffix: str
) -> None:
    at = await door(client, admin)
    written = await put_door(client, admin, at, {})
    theirs = other_tenant.headers("admin")
    not_home = (await status_ids(client, theirs))["Not Home"]

    responses = [
        await client.get(at.path + suffix, headers=theirs),
        await client.put(at.path + suffix, json=SEED_PUT, headers=theirs),
        await patch_door(client, theirs, at, written, set_status(not_home)),
    ]

    for response in responses:
        assert_problem(response, 404, "NOT_FOUND")
    assert await door_record(client, admin, at) == written


async def test_association_is_needed_before_a_door_exists(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    household = await new_household(client, admin)
    moved = Door(at.campaign_id, at.contact_id, household, "")
    assert_problem(await client.put(moved.path, json=SEED_PUT, headers=admin), 404)

    pair = await associate(client, admin, at.contact_id, household)

    created = await client.put(moved.path, json=SEED_PUT, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["contactHouseholdId"] == pair
