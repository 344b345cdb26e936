"""The change feed (SPEC §8) over HTTP: since=, meta.next, meta.more, tombstones.

A feed only hands out rows below the oldest transaction still running anywhere on
the database server, so a long transaction elsewhere (another test run sharing the
server) can delay delivery; tests that expect a delivery therefore follow the feed
until it arrives, and never assert on how soon.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from polis_api.config import Settings
from polis_api.documents.etag import compute_etag
from polis_api.documents.feed import SyncToken, decode_token, encode_token
from polis_api.documents.repository import Position
from tests.builders import assert_problem, campaign, create, if_match, replace_field
from tests.canvassing import door, interaction
from tests.conftest import Tenant

CAMPAIGNS = "/v1/campaigns"
INTERACTIONS = "/v2/interactions"
LIMIT_ALL = 9007199254740991
ORG_A = "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319"
ORG_B = "118d0436-4243-4810-94e9-13713fdfa31c"
DELIVERY_SECONDS = 30


class Feed:
    """A phone following one list route's change feed, as the docs tell it to."""

    def __init__(
        self, client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
    ) -> None:
        self.client = client
        self.path = path
        self.headers = headers
        self.params = params
        self.token = ""
        self.pages: list[dict[str, Any]] = []

    async def call(self, **params: Any) -> dict[str, Any]:
        query = {**self.params, **params, "since": self.token}
        response = await self.client.get(self.path, params=query, headers=self.headers)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        assert set(page["meta"]) == {"next", "more"}, page["meta"]
        self.token = page["meta"]["next"]
        self.pages.append(page)
        return page

    async def to_the_end(self, **params: Any) -> list[dict[str, Any]]:
        """Every change until meta.more is false, in the order delivered."""
        changes: list[dict[str, Any]] = []
        while True:
            page = await self.call(**params)
            changes.extend(page["data"])
            if not page["meta"]["more"]:
                return changes

    async def until(self, ids: set[str], **params: Any) -> list[dict[str, Any]]:
        """Follow the feed until every id in ``ids`` has come (a bounded wait)."""
        changes: list[dict[str, Any]] = []
        deadline = time.monotonic() + DELIVERY_SECONDS
        while not ids <= {change["id"] for change in changes}:
            assert time.monotonic() < deadline, f"never delivered: {ids - _ids(changes)}"
            changes.extend(await self.to_the_end(**params))
            await asyncio.sleep(0.05)
        return changes


def _ids(documents: list[dict[str, Any]]) -> set[str]:
    return {document["id"] for document in documents}


async def _add(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, org: str = ORG_A
) -> dict[str, Any]:
    return await create(client, CAMPAIGNS, campaign(name=name, organizationId=org), headers)


async def _delete(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, document: dict[str, Any]
) -> None:
    response = await client.delete(
        f"{path}/{document['id']}", headers={**headers, **if_match(document)}
    )
    assert response.status_code == 204, response.text


@pytest.fixture
async def raw(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, standing for another writer or a long report."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _wait_for_lock_wait(conn: asyncpg.Connection) -> None:
    """Until some request of this database waits for a row lock (bounded)."""
    deadline = time.monotonic() + 10
    while not await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ):
        assert time.monotonic() < deadline, "the request never waited for the lock"
        await asyncio.sleep(0.02)


# --- what a feed delivers ----------------------------------------------------------------


async def test_a_feed_followed_to_the_end_gives_each_document_once_in_its_latest_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    documents = [await _add(client, admin, f"campaign {n}") for n in range(7)]
    latest = {document["id"]: document for document in documents}
    for document in documents[2:4]:
        latest[document["id"]] = await replace_field(
            client, admin, CAMPAIGNS, document, "name", "renamed"
        )

    feed = Feed(client, CAMPAIGNS, admin, limit=3)
    changes = await feed.until(set(latest))

    assert sorted(change["id"] for change in changes) == sorted(latest)
    assert {change["id"]: change for change in changes} == latest
    assert all(len(page["data"]) <= 3 for page in feed.pages)
    assert any(page["meta"]["more"] for page in feed.pages)


async def test_a_document_changed_after_a_page_comes_again_and_then_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = await _add(client, admin, "first")
    second = await _add(client, admin, "second")
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.until({first["id"], second["id"]})

    renamed = await replace_field(client, admin, CAMPAIGNS, first, "name", "first, renamed")
    changes = await feed.until({first["id"]})

    assert changes == [renamed]
    page = await feed.call()
    assert page["data"] == [] and page["meta"]["more"] is False
    assert page["meta"]["next"]


