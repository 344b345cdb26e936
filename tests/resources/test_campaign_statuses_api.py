"""A campaign's statuses through HTTP: link, unlink, list, and what doors may take (SPEC §10)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.builders import assert_problem, create, if_match
from tests.canvassing import (
    door,
    door_record,
    interaction,
    new_campaign,
    put_door,
    record_interaction,
    status_ids,
)
from tests.conftest import Tenant
from tests.documents.test_change_feed_api import Feed


def link_path(campaign_id: str, status_id: str) -> str:
    return f"/v1/campaigns/{campaign_id}/statuses/{status_id}"


async def link(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, status_id: str
) -> httpx.Response:
    return await client.put(link_path(campaign_id, status_id), headers=headers)


async def campaign_statuses(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/campaigns/{campaign_id}/statuses", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    documents: list[dict[str, Any]] = response.json()["data"]
    return documents


def names(documents: list[dict[str, Any]]) -> list[str]:
    return sorted(d["data"]["name"] for d in documents)


# --- linking, unlinking, listing -------------------------------------------------------


async def test_a_campaign_without_links_lists_every_status_of_its_tenant(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)

    listed = await campaign_statuses(client, admin, campaign_id)

    assert names(listed) == sorted(await status_ids(client, admin))
    assert all(d["meta"]["resource"] == "statuses" for d in listed)


async def test_linking_is_idempotent_and_narrows_the_list(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)

    first = await link(client, admin, campaign_id, statuses["Successful"])
    again = await link(client, admin, campaign_id, statuses["Successful"])
    await link(client, admin, campaign_id, statuses["Not Home"])

    assert first.status_code == 201, first.text
    assert first.json()["id"] == statuses["Successful"]
    assert first.json()["meta"]["resource"] == "statuses"
    assert first.headers["ETag"] == f'"{first.json()["meta"]["etag"]}"'
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert names(await campaign_statuses(client, admin, campaign_id)) == ["Not Home", "Successful"]


async def test_links_belong_to_one_campaign(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    linked = await new_campaign(client, admin)
    other = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)

    await link(client, admin, linked, statuses["Refused"])

    assert names(await campaign_statuses(client, admin, linked)) == ["Refused"]
    assert len(await campaign_statuses(client, admin, other)) == len(statuses)


async def test_unlinking_the_last_status_allows_them_all_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    await link(client, admin, campaign_id, statuses["Successful"])

    # A link has no etag: no precondition is needed, and one sent is ignored.
    removed = await client.delete(
        link_path(campaign_id, statuses["Successful"]), headers={**admin, "If-Match": '"stale"'}
    )
    again = await client.delete(link_path(campaign_id, statuses["Successful"]), headers=admin)

    assert removed.status_code == 204, removed.text
    body = assert_problem(again, 404, "NOT_FOUND")
    assert "not linked" in body["detail"]
    assert len(await campaign_statuses(client, admin, campaign_id)) == len(statuses)


async def test_a_status_unlinked_can_be_linked_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    await link(client, admin, campaign_id, statuses["Successful"])
    await link(client, admin, campaign_id, statuses["Refused"])
    removed = await client.delete(link_path(campaign_id, statuses["Successful"]), headers=admin)
    assert removed.status_code == 204, removed.text
    assert names(await campaign_statuses(client, admin, campaign_id)) == ["Refused"]

    again = await link(client, admin, campaign_id, statuses["Successful"])
    repeated = await link(client, admin, campaign_id, statuses["Successful"])

    assert again.status_code == 201, again.text
    assert repeated.status_code == 200, repeated.text
    assert names(await campaign_statuses(client, admin, campaign_id)) == ["Refused", "Successful"]


async def test_a_deleted_status_drops_out_of_the_campaign(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    extra = await create(
        client,
        "/v1/statuses",
        {"data": {"name": "Yard Sign", "contactState": "contacted-available-successful"}},
        admin,
    )
    await link(client, admin, campaign_id, extra["id"])
    await link(client, admin, campaign_id, statuses["Not Home"])

    deleted = await client.delete(
        f"/v1/statuses/{extra['id']}", headers={**admin, **if_match(extra)}
    )

    assert deleted.status_code == 204
    assert names(await campaign_statuses(client, admin, campaign_id)) == ["Not Home"]
    assert_problem(await link(client, admin, campaign_id, extra["id"]), 404, "NOT_FOUND")


async def test_the_list_takes_the_list_parameters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    for name in ("Successful", "Not Successful", "Not Home", "Refused"):
        await link(client, admin, campaign_id, statuses[name])

    filtered = await campaign_statuses(
        client, admin, campaign_id, filter='/data/name like "Not*"', sort='["data/name","DESC"]'
    )
    assert [d["data"]["name"] for d in filtered] == ["Not Successful", "Not Home"]

    response = await client.get(
        f"/v1/campaigns/{campaign_id}/statuses",
        params={"limit": "1", "skip": "1", "count": "true", "sort": "/data/name"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert [d["data"]["name"] for d in response.json()["data"]] == ["Not Successful"]
    assert response.json()["meta"]["total"] == 4

    by_state = await campaign_statuses(
        client, admin, campaign_id, **{"filter[/data/contactState]": "contacted-unavailable-other"}
    )
    assert names(by_state) == ["Refused"]


async def test_the_list_refuses_feed_options_and_bad_parameters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    path = f"/v1/campaigns/{campaign_id}/statuses"

    for option in ({"skip": "1"}, {"sort": "/data/name"}, {"count": "true"}):
        refused = await client.get(path, params={"since": "", **option}, headers=admin)
        assert next(iter(option)) in assert_problem(refused, 400, "VALIDATION_ERROR")["detail"]
    assert_problem(
        await client.get(path, params={"since": "nonsense"}, headers=admin), 400, "BAD_SYNC_TOKEN"
    )
    assert_problem(
        await client.get(path, params={"filter": "/data/name eq"}, headers=admin), 400, "BAD_FILTER"
    )
    assert_problem(await client.get(path, params={"limt": "1"}, headers=admin), 400)


async def test_unknown_campaigns_and_statuses_are_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    status_id = (await status_ids(client, admin))["Successful"]
    nowhere = str(uuid.uuid4())

    assert_problem(await link(client, admin, nowhere, status_id), 404, "NOT_FOUND")
    assert_problem(await link(client, admin, campaign_id, nowhere), 404, "NOT_FOUND")
    assert_problem(
        await client.delete(link_path(nowhere, status_id), headers=admin), 404, "NOT_FOUND"
    )
    assert_problem(
        await client.get(f"/v1/campaigns/{nowhere}/statuses", headers=admin), 404, "NOT_FOUND"
    )
    assert len(await campaign_statuses(client, admin, campaign_id)) == 10


async def test_malformed_ids_are_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    campaign_id = await new_campaign(client, admin)

    assert_problem(await link(client, admin, campaign_id, "not-a-uuid"), 400)
    assert_problem(await link(client, admin, "not-a-uuid", str(uuid.uuid4())), 400)
    assert_problem(await client.get("/v1/campaigns/not-a-uuid/statuses", headers=admin), 400)


async def test_another_tenants_status_or_campaign_is_404_never_a_link(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = tenant.headers("admin"), other_tenant.headers("admin")
    my_campaign = await new_campaign(client, mine)
    their_campaign = await new_campaign(client, theirs)
    my_status = (await status_ids(client, mine))["Successful"]
    their_status = (await status_ids(client, theirs))["Successful"]

    assert_problem(await link(client, mine, my_campaign, their_status), 404, "NOT_FOUND")
    assert_problem(await link(client, mine, their_campaign, my_status), 404, "NOT_FOUND")
    assert_problem(await client.get(f"/v1/campaigns/{their_campaign}/statuses", headers=mine), 404)
    await link(client, theirs, their_campaign, their_status)
    assert_problem(await client.delete(link_path(their_campaign, their_status), headers=mine), 404)

    assert len(await campaign_statuses(client, mine, my_campaign)) == 10
    assert names(await campaign_statuses(client, theirs, their_campaign)) == ["Successful"]


async def test_viewers_read_and_only_admins_link(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.headers("admin")
    campaign_id = await new_campaign(client, admin)
    status_id = (await status_ids(client, admin))["Successful"]

    for role in ("viewer", "canvasser"):
        headers = tenant.headers(role)
        assert len(await campaign_statuses(client, headers, campaign_id)) == 10
        put = assert_problem(await link(client, headers, campaign_id, status_id), 403, "FORBIDDEN")
        assert "modify@campaigns" in put["detail"]
        delete = await client.delete(link_path(campaign_id, status_id), headers=headers)
        assert "modify@campaigns" in assert_problem(delete, 403)["detail"]

    statuses_only = tenant.headers(permissions=["read@statuses"])
    response = await client.get(f"/v1/campaigns/{campaign_id}/statuses", headers=statuses_only)
    assert "read@campaigns" in assert_problem(response, 403)["detail"]
    assert_problem(await client.get(f"/v1/campaigns/{campaign_id}/statuses"), 401)
    assert len(await campaign_statuses(client, admin, campaign_id)) == 10  # nothing linked


# --- the change feed of a campaign's statuses ---------------------------------------------


@pytest.fixture
async def raw(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, standing for another writer."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


class Phone:
    """A local copy of a campaign's statuses, kept by following the feed."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str):
        self.feed = Feed(client, f"/v1/campaigns/{campaign_id}/statuses", headers)
        self.copy: dict[str, dict[str, Any]] = {}

    async def sync(self, expected: set[str]) -> list[dict[str, Any]]:
        """Follow the feed until every id in ``expected`` came; the changes delivered."""
        changes = await self.feed.until(expected)
        for change in changes:
            if change["meta"]["isDeleted"]:
                self.copy.pop(change["id"], None)
            else:
                self.copy[change["id"]] = change
        return changes

    def names(self) -> list[str]:
        return names(list(self.copy.values()))


