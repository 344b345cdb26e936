"""Interactions through HTTP, replaying seed 001, and how recording one moves the door."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.builders import ETAG, TIMESTAMP, assert_problem, create, if_match
from tests.canvassing import (
    LOS_ANGELES,
    NEW_YORK_TO_LOS_ANGELES_MILES,
    SEED_LOCATION_TO_NEW_YORK_MILES,
    door,
    door_record,
    interaction,
    interactions_of,
    put_door,
    record_interaction,
    status_ids,
)
from tests.conftest import Tenant

SEED_PATCH = {
    "data": [
        {"op": "replace", "path": "/successful", "value": False},
        {"op": "replace", "path": "/unavailable", "value": False},
    ]
}
ALLOWED_FILTERS = ["/data/campaignId", "/data/contactId", "/data/contactHouseholdId"]
T1 = "2024-05-01T10:00:00.000Z"
T2 = "2024-05-01T11:00:00.000Z"
T3 = "2024-05-01T12:00:00.000Z"


# --- seed 001 replayed ------------------------------------------------------------------


async def test_seed_post_stores_the_body_with_a_computed_distance(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    body = interaction(at)

    response = await client.post("/v2/interactions", json={**body, "distance": 1}, headers=admin)

    assert response.status_code == 201, response.text
    document = response.json()
    assert document["data"] == {
        **body,
        "distance": pytest.approx(SEED_LOCATION_TO_NEW_YORK_MILES, abs=0.01),
        # Hundreds of miles from the door (docs/quality.md).
        "qualityFlags": ["far-from-door"],
    }
    assert document["data"]["distance"] != 1, "a client's distance is never taken"
    assert document["customerId"] == str(tenant.customer_id)
    assert document["meta"]["resource"] == "interactions"
    assert TIMESTAMP.match(document["meta"]["created"])
    assert ETAG.match(document["meta"]["etag"])
    assert response.headers["ETag"] == f'"{document["meta"]["etag"]}"'


async def test_post_accepts_the_enveloped_form_too(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    body = interaction(at)

    response = await client.post(
        "/v2/interactions", json={"data": {**body, "distance": 1}}, headers=admin
    )

    assert response.status_code == 201, response.text
    assert response.json()["data"] == {
        **body,
        "distance": pytest.approx(SEED_LOCATION_TO_NEW_YORK_MILES, abs=0.01),
        "qualityFlags": ["far-from-door"],
    }


async def test_get_returns_the_recorded_interaction(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await record_interaction(client, admin, await door(client, admin))

    response = await client.get(f"/v2/interactions/{created['id']}", headers=admin)

    assert response.status_code == 200
    assert response.json() == created


async def test_seed_patch_with_etag_header_and_the_door_follows_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    created = await record_interaction(client, admin, at)
    assert (await door_record(client, admin, at) or {})["data"]["state"] == "come-back"

    response = await client.patch(
        f"/v2/interactions/{created['id']}",
        json=SEED_PATCH,
        headers={**admin, "etag": created["meta"]["etag"]},
    )

    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["data"] == {**created["data"], "successful": False, "unavailable": False}
    assert patched["meta"]["etag"] != created["meta"]["etag"]
    # The corrected interaction is still the latest one, so the door follows the fix.
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["state"] == "contacted-available-not-successful"


async def test_delete_hides_the_interaction(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    created = await record_interaction(client, admin, at)

    response = await client.delete(
        f"/v2/interactions/{created['id']}", headers={**admin, "etag": created["meta"]["etag"]}
    )

    assert response.status_code == 204
    assert (await client.get(f"/v2/interactions/{created['id']}", headers=admin)).status_code == 404
    assert await interactions_of(client, admin, at.campaign_id) == []


async def test_seed_list_url_returns_the_campaigns_interactions_sorted_by_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    elsewhere = await door(client, admin)
    mine = [
        await record_interaction(client, admin, at, timestamp=T1),
        await record_interaction(client, admin, at, timestamp=T2),
    ]
    await record_interaction(client, admin, elsewhere)
    # The seed's own URL, percent-encoding, JavaScript's "all" limit and sort pair.
    query = (
        f"filter%5B%2Fdata%2FcampaignId%5D={at.campaign_id}"
        "&skip=0&limit=9007199254740991&sort=%2Fdata%2Fid&sort=ASC"
    )

    response = await client.get(f"/v2/interactions?{query}", headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"data": sorted(mine, key=lambda d: d["id"]), "meta": {}}


async def test_filter_on_an_attribute_not_allowed_names_the_allowed_ones(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    query = urlencode({"filter": '/data/timestamp gt "2018-01-01T00:00:00.000Z"'})

    response = await client.get(f"/v2/interactions?{query}", headers=admin)

    problem = assert_problem(response, 400, "BAD_FILTER")
    assert "/data/timestamp" in problem["detail"]
    for allowed in [*ALLOWED_FILTERS, "/data/householdId"]:
        assert allowed in problem["detail"], problem
    bracket = await client.get(
        "/v2/interactions", params={"filter[/data/unavailable]": "true"}, headers=admin
    )
    assert "/data/householdId" in assert_problem(bracket, 400, "BAD_FILTER")["detail"]


@pytest.mark.parametrize(
    "field",
    [
        "campaignId",
        "contactId",
        "householdId",
        "contactHouseholdId",
        "timestamp",
        "survey",
        "unavailable",
    ],
)
async def test_a_missing_required_field_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], field: str
) -> None:
    body = interaction(await door(client, admin))
    del body[field]

    response = await client.post("/v2/interactions", json=body, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert f"/data/{field}" in [e["path"] for e in problem["errors"]], problem


# --- distance -----------------------------------------------------------------------------


async def test_distance_is_great_circle_miles_to_the_household(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)  # a household in New York

    created = await record_interaction(client, admin, at, location=LOS_ANGELES)

    assert created["data"]["distance"] == pytest.approx(NEW_YORK_TO_LOS_ANGELES_MILES, abs=0.5)
    assert created["data"]["location"] == LOS_ANGELES


async def test_no_distance_without_household_coords_or_location(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    nowhere = await door(client, admin, coords=None)
    no_coords = await record_interaction(client, admin, nowhere, distance=12.5)
    assert "distance" not in no_coords["data"]

    somewhere = await door(client, admin)
    no_location = await record_interaction(client, admin, somewhere, location=None, distance=3)
    assert "distance" not in no_location["data"]
    assert "location" not in no_location["data"]


async def test_a_patch_cannot_set_the_distance(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await record_interaction(client, admin, await door(client, admin))

    response = await client.patch(
        f"/v2/interactions/{created['id']}",
        json={"data": [{"op": "replace", "path": "/distance", "value": 1}]},
        headers={**admin, **if_match(created)},
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["distance"] == created["data"]["distance"]


async def test_location_out_of_range_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    response = await client.post(
        "/v2/interactions",
        json=interaction(at, location={"lat": 91, "lng": 0}),
        headers=admin,
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "/data/location/lat" in [e["path"] for e in problem["errors"]]


# --- recording an interaction moves the door --------------------------------------------


@pytest.mark.parametrize(
    ("fields", "state", "status"),
    [
        (
            {"unavailable": True, "unavailableReason": "Not Home"},
            "contacted-unavailable-not-home",
            "Not Home",
        ),
        ({"unavailable": True, "unavailableReason": "Come Back"}, "come-back", "Come Back"),
        ({"unavailable": True, "unavailableReason": "Appointment"}, "appointment", "Appointment"),
        # SPEC §2: of two defaults sharing a state, the first in its list is used.
        (
            {"unavailable": True, "unavailableReason": "Moved away"},
            "contacted-unavailable-other",
            "Bad Contact Info",
        ),
        (
            {"unavailable": False, "successful": True, "unavailableReason": None},
            "contacted-available-successful",
            "Successful",
        ),
        (
            {"unavailable": False, "successful": False, "unavailableReason": None},
            "contacted-available-not-successful",
            "Not Successful",
        ),
    ],
)
async def test_interaction_creates_the_door_record_in_its_state(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    fields: dict[str, Any],
    state: str,
    status: str,
) -> None:
    at = await door(client, admin)
    statuses = await status_ids(client, admin)
    assert await door_record(client, admin, at) is None

    created = await record_interaction(client, admin, at, **fields)

    record = await door_record(client, admin, at)
    assert record is not None, "the door record is created when absent"
    data = record["data"]
    assert data["campaignId"] == at.campaign_id
    assert data["contactHouseholdId"] == at.contact_household_id
    assert data["state"] == state
    assert data["statusId"] == statuses[status]
    assert data["contacted"] is True
    assert data["successful"] is (state == "contacted-available-successful")
    assert data["availability"]["available"] is (not fields["unavailable"])
    if fields["unavailable"]:
        assert data["availability"]["unavailableReason"] == fields["unavailableReason"]
    assert data["lastInteraction"] == {
        "interactionId": created["id"],
        "timestamp": created["data"]["timestamp"],
    }


async def test_interaction_with_a_status_puts_the_door_in_that_status_state(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    statuses = await status_ids(client, admin)
    await put_door(client, admin, at, {"type": "high-priority"})

    await record_interaction(
        client, admin, at, unavailable=False, successful=True, statusId=statuses["Refused"]
    )

    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["statusId"] == statuses["Refused"]
    assert record["data"]["state"] == "contacted-unavailable-other"
    assert record["data"]["contacted"] is True
    assert record["data"]["successful"] is False
    assert record["data"]["type"] == "high-priority", "the door keeps its list type"


async def test_a_late_older_interaction_is_stored_but_does_not_move_the_door_back(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    newer = await record_interaction(
        client, admin, at, timestamp=T2, unavailable=False, successful=True, unavailableReason=None
    )

    older = await record_interaction(
        client, admin, at, timestamp=T1, unavailable=True, unavailableReason="Not Home"
    )

    stored = {d["id"] for d in await interactions_of(client, admin, at.campaign_id)}
    assert stored == {newer["id"], older["id"]}
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["state"] == "contacted-available-successful"
    assert record["data"]["lastInteraction"]["timestamp"] == T2

    newest = await record_interaction(
        client, admin, at, timestamp=T3, unavailable=True, unavailableReason="Come Back"
    )

    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["state"] == "come-back"
    assert record["data"]["lastInteraction"] == {"interactionId": newest["id"], "timestamp": T3}


async def test_timestamps_with_offsets_compare_by_instant(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    await record_interaction(client, admin, at, timestamp=T2)  # 11:00 UTC

    earlier = await record_interaction(client, admin, at, timestamp="2024-05-01T12:30:00+02:00")

    assert earlier["data"]["timestamp"] == "2024-05-01T10:30:00.000Z"
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["lastInteraction"]["timestamp"] == T2


# --- atomicity ------------------------------------------------------------------------------


async def test_a_failure_after_the_insert_leaves_no_interaction_and_no_door_change(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], app: FastAPI
) -> None:
    fresh = await door(client, admin)
    known = await door(client, admin, campaign_id=fresh.campaign_id)
    before = await put_door(client, admin, known, {"type": "high-priority"})
    name = f"fail_{tenant.customer_id.hex}"
    pool = app.state.pool
    # A real database failure, raised only for this test's tenant, after the
    # interaction row is inserted (the door record is written after it).
    await pool.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.customer_id = '{tenant.customer_id}' THEN
                RAISE EXCEPTION 'injected failure';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON contact_household_campaigns
            FOR EACH ROW EXECUTE FUNCTION {name}();
        """
    )
    try:
        responses = [
            await client.post("/v2/interactions", json=interaction(fresh), headers=admin),
            await client.post("/v2/interactions", json=interaction(known), headers=admin),
        ]
    finally:
        await pool.execute(
            f"DROP TRIGGER {name} ON contact_household_campaigns; DROP FUNCTION {name}();"
        )

    for response in responses:
        problem = assert_problem(response, 500)
        assert "injected failure" not in problem["detail"]
        assert "contact_household_campaigns" not in response.text
    assert await interactions_of(client, admin, fresh.campaign_id) == []
    assert await door_record(client, admin, fresh) is None
    assert await door_record(client, admin, known) == before


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_interactions_leave_the_door_on_the_later_timestamp(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = (await door(client, admin)).campaign_id
    not_home = {"unavailable": True, "unavailableReason": "Not Home"}
    success = {"unavailable": False, "successful": True, "unavailableReason": None}
    for round_number in range(8):
        at = await door(client, admin, campaign_id=campaign_id)
        if round_number % 4 >= 2:
            # Half the rounds race on a door that already has a record.
            await put_door(client, admin, at, {"type": "normal"})
        early = interaction(at, timestamp=T1, **not_home)
        late = interaction(at, timestamp=T2, **success)
        bodies = [early, late] if round_number % 2 else [late, early]

        responses = await asyncio.gather(
            *(client.post("/v2/interactions", json=body, headers=admin) for body in bodies)
        )

        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
        record = await door_record(client, admin, at)
        assert record is not None
        assert record["data"]["lastInteraction"]["timestamp"] == T2, round_number
        assert record["data"]["state"] == "contacted-available-successful", round_number
    listed = await client.get(
        f"/v1/campaigns/{campaign_id}/contact-households?count=true", headers=admin
    )
    assert listed.json()["meta"]["total"] == 8, "one record per door, never two"


async def test_a_door_changed_between_the_knocks_read_and_write_still_follows_the_knock(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], database_url: str
) -> None:
    # The knock reads its door unlocked and moves it in its insert's statement only if
    # the etag is unchanged. Here another writer holds the row when the knock gets
    # there and changes it: the knock must move the door again, under the row lock.
    at = await door(client, admin)
    await put_door(client, admin, at, {"type": "normal"})
    where = (
        "customer_id = $1 AND (data ->> 'campaignId') = $2 "
        "AND (data ->> 'contactHouseholdId') = $3 AND NOT is_deleted"
    )
    keys = (tenant.customer_id, at.campaign_id, at.contact_household_id)
    other = await asyncpg.connect(database_url)
    try:
        writer = other.transaction()
        await writer.start()
        await other.execute(
            f"SELECT 1 FROM contact_household_campaigns WHERE {where} FOR UPDATE", *keys
        )
        knock = asyncio.ensure_future(
            client.post("/v2/interactions", json=interaction(at, timestamp=T1), headers=admin)
        )
        await _until_waiting_for_a_row_lock(other)
        await other.execute(
            f"UPDATE contact_household_campaigns SET etag = 'changed-meanwhile' WHERE {where}",
            *keys,
        )
        await writer.commit()
        response = await knock
    finally:
        await other.close()

    assert response.status_code == 201, response.text
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["lastInteraction"] == {
        "interactionId": response.json()["id"],
        "timestamp": T1,
    }
    assert record["meta"]["etag"] != "changed-meanwhile"