async def test_a_deleted_document_comes_as_a_tombstone(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doomed = await _add(client, admin, "doomed")
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.until({doomed["id"]})

    await _delete(client, admin, CAMPAIGNS, doomed)
    [tombstone] = await feed.until({doomed["id"]})

    assert tombstone["meta"]["isDeleted"] is True
    assert tombstone["data"] == doomed["data"]
    assert tombstone["meta"]["modified"] >= doomed["meta"]["modified"]
    assert (await client.get(f"{CAMPAIGNS}/{doomed['id']}", headers=admin)).status_code == 404
    listed = (await client.get(CAMPAIGNS, headers=admin)).json()["data"]
    assert doomed["id"] not in _ids(listed)


async def test_a_phone_that_starts_late_still_learns_of_deletions_since_its_token(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    kept = await _add(client, admin, "kept")
    gone = await _add(client, admin, "gone")
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.until({kept["id"], gone["id"]})
    await _delete(client, admin, CAMPAIGNS, gone)

    changes = await feed.until({gone["id"]})

    live = {c["id"] for c in changes if not c["meta"]["isDeleted"]}
    assert live == set() and _ids(changes) == {gone["id"]}


async def test_filters_apply_to_changes_and_to_tombstones(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ours = await _add(client, admin, "ours", ORG_A)
    theirs = await _add(client, admin, "theirs", ORG_B)
    expression = Feed(client, CAMPAIGNS, admin, filter=f'/data/organizationId eq "{ORG_A}"')
    bracket = Feed(client, CAMPAIGNS, admin, **{"filter[/data/organizationId]": ORG_A})
    for feed in (expression, bracket):
        assert _ids(await feed.until({ours["id"]})) == {ours["id"]}

    await _delete(client, admin, CAMPAIGNS, ours)
    await _delete(client, admin, CAMPAIGNS, theirs)

    for feed in (expression, bracket):
        [tombstone] = await feed.until({ours["id"]})
        assert tombstone["meta"]["isDeleted"] is True
        assert (await feed.to_the_end()) == []


async def test_a_campaigns_door_feed_gives_its_own_doors_and_their_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    here = await door(client, admin)
    elsewhere = await door(client, admin)
    created = await client.post(INTERACTIONS, json=interaction(here), headers=admin)
    assert created.status_code == 201, created.text
    other = await client.post(INTERACTIONS, json=interaction(elsewhere), headers=admin)
    assert other.status_code == 201, other.text
    record = (await client.get(here.path, headers=admin)).json()

    doors = Feed(client, f"/v1/campaigns/{here.campaign_id}/contact-households", admin)
    assert await doors.until({record["id"]}) == [record]
    assert await doors.to_the_end() == []

    later = interaction(here, timestamp="2019-01-01T00:00:00.000Z", unavailable=False)
    assert (await client.post(INTERACTIONS, json=later, headers=admin)).status_code == 201
    [moved] = await doors.until({record["id"]})
    assert moved["meta"]["etag"] != record["meta"]["etag"]
    assert moved == (await client.get(here.path, headers=admin)).json()


async def test_contact_household_feed_delivers_a_dissociation_as_a_tombstone(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    pairs = Feed(
        client, "/v1/contact-households", admin, **{"filter[/data/contactId]": at.contact_id}
    )
    [pair] = await pairs.until({at.contact_household_id})
    response = await client.delete(
        f"/v2/contacts/{at.contact_id}/households/{at.household_id}",
        headers={**admin, **if_match(pair)},
    )
    assert response.status_code == 204, response.text

    [tombstone] = await pairs.until({at.contact_household_id})

    assert tombstone["meta"]["isDeleted"] is True


async def test_feeds_are_per_tenant(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    ours = await _add(client, admin, "ours")
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.until({ours["id"]})
    theirs = Feed(client, CAMPAIGNS, other_tenant.headers("admin"))

    assert await theirs.to_the_end() == []


async def test_the_served_tombstone_carries_the_etag_of_what_is_served(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    doomed = await _add(client, admin, "doomed")
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.until({doomed["id"]})
    await _delete(client, admin, CAMPAIGNS, doomed)

    [tombstone] = await feed.until({doomed["id"]})

    served = {**tombstone, "meta": {k: v for k, v in tombstone["meta"].items() if k != "etag"}}
    assert compute_etag(served) == tombstone["meta"]["etag"]


# --- paging ------------------------------------------------------------------------------


@pytest.fixture
async def small_pages(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a maximum page size of 3."""
    from polis_api.app import create_app

    application: FastAPI = create_app(settings.model_copy(update={"max_page_size": 3}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@pytest.mark.parametrize("limit", [3, 4, LIMIT_ALL])
async def test_a_feed_page_is_at_most_the_maximum_page_size(
    small_pages: httpx.AsyncClient, admin: dict[str, str], limit: int
) -> None:
    documents = [await _add(small_pages, admin, f"c{n}") for n in range(5)]
    feed = Feed(small_pages, CAMPAIGNS, admin, limit=limit)

    changes = await feed.until(_ids(documents))

    assert sorted(_ids(changes)) == sorted(_ids(documents)) and len(changes) == 5
    assert max(len(page["data"]) for page in feed.pages) == 3


async def test_limit_zero_gives_an_empty_page_that_keeps_the_place(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = await _add(client, admin, "waiting")
    feed = Feed(client, CAMPAIGNS, admin)
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not (page := await feed.call(limit=0))["meta"]["more"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    assert page["data"] == []
    assert await feed.until({document["id"]}) == [document]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra", [{"skip": "0"}, {"sort": "/data/name"}, {"count": "true"}, {"count": "false"}]
)
async def test_skip_sort_and_count_are_refused_with_since(
    client: httpx.AsyncClient, admin: dict[str, str], extra: dict[str, str]
) -> None:
    response = await client.get(CAMPAIGNS, params={"since": "", **extra}, headers=admin)

    body = assert_problem(response, 400, "VALIDATION_ERROR")
    assert f"'{next(iter(extra))}'" in body["detail"]


# A well-formed token but for its version byte (2), and one a byte too long. Fixed
# values: a parallel run's workers must all name the test cases alike.
WELL_FORMED = encode_token(
    SyncToken(Position(1, uuid.UUID(int=0)), 1, datetime(2026, 1, 1, tzinfo=UTC))
)
WRONG_VERSION = "Ag" + WELL_FORMED[2:]
WRONG_LENGTH = WELL_FORMED + "AA"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "%%%",
        "AQ",
        WRONG_VERSION,
        WRONG_LENGTH,
    ],
)
async def test_a_malformed_token_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str], token: str
) -> None:
    response = await client.get(CAMPAIGNS, params={"since": token}, headers=admin)

    body = assert_problem(response, 400, "BAD_SYNC_TOKEN")
    assert "since" in body["detail"]


async def test_two_since_tokens_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(CAMPAIGNS, params=[("since", ""), ("since", "")], headers=admin)

    assert_problem(response, 400, "VALIDATION_ERROR")


def _issued_ago(token: str, age: timedelta) -> str:
    """The same position, as if the server had issued it ``age`` ago."""
    return encode_token(replace(decode_token(token), issued=datetime.now(UTC) - age))


@pytest.mark.parametrize(
    ("age", "status"),
    [(timedelta(days=90) - timedelta(minutes=1), 200), (timedelta(days=90, minutes=1), 410)],
)
async def test_a_token_older_than_the_tombstone_horizon_is_gone(
    client: httpx.AsyncClient, admin: dict[str, str], age: timedelta, status: int
) -> None:
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.to_the_end()

    response = await client.get(
        CAMPAIGNS, params={"since": _issued_ago(feed.token, age)}, headers=admin
    )

    assert response.status_code == status, response.text
    if status == 410:
        body = assert_problem(response, 410, "SYNC_TOKEN_EXPIRED")
        assert "since=" in body["detail"]
        # Resyncing from the beginning is always possible.
        assert (await client.get(CAMPAIGNS, params={"since": ""}, headers=admin)).status_code == 200


@pytest.mark.parametrize("copy", ["another cluster", "beyond this cluster's transactions"])
async def test_a_token_from_another_copy_of_the_database_is_gone(
    client: httpx.AsyncClient, admin: dict[str, str], copy: str
) -> None:
    """A database restored from a dump into a new cluster counts transactions from the
    start again: a position from before cannot be continued from."""
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.to_the_end()
    token = decode_token(feed.token)
    if copy == "another cluster":
        token = replace(token, cluster=token.cluster ^ 1)
    else:
        token = replace(token, after=Position(1 << 62, uuid.UUID(int=0)))

    response = await client.get(CAMPAIGNS, params={"since": encode_token(token)}, headers=admin)

    body = assert_problem(response, 410, "SYNC_TOKEN_EXPIRED")
    assert "since=" in body["detail"]


async def test_the_tombstone_horizon_is_a_setting(
    settings: Settings, admin: dict[str, str]
) -> None:
    from polis_api.app import create_app

    application = create_app(settings.model_copy(update={"tombstone_days": 7}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            feed = Feed(http, CAMPAIGNS, admin)
            await feed.to_the_end()
            old = _issued_ago(feed.token, timedelta(days=8))
            response = await http.get(CAMPAIGNS, params={"since": old}, headers=admin)

    assert_problem(response, 410, "SYNC_TOKEN_EXPIRED")


async def test_every_list_route_documents_since(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    list_routes = [
        "/v1/campaigns",
        "/v2/interactions",
        "/v1/contact-households",
        "/v1/campaigns/{campaignId}/contact-households",
    ]
    for path in list_routes:
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
        assert "since" in names, path


# --- exactness under concurrency -----------------------------------------------------------


class OldWayPhone:
    """A phone syncing the Polis way: /meta/modified gt the latest modified it saw."""

    def __init__(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        self.client = client
        self.path = path
        self.headers = headers
        self.cursor = "1970-01-01T00:00:00.000Z"

    async def changes(self) -> set[str]:
        response = await self.client.get(
            self.path,
            params={"filter": f'/meta/modified gt "{self.cursor}"', "limit": 1000},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        documents: list[dict[str, Any]] = response.json()["data"]
        self.cursor = max([self.cursor, *(d["meta"]["modified"] for d in documents)])
        return _ids(documents)


async def test_a_write_that_commits_late_is_delivered_where_modified_gt_misses_it(
    client: httpx.AsyncClient, admin: dict[str, str], raw: asyncpg.Connection, tenant: Tenant
) -> None:
    """An interaction is stored, then waits for its door's row lock and commits late,
    after a later write elsewhere was seen: the old way loses it (and its door's
    move), the feed delivers both."""
    slow_door = await door(client, admin)
    quick_door = await door(client, admin, campaign_id=slow_door.campaign_id)
    first = await client.post(INTERACTIONS, json=interaction(slow_door), headers=admin)
    assert first.status_code == 201, first.text
    record = (await client.get(slow_door.path, headers=admin)).json()
    doors_path = f"/v1/campaigns/{slow_door.campaign_id}/contact-households"
    interactions, doors = Feed(client, INTERACTIONS, admin), Feed(client, doors_path, admin)
    await interactions.until({first.json()["id"]})
    await doors.until({record["id"]})
    old_interactions = OldWayPhone(client, INTERACTIONS, admin)
    old_doors = OldWayPhone(client, doors_path, admin)
    assert await old_interactions.changes() == {first.json()["id"]}
    assert await old_doors.changes() == {record["id"]}

    locker = raw.transaction()  # another writer holding the slow door's row
    await locker.start()
    await raw.execute(
        "SELECT 1 FROM contact_household_campaigns WHERE customer_id = $1 AND id = $2 FOR UPDATE",
        tenant.customer_id,
        uuid.UUID(record["id"]),
    )
    late_body = interaction(slow_door, timestamp="2019-01-01T00:00:00.000Z")
    late_request = asyncio.create_task(client.post(INTERACTIONS, json=late_body, headers=admin))
    try:
        await _wait_for_lock_wait(raw)
        await asyncio.sleep(0.01)
        quick = await client.post(INTERACTIONS, json=interaction(quick_door), headers=admin)
        assert quick.status_code == 201, quick.text
        quick_id = quick.json()["id"]
        quick_record_id = (await client.get(quick_door.path, headers=admin)).json()["id"]

        assert await old_interactions.changes() == {quick_id}
        assert await old_doors.changes() == {quick_record_id}
        # The feed holds the quick writes back while an older transaction is open.
        assert await interactions.to_the_end() == []
        assert await doors.to_the_end() == []
    finally:
        await locker.rollback()
    late = await late_request
    assert late.status_code == 201, late.text
    late_id = late.json()["id"]
    moved = (await client.get(slow_door.path, headers=admin)).json()

    assert late.json()["meta"]["modified"] < quick.json()["meta"]["modified"]
    assert moved["meta"]["modified"] < quick.json()["meta"]["modified"]
    assert await old_interactions.changes() == set()  # lost
    assert await old_doors.changes() == set()  # lost
    delivered = await interactions.until({late_id, quick_id})
    assert sorted(_ids(delivered)) == sorted({late_id, quick_id}) and len(delivered) == 2
    delivered_doors = await doors.until({record["id"], quick_record_id})
    assert len(delivered_doors) == 2 and moved in delivered_doors
    assert moved["data"]["lastInteraction"]["interactionId"] == late_id


async def test_an_open_transaction_elsewhere_delays_delivery_but_loses_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], raw: asyncpg.Connection
) -> None:
    feed = Feed(client, CAMPAIGNS, admin)
    await feed.to_the_end()
    report = raw.transaction()
    await report.start()
    try:
        await raw.fetchval("SELECT pg_current_xact_id()")  # a writer that has begun
        document = await _add(client, admin, "written meanwhile")
        listed = (await client.get(CAMPAIGNS, headers=admin)).json()["data"]
        assert document["id"] in _ids(listed)
        for _ in range(3):
            assert await feed.to_the_end() == []
    finally:
        await report.rollback()

    assert await feed.until({document["id"]}) == [document]


async def test_modified_never_goes_backwards_when_a_write_waited_for_the_row(
    client: httpx.AsyncClient, admin: dict[str, str], raw: asyncpg.Connection, tenant: Tenant
) -> None:
    document = await _add(client, admin, "contested")
    other_writer = raw.transaction()
    await other_writer.start()
    await raw.execute(
        "SELECT 1 FROM campaigns WHERE customer_id = $1 AND id = $2 FOR UPDATE",
        tenant.customer_id,
        uuid.UUID(document["id"]),
    )
    # The PATCH reads the clock now, then waits for the row...
    waiting = asyncio.create_task(
        client.patch(
            f"{CAMPAIGNS}/{document['id']}",
            json={"data": [{"op": "replace", "path": "/name", "value": "second"}]},
            headers={**admin, "If-Match": "*"},
        )
    )
    try:
        await _wait_for_lock_wait(raw)
        await asyncio.sleep(0.02)
        # ...while the writer holding it stamps a later time and commits.
        later = await raw.fetchval(
            "UPDATE campaigns SET modified = date_trunc('milliseconds', clock_timestamp()) "
            "WHERE customer_id = $1 AND id = $2 RETURNING modified",
            tenant.customer_id,
            uuid.UUID(document["id"]),
        )
        await other_writer.commit()
    except BaseException:
        await other_writer.rollback()
        raise
    response = await waiting

    assert response.status_code == 200, response.text
    patched = response.json()
    stamped = (
        later.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{later.microsecond // 1000:03d}Z"
    )
    assert patched["meta"]["modified"] >= stamped
    served = {**patched, "meta": {k: v for k, v in patched["meta"].items() if k != "etag"}}
    assert compute_etag(served) == patched["meta"]["etag"]


# --- purging old tombstones ----------------------------------------------------------------


async def test_purge_removes_only_tombstones_older_than_the_horizon_and_a_day(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    raw: asyncpg.Connection,
    tenant: Tenant,
    database_url: str,
) -> None:
    old_tombstone, young_tombstone, old_live = [
        await _add(client, admin, name) for name in ("old tombstone", "young", "old live")
    ]
    for document in (old_tombstone, young_tombstone):
        await _delete(client, admin, CAMPAIGNS, document)
    # Age rows as if written long ago: just past 90 days and a day, and just inside.
    ages = [
        (old_tombstone, timedelta(days=91, hours=1)),
        (old_live, timedelta(days=200)),
        (young_tombstone, timedelta(days=90, hours=23)),
    ]
    for document, age in ages:
        await raw.execute(
            "UPDATE campaigns SET modified = now() - $3::interval "
            "WHERE customer_id = $1 AND id = $2",
            tenant.customer_id,
            uuid.UUID(document["id"]),
            age,
        )

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "polis_api.cli", "purge-tombstones"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "campaigns:" in result.stdout
    left = await raw.fetch("SELECT id FROM campaigns WHERE customer_id = $1", tenant.customer_id)
    assert {str(row["id"]) for row in left} == {young_tombstone["id"], old_live["id"]}