def tombstones(changes: list[dict[str, Any]]) -> int:
    return sum(change["meta"]["isDeleted"] for change in changes)


async def test_the_feed_follows_links_unlinks_and_status_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    every = set(statuses.values())
    phone = Phone(client, admin, campaign_id)

    first = await phone.sync(every)
    assert len(first) == 10 and tombstones(first) == 0
    assert phone.names() == names(await campaign_statuses(client, admin, campaign_id))
    assert await phone.feed.to_the_end() == []

    # A link changes which statuses are the campaign's: the whole set comes again.
    await link(client, admin, campaign_id, statuses["Successful"])
    await link(client, admin, campaign_id, statuses["Not Home"])
    linked = await phone.sync(every)
    assert len(linked) == 10 and tombstones(linked) == 8
    assert phone.names() == ["Not Home", "Successful"]

    # A change of one status is that status alone (here outside the campaign: a tombstone).
    refused = (await client.get(f"/v1/statuses/{statuses['Refused']}", headers=admin)).json()
    patched = await client.patch(
        f"/v1/statuses/{statuses['Refused']}",
        json={"data": [{"op": "replace", "path": "/pinColor", "value": "#000000"}]},
        headers={**admin, **if_match(refused)},
    )
    assert patched.status_code == 200, patched.text
    changed = await phone.sync({statuses["Refused"]})
    assert [(c["id"], c["meta"]["isDeleted"]) for c in changed] == [(statuses["Refused"], True)]

    # Unlinking, and deleting the last linked status (the campaign allows all again).
    yard_sign = await create(
        client,
        "/v1/statuses",
        {"data": {"name": "Yard Sign", "contactState": "contacted-available-successful"}},
        admin,
    )
    await link(client, admin, campaign_id, yard_sign["id"])
    for name in ("Successful", "Not Home"):
        unlinked = await client.delete(link_path(campaign_id, statuses[name]), headers=admin)
        assert unlinked.status_code == 204, unlinked.text
    narrowed = await phone.sync(every | {yard_sign["id"]})
    assert len(narrowed) == 11 and phone.names() == ["Yard Sign"]
    deleted = await client.delete(
        f"/v1/statuses/{yard_sign['id']}", headers={**admin, **if_match(yard_sign)}
    )
    assert deleted.status_code == 204, deleted.text
    widened = await phone.sync(every | {yard_sign["id"]})
    assert len(widened) == 11 and tombstones(widened) == 1
    assert phone.names() == names(await campaign_statuses(client, admin, campaign_id))
    assert len(phone.copy) == 10
    assert await phone.feed.to_the_end() == []