async def _until_waiting_for_a_row_lock(holder: asyncpg.Connection) -> None:
    """Until another backend waits for a lock ``holder``'s transaction holds."""
    for _ in range(500):
        if await holder.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the knock never waited for the door's row lock")


async def test_concurrent_interactions_across_processes_keep_one_record_on_the_latest(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], live_server: str
) -> None:
    at = await door(client, admin)
    timestamps = [f"2024-06-01T10:{minute:02d}:00.000Z" for minute in range(10)]
    bodies = [interaction(at, timestamp=t) for t in reversed(timestamps)]

    async with httpx.AsyncClient(base_url=live_server, timeout=30) as live:
        responses = await asyncio.gather(
            *(live.post("/v2/interactions", json=body, headers=admin) for body in bodies)
        )

    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    latest = next(r.json() for r in responses if r.json()["data"]["timestamp"] == timestamps[-1])
    record = await door_record(client, admin, at)
    assert record is not None
    assert record["data"]["lastInteraction"] == {
        "interactionId": latest["id"],
        "timestamp": timestamps[-1],
    }
    listed = await client.get(
        f"/v1/campaigns/{at.campaign_id}/contact-households?count=true", headers=admin
    )
    assert listed.json()["meta"]["total"] == 1


# --- references stay inside the tenant -----------------------------------------------------