async def test_the_feed_takes_a_filter_and_stays_in_its_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = tenant.headers("admin"), other_tenant.headers("admin")
    my_campaign = await new_campaign(client, mine)
    their_campaign = await new_campaign(client, theirs)
    my_statuses = await status_ids(client, mine)
    their_statuses = await status_ids(client, theirs)
    await link(client, theirs, their_campaign, their_statuses["Refused"])
    state = {"filter[/data/contactState]": "contacted-unavailable-other"}
    feed = Feed(client, f"/v1/campaigns/{my_campaign}/statuses", mine, **state)

    changes = await feed.until({my_statuses["Refused"]})

    assert sorted(c["data"]["name"] for c in changes) == ["Bad Contact Info", "Refused"]
    assert {c["customerId"] for c in changes} == {str(tenant.customer_id)}
    assert all(not c["meta"]["isDeleted"] for c in changes)
    for campaign_id in (their_campaign, str(uuid.uuid4())):
        refused = await client.get(
            f"/v1/campaigns/{campaign_id}/statuses", params={"since": ""}, headers=mine
        )
        assert_problem(refused, 404, "NOT_FOUND")


async def test_a_late_committing_unlink_is_not_skipped(
    client: httpx.AsyncClient, admin: dict[str, str], raw: asyncpg.Connection, tenant: Tenant
) -> None:
    campaign_id = await new_campaign(client, admin)
    statuses = await status_ids(client, admin)
    every = set(statuses.values())
    await link(client, admin, campaign_id, statuses["Successful"])
    await link(client, admin, campaign_id, statuses["Not Home"])
    phone = Phone(client, admin, campaign_id)
    await phone.sync(every)
    assert phone.names() == ["Not Home", "Successful"]

    writer = raw.transaction()  # another writer unlinks first and commits last
    await writer.start()
    try:
        await raw.execute(
            "UPDATE campaign_statuses SET is_deleted = true "
            "WHERE customer_id = $1 AND campaign_id = $2 AND status_id = $3",
            tenant.customer_id,
            uuid.UUID(campaign_id),
            uuid.UUID(statuses["Successful"]),
        )
        # A quicker, later change is held back while the older writer runs...
        refused = (await client.get(f"/v1/statuses/{statuses['Refused']}", headers=admin)).json()
        patched = await client.patch(
            f"/v1/statuses/{statuses['Refused']}",
            json={"data": [{"op": "replace", "path": "/pinColor", "value": "#000000"}]},
            headers={**admin, **if_match(refused)},
        )
        assert patched.status_code == 200, patched.text
        assert await phone.feed.to_the_end() == []
        await writer.commit()
    except BaseException:
        await writer.rollback()
        raise

    # ...so the token never passes the unlink: it comes, with the whole set.
    changes = await phone.sync(every)
    assert len(changes) == 10
    assert phone.names() == ["Not Home"]


# --- what door records may take ----------------------------------------------------------


async def test_a_door_put_outside_the_campaigns_statuses_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    statuses = await status_ids(client, admin)
    await link(client, admin, at.campaign_id, statuses["Successful"])

    refused = await client.put(
        at.path, json={"data": {"statusId": statuses["Refused"]}}, headers=admin
    )

    body = assert_problem(refused, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in body["errors"]] == ["/data/statusId"]
    assert await door_record(client, admin, at) is None  # nothing written
    allowed = await put_door(client, admin, at, {"statusId": statuses["Successful"]})
    assert allowed["data"]["state"] == "contacted-available-successful"


async def test_a_door_patch_outside_the_campaigns_statuses_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    statuses = await status_ids(client, admin)
    record = await put_door(client, admin, at, {"statusId": statuses["Not Home"]})
    await link(client, admin, at.campaign_id, statuses["Not Home"])
    await link(client, admin, at.campaign_id, statuses["Successful"])

    def patch(status_id: str) -> dict[str, Any]:
        return {"data": [{"op": "replace", "path": "/statusId", "value": status_id}]}

    refused = await client.patch(
        at.path, json=patch(statuses["Come Back"]), headers={**admin, **if_match(record)}
    )
    body = assert_problem(refused, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in body["errors"]] == ["/data/statusId"]
    unchanged = await door_record(client, admin, at)
    assert unchanged is not None and unchanged["data"]["statusId"] == statuses["Not Home"]

    allowed = await client.patch(
        at.path, json=patch(statuses["Successful"]), headers={**admin, **if_match(record)}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["state"] == "contacted-available-successful"


async def test_a_door_without_a_status_or_in_another_campaign_is_not_held_back(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    elsewhere = await door(client, admin)
    statuses = await status_ids(client, admin)
    await link(client, admin, at.campaign_id, statuses["Successful"])

    typed = await put_door(client, admin, at, {"type": "high-priority"})
    other = await put_door(client, admin, elsewhere, {"statusId": statuses["Refused"]})

    assert typed["data"]["state"] == "not-contacted-high-priority"
    assert other["data"]["statusId"] == statuses["Refused"]


async def test_bulk_names_each_item_outside_the_campaigns_statuses(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await door(client, admin)
    second = await door(client, admin, campaign_id=first.campaign_id)
    statuses = await status_ids(client, admin)
    await link(client, admin, first.campaign_id, statuses["Successful"])

    def item(at: Any, status_id: str) -> dict[str, Any]:
        return {"data": {"campaignId": at.campaign_id, "statusId": status_id}, "params": at.params}

    refused = await client.post(
        "/v1/campaigns/contact-households/bulk",
        json={"data": [item(first, statuses["Successful"]), item(second, statuses["Refused"])]},
        headers=admin,
    )

    body = assert_problem(refused, 400, "VALIDATION_ERROR")
    assert [e["path"] for e in body["errors"]] == ["/data/1/data/statusId"]
    assert await door_record(client, admin, first) is None  # all or nothing
    accepted = await client.post(
        "/v1/campaigns/contact-households/bulk",
        json={"data": [item(first, statuses["Successful"]), item(second, statuses["Successful"])]},
        headers=admin,
    )
    assert accepted.status_code == 200, accepted.text
    assert [d["data"]["statusId"] for d in accepted.json()["data"]] == [statuses["Successful"]] * 2


# --- interactions are stored and flagged -------------------------------------------------


async def test_an_interaction_outside_the_campaigns_statuses_is_stored_and_flagged(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    statuses = await status_ids(client, admin)
    await link(client, admin, at.campaign_id, statuses["Successful"])

    flagged = await record_interaction(
        client, admin, at, statusId=statuses["Refused"], qualityFlags=["made-up"]
    )
    clean = await record_interaction(
        client,
        admin,
        at,
        statusId=statuses["Successful"],
        timestamp="2018-07-17T18:41:53.526Z",
        unavailable=False,
        unavailableReason=None,
        successful=True,
    )

    assert flagged["data"]["qualityFlags"] == ["status-mismatch"]
    assert clean["data"].get("qualityFlags") is None
    stored = await client.get(f"/v2/interactions/{flagged['id']}", headers=admin)
    assert stored.json()["data"]["qualityFlags"] == ["status-mismatch"]


async def test_interactions_are_clean_when_the_campaign_links_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    statuses = await status_ids(client, admin)

    recorded = await record_interaction(client, admin, at, statusId=statuses["Refused"])
    without_status = await record_interaction(
        client, admin, at, timestamp="2018-07-17T18:41:53.526Z"
    )

    assert recorded["data"].get("qualityFlags") is None
    assert without_status["data"].get("qualityFlags") is None


async def test_a_flag_follows_a_patched_status(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    statuses = await status_ids(client, admin)
    await link(client, admin, at.campaign_id, statuses["Come Back"])
    recorded = await record_interaction(client, admin, at, statusId=statuses["Come Back"])
    assert recorded["data"].get("qualityFlags") is None

    patched = await client.patch(
        f"/v2/interactions/{recorded['id']}",
        json={"data": [{"op": "replace", "path": "/statusId", "value": statuses["Not Home"]}]},
        headers={**admin, **if_match(recorded)},
    )

    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["qualityFlags"] == ["status-mismatch"]


async def test_the_outbox_flags_each_item_and_refuses_none(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    statuses = await status_ids(client, admin)
    await link(client, admin, at.campaign_id, statuses["Successful"])
    items = [
        interaction(at, statusId=statuses["Refused"]),
        interaction(at, statusId=statuses["Successful"], timestamp="2018-07-17T18:41:53.526Z"),
    ]

    response = await client.post("/v2/interactions/bulk", json={"data": items}, headers=admin)

    assert response.status_code == 207, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == [201, 201]
    assert [r["document"]["data"].get("qualityFlags") for r in results] == [
        ["status-mismatch"],
        None,
    ]