async def test_references_to_another_tenant_are_400_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    at = await door(client, admin)
    theirs = await door(client, other_tenant.headers("admin"))
    their_status = (await status_ids(client, other_tenant.headers("admin")))["Not Home"]
    cases = [
        ({"campaignId": theirs.campaign_id}, "/data/campaignId"),
        ({"contactHouseholdId": theirs.contact_household_id}, "/data/contactHouseholdId"),
        ({"householdId": theirs.household_id}, "/data/householdId"),
        ({"statusId": their_status}, "/data/statusId"),
        ({"statusId": str(uuid.uuid4())}, "/data/statusId"),
        ({"contactId": str(uuid.uuid4())}, "/data/contactId"),
    ]
    for fields, path in cases:
        response = await client.post(
            "/v2/interactions", json=interaction(at, **fields), headers=admin
        )

        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert path in [e["path"] for e in problem["errors"]], (fields, problem)
    assert await interactions_of(client, admin, at.campaign_id) == []
    assert await door_record(client, admin, at) is None


async def test_contact_must_match_the_contact_household(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    neighbour = await door(client, admin, campaign_id=at.campaign_id)

    response = await client.post(
        "/v2/interactions", json=interaction(at, contactId=neighbour.contact_id), headers=admin
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in problem["errors"]] == ["/data/contactId"]


# --- permissions and tenancy ---------------------------------------------------------------


async def test_a_canvasser_records_and_a_viewer_only_reads(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    created = await create(client, "/v2/interactions", interaction(at), tenant.headers("canvasser"))
    viewer = tenant.headers("viewer")

    refused = await client.post("/v2/interactions", json=interaction(at), headers=viewer)

    assert "insert@interactions" in assert_problem(refused, 403, "FORBIDDEN")["detail"]
    got = await client.get(f"/v2/interactions/{created['id']}", headers=viewer)
    assert got.status_code == 200 and got.json() == created
    assert [d["id"] for d in await interactions_of(client, viewer, at.campaign_id)] == [
        created["id"]
    ]


async def test_another_tenants_interaction_is_not_found(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    created = await record_interaction(client, admin, await door(client, admin))
    theirs = other_tenant.headers("admin")
    url = f"/v2/interactions/{created['id']}"

    responses = [
        await client.get(url, headers=theirs),
        await client.patch(url, json=SEED_PATCH, headers={**theirs, **if_match(created)}),
        await client.delete(url, headers={**theirs, **if_match(created)}),
    ]

    for response in responses:
        assert_problem(response, 404, "NOT_FOUND")
    assert (await client.get(url, headers=admin)).json() == created


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+03:00"], ids=["after", "before"]
)
async def test_a_timestamp_outside_years_1_to_9999_in_utc_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], moment: str
) -> None:
    at = await door(client, admin)

    response = await client.post(
        "/v2/interactions", json=interaction(at, timestamp=moment), headers=admin
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert any(error["path"].endswith("/timestamp") for error in problem["errors"]), problem
    assert moment in response.text
    assert await interactions_of(client, admin, at.campaign_id) == []


async def test_the_last_moment_of_year_9999_is_a_valid_timestamp(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)

    created = await record_interaction(client, admin, at, timestamp="9999-12-31T23:59:59.999Z")

    assert created["data"]["timestamp"] == "9999-12-31T23:59:59.999Z"
