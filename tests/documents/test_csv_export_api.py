"""Lists as CSV (docs/exports.md): every list route answers Accept: text/csv."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from polis_api.config import Settings
from polis_api.documents.csv_columns import model_columns
from polis_api.documents.listing import LIMIT_ALL
from polis_api.resources.interactions import INTERACTIONS, InteractionData
from polis_api.resources.registry import RESOURCES
from tests.builders import SEED_CAMPAIGN, assert_problem, campaign, create, if_match
from tests.canvassing import door, interaction, new_campaign, record_interaction
from tests.conftest import Tenant
from tests.geo_builders import TURFS, turf
from tests.list_builders import new_list, new_pair, put_on
from tests.test_visibility_api import contact_door, hide_unassigned, walk_list

CSV = {"Accept": "text/csv"}
CAMPAIGNS = "/v1/campaigns"
INTERACTIONS_PATH = "/v2/interactions"
META_COLUMNS = ["id", "meta.created", "meta.modified"]


def table(response: httpx.Response) -> list[dict[str, str]]:
    """The CSV body as one dict per row, after checking it is a CSV answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    reader = csv.reader(io.StringIO(response.content.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert header[:3] == META_COLUMNS
    assert all(len(row) == len(header) for row in rows), "every row has every column"
    return [dict(zip(header, row, strict=True)) for row in rows]


def header(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return next(csv.reader(io.StringIO(response.text)))


# Every list route: the standard lists of the registry, and the routes that list
# documents under another document.
STANDARD = {resource.prefix: resource.name for resource in RESOURCES if "list" in resource.routes}
NESTED = {
    "campaign door records": "contact-household-campaigns",
    "campaign statuses": "statuses",
    "list members": "list-contact-households",
    "turf doors": "contact-household-campaigns",
    "contact households": "households",
}


@pytest.fixture
async def nested_routes(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """Each nested list route, with a document of the tenant to list under (and one
    row to list where that is cheap)."""
    campaign_id = await new_campaign(client, admin)
    list_id = await new_list(client, admin)
    pair = await new_pair(client, admin)
    await put_on(client, admin, list_id, pair)
    turf_doc = await create(client, TURFS, turf(campaign_id), admin)
    return {
        "campaign door records": f"/v1/campaigns/{campaign_id}/contact-households",
        "campaign statuses": f"/v1/campaigns/{campaign_id}/statuses",
        "list members": f"/v1/lists/{list_id}/contact-households",
        "turf doors": f"{TURFS}/{turf_doc['id']}/contact-households",
        "contact households": f"/v2/contacts/{pair.contact_id}/households",
    }


def test_the_tables_above_name_every_list_route(app: FastAPI) -> None:
    """A list route is a GET taking the list parameters; each must be tested here."""
    operations = app.openapi()["paths"]
    lists = {
        path
        for path, methods in operations.items()
        if any(p["name"] == "filter" for p in methods.get("get", {}).get("parameters", []))
    }
    nested = {
        "/v1/campaigns/{campaignId}/contact-households",
        "/v1/campaigns/{campaignId}/statuses",
        "/v1/lists/{listId}/contact-households",
        "/v1/turfs/{turfId}/contact-households",
        "/v2/contacts/{id}/households",
    }
    assert lists == set(STANDARD) | nested
    assert len(nested) == len(NESTED)


@pytest.mark.parametrize("prefix", sorted(STANDARD))
async def test_every_standard_list_answers_csv(
    client: httpx.AsyncClient, admin: dict[str, str], prefix: str
) -> None:
    response = await client.get(prefix, headers={**admin, **CSV})

    table(response)
    filename = f"{STANDARD[prefix]}.csv"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'


@pytest.mark.parametrize("route", sorted(NESTED))
async def test_every_nested_list_answers_csv(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    nested_routes: dict[str, str],
    route: str,
) -> None:
    as_json = await client.get(nested_routes[route], headers=admin)
    response = await client.get(nested_routes[route], headers={**admin, **CSV})

    rows = table(response)
    assert [row["id"] for row in rows] == [doc["id"] for doc in as_json.json()["data"]]
    assert f'filename="{NESTED[route]}.csv"' in response.headers["content-disposition"]


async def test_rows_hold_the_documents_flattened(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords={"lat": 40.5, "lng": -74.25})

    rows = table(await client.get("/v2/households", headers={**admin, **CSV}))

    (row,) = rows
    assert row["id"] == at.household_id
    assert row["address.city"] == "Springfield"
    assert row["address.coords.lng"] == "-74.25"  # a number: bare, not neutralised
    assert row["address.coords.lat"] == "40.5"
    assert row["unitNum"] == ""  # absent
    created = (await client.get(f"/v2/households/{at.household_id}", headers=admin)).json()
    assert row["meta.created"] == created["meta"]["created"]
    assert row["meta.modified"] == created["meta"]["modified"]


async def test_arrays_are_json_text(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    profile = {"name": {"anglican": {"given": "Ada"}}, "languages": ["en", "fr"]}
    await create(client, "/v2/contacts", {"data": {"profile": profile}}, admin)

    (row,) = table(await client.get("/v2/contacts", headers={**admin, **CSV}))

    assert json.loads(row["profile.languages"]) == ["en", "fr"]


async def test_filters_and_sort_apply(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for name in ("Beta", "Alpha", "Gamma"):
        await create(client, CAMPAIGNS, campaign(name=name), admin)
    params = {"filter": '/data/name neq "Beta"', "sort": '["data/name","DESC"]'}

    rows = table(await client.get(CAMPAIGNS, params=params, headers={**admin, **CSV}))

    assert [row["name"] for row in rows] == ["Gamma", "Alpha"]


HOSTILE = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1"]


async def test_quotes_commas_newlines_and_unicode_survive_a_round_trip(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    description = 'He said "hi", then left.\nSecond line, «ünïcödé» ✓'
    await create(client, CAMPAIGNS, campaign(name="Quoted", description=description), admin)

    response = await client.get(CAMPAIGNS, headers={**admin, **CSV})

    (row,) = table(response)
    assert row["description"] == description
    assert '"He said ""hi"", then left.' in response.text


@pytest.mark.parametrize("text", HOSTILE)
async def test_a_cell_that_would_start_a_formula_is_neutralised(
    client: httpx.AsyncClient, admin: dict[str, str], text: str
) -> None:
    await create(client, CAMPAIGNS, campaign(name=text), admin)

    (row,) = table(await client.get(CAMPAIGNS, headers={**admin, **CSV}))

    assert row["name"] == "'" + text


async def test_survey_answers_are_columns_of_their_own(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    first = await record_interaction(client, admin, at)  # seed 001: two questions, fields
    q3 = str(uuid.uuid4())
    chosen = {q3: {"questionId": q3, "optionId": "opt-a", "optionIds": ["a", "b"]}}
    survey = {"surveyId": str(uuid.uuid4()), "responses": chosen}
    second = await record_interaction(client, admin, at, survey=survey)

    rows = {
        row["id"]: row
        for row in table(await client.get(INTERACTIONS_PATH, headers={**admin, **CSV}))
    }

    dogs = "f386f88a-61f1-4f0d-b3d9-ba97e8238444"
    assert rows[first["id"]][f"survey.{dogs}.fields.dogliker"] == "true"
    assert rows[first["id"]][f"survey.{dogs}.questionId"] == dogs
    assert rows[first["id"]][f"survey.{q3}.optionId"] == ""
    assert rows[second["id"]][f"survey.{q3}.optionId"] == "opt-a"
    assert json.loads(rows[second["id"]][f"survey.{q3}.optionIds"]) == ["a", "b"]
    assert rows[second["id"]][f"survey.{dogs}.fields.dogliker"] == ""
    assert rows[second["id"]]["survey.surveyId"] == survey["surveyId"]


async def test_a_contacts_own_fields_are_columns(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {"data": {"profile": {"name": {"anglican": {"given": "Ada"}}}, "fields": {"ward": 7}}}
    await create(client, "/v2/contacts", body, admin)

    (row,) = table(await client.get("/v2/contacts", headers={**admin, **CSV}))

    assert row["fields.ward"] == "7"
    assert row["profile.name.anglican.given"] == "Ada"


# Negotiation


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/csv", "text/csv"),
        ("text/*", "text/csv"),
        ("text/csv;q=0.5, application/json", "application/json"),
        ("application/json;q=0.1, text/csv", "text/csv"),
        ("text/csv;q=0, */*", "application/json"),
        ("*/*", "application/json"),
    ],
)
async def test_accept_picks_the_representation(
    client: httpx.AsyncClient, admin: dict[str, str], accept: str, media_type: str
) -> None:
    response = await client.get(CAMPAIGNS, headers={**admin, "Accept": accept})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media_type


async def test_an_accept_nothing_offers_is_406_naming_csv_among_the_offers(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(CAMPAIGNS, headers={**admin, "Accept": "application/xml"})

    problem = assert_problem(response, 406, "NOT_ACCEPTABLE")
    assert "application/json, text/csv" in problem["detail"]


async def test_geojson_is_still_offered_beside_csv_on_the_map(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await door(client, admin)

    geo = await client.get("/v2/households", headers={**admin, "Accept": "application/geo+json"})
    xml = await client.get("/v2/households", headers={**admin, "Accept": "application/xml"})

    assert geo.status_code == 200 and geo.json()["type"] == "FeatureCollection"
    assert "application/json, application/geo+json, text/csv" in xml.json()["detail"]


async def test_a_csv_list_on_the_map_keeps_documents_without_coordinates(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await door(client, admin, coords=None)

    rows = table(await client.get("/v2/households", headers={**admin, **CSV}))

    assert len(rows) == 1 and rows[0]["address.coords.lat"] == ""


# Pages, streams and the change feed


async def test_a_full_page_links_to_the_next_and_the_last_does_not(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("A", "B", "C"):
        await create(client, CAMPAIGNS, campaign(name=name), admin)
    params = {"limit": "2", "sort": "/data/name"}

    first = await client.get(CAMPAIGNS, params=params, headers={**admin, **CSV})
    link = first.headers["link"]
    following = link[link.index("<") + 1 : link.index(">")]
    second = await client.get(following, headers={**admin, **CSV})

    assert link.endswith('; rel="next"')
    assert [row["name"] for row in table(first)] == ["A", "B"]
    assert [row["name"] for row in table(second)] == ["C"]
    assert "link" not in second.headers


async def test_count_rides_in_the_polis_meta_header(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("A", "B"):
        await create(client, CAMPAIGNS, campaign(name=name), admin)

    page = await client.get(
        CAMPAIGNS, params={"limit": "1", "count": "true"}, headers={**admin, **CSV}
    )
    stream = await client.get(
        CAMPAIGNS, params={"limit": str(LIMIT_ALL), "count": "true"}, headers={**admin, **CSV}
    )

    assert json.loads(page.headers["polis-meta"]) == {"total": 2}
    assert json.loads(stream.headers["polis-meta"]) == {"total": 2}


async def test_all_streams_every_row_with_the_same_columns_as_a_page(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin)
    for _ in range(3):
        await record_interaction(client, admin, at)

    page = await client.get(INTERACTIONS_PATH, headers={**admin, **CSV})
    stream = await client.get(
        INTERACTIONS_PATH, params={"limit": str(LIMIT_ALL)}, headers={**admin, **CSV}
    )

    assert "content-length" not in stream.headers  # streamed
    assert stream.headers["content-disposition"] == 'attachment; filename="interactions.csv"'
    assert header(stream) == header(page)
    assert table(stream) == table(page)
    assert "link" not in stream.headers


async def _follow_csv_feed(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], ids: set[str]
) -> tuple[dict[str, dict[str, str]], httpx.Response]:
    """Follow a CSV change feed by its Link header until every id in ``ids`` came (a
    change appears once no older transaction is still running: a bounded wait)."""
    rows: dict[str, dict[str, str]] = {}
    url = f"{path}?since="
    deadline = time.monotonic() + 30
    while True:
        response = await client.get(url, headers={**headers, **CSV})
        assert header(response)[:4] == [*META_COLUMNS, "meta.deleted"]
        rows.update({row["id"]: row for row in table(response)})
        meta = json.loads(response.headers["polis-meta"])
        assert set(meta) == {"next", "more"}
        link = response.headers["link"]
        assert f"since={meta['next']}" in link and link.endswith('; rel="next"')
        if ids <= rows.keys() or time.monotonic() > deadline:
            return rows, response
        url = link[link.index("<") + 1 : link.index(">")]
        if not meta["more"]:
            await asyncio.sleep(0.2)


async def test_the_change_feed_as_csv_shows_tombstones_and_links_to_its_next_token(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    kept = await create(client, CAMPAIGNS, campaign(name="Kept"), admin)
    gone = await create(client, CAMPAIGNS, campaign(name="Gone"), admin)
    deleted = await client.delete(f"{CAMPAIGNS}/{gone['id']}", headers={**admin, **if_match(gone)})
    assert deleted.status_code == 204

    rows, _ = await _follow_csv_feed(client, CAMPAIGNS, admin, {kept["id"], gone["id"]})

    assert rows[kept["id"]]["meta.deleted"] == ""
    assert rows[gone["id"]]["meta.deleted"] == rows[gone["id"]]["meta.modified"] != ""
    assert rows[gone["id"]]["name"] == "Gone"


async def test_geojson_still_refuses_since(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(
        "/v2/households", params={"since": ""}, headers={**admin, "Accept": "application/geo+json"}
    )

    assert_problem(response, 400, "VALIDATION_ERROR")


# The column bound


def _answers(count: int, start: int = 0) -> dict[str, Any]:
    """A survey with ``count`` questions answered, each one column (its optionId)."""
    questions = [f"q{n:04d}" for n in range(start, start + count)]
    return {"surveyId": str(uuid.uuid4()), "responses": {q: {"optionId": "x"} for q in questions}}


FIXED_INTERACTION_COLUMNS = len(META_COLUMNS) + len(
    model_columns(InteractionData, INTERACTIONS.csv_open)
)


@pytest.mark.parametrize("limit", ["100", str(LIMIT_ALL)], ids=["page", "stream"])
async def test_as_many_columns_as_the_bound_are_answered(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, limit: str
) -> None:
    at = await door(client, admin)
    room = settings.max_csv_columns - FIXED_INTERACTION_COLUMNS
    await record_interaction(client, admin, at, survey=_answers(room))

    response = await client.get(
        INTERACTIONS_PATH, params={"limit": limit}, headers={**admin, **CSV}
    )

    assert len(header(response)) == settings.max_csv_columns
    assert len(table(response)) == 1


@pytest.mark.parametrize("limit", ["100", str(LIMIT_ALL)], ids=["page", "stream"])
async def test_one_column_past_the_bound_is_400_before_any_row(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, limit: str
) -> None:
    at = await door(client, admin)
    room = settings.max_csv_columns - FIXED_INTERACTION_COLUMNS
    await record_interaction(client, admin, at, survey=_answers(room))
    await record_interaction(client, admin, at, survey=_answers(1, start=room))  # one more

    response = await client.get(
        INTERACTIONS_PATH, params={"limit": limit}, headers={**admin, **CSV}
    )

    problem = assert_problem(response, 400, "CSV_TOO_WIDE")
    assert f"at most {settings.max_csv_columns}" in problem["detail"]
    assert "POLIS_MAX_CSV_COLUMNS" in problem["detail"]


async def test_a_filter_narrowing_past_the_wide_documents_is_answered(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    wide = await door(client, admin)
    narrow = await door(client, admin)
    await record_interaction(client, admin, wide, survey=_answers(settings.max_csv_columns))
    await record_interaction(client, admin, narrow)
    params = {"filter": f'/data/campaignId eq "{narrow.campaign_id}"'}

    response = await client.get(INTERACTIONS_PATH, params=params, headers={**admin, **CSV})

    assert len(table(response)) == 1


# Tenants and visibility


async def test_another_tenants_documents_never_appear(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    other = Tenant(settings).headers()
    mine = await create(client, CAMPAIGNS, SEED_CAMPAIGN, admin)
    await create(client, CAMPAIGNS, SEED_CAMPAIGN, other)
    at = await door(client, other)
    await record_interaction(client, other, at)

    page = table(await client.get(CAMPAIGNS, headers={**admin, **CSV}))
    stream = await client.get(CAMPAIGNS, params={"limit": str(LIMIT_ALL)}, headers={**admin, **CSV})
    answers = await client.get(INTERACTIONS_PATH, headers={**admin, **CSV})

    assert [row["id"] for row in page] == [mine["id"]]
    assert [row["id"] for row in table(stream)] == [mine["id"]]
    assert table(answers) == []
    assert not any(name.startswith("survey.9826940d") for name in header(answers))


async def test_a_restricted_caller_gets_only_its_assigned_rows(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign_id = await new_campaign(client, admin)
    mine = await contact_door(client, admin, campaign_id, 0.001)
    theirs = await contact_door(client, admin, campaign_id, 0.002)
    await walk_list(client, admin, campaign_id, tenant.user_id, [mine])
    await hide_unassigned(client, admin)
    canvasser = tenant.headers("canvasser")
    doors = f"/v1/campaigns/{campaign_id}/contact-households"

    page = table(await client.get(doors, headers={**canvasser, **CSV}))
    stream = table(
        await client.get(doors, params={"limit": str(LIMIT_ALL)}, headers={**canvasser, **CSV})
    )
    contacts = table(await client.get("/v2/contacts", headers={**canvasser, **CSV}))

    assert [row["contactHouseholdId"] for row in page] == [mine.contact_household_id]
    assert [row["contactHouseholdId"] for row in stream] == [mine.contact_household_id]
    assert [row["id"] for row in contacts] == [mine.contact_id]
    assert theirs.contact_id not in {row["id"] for row in contacts}


async def test_a_restricted_callers_columns_come_only_from_rows_it_may_see(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    """The open keys are found among the visible rows, so a hidden interaction's
    answers do not even show up as column names."""
    campaign_id = await new_campaign(client, admin)
    mine = await contact_door(client, admin, campaign_id, 0.001)
    theirs = await contact_door(client, admin, campaign_id, 0.002)
    await walk_list(client, admin, campaign_id, tenant.user_id, [mine])
    secret = {"surveyId": str(uuid.uuid4()), "responses": {"secret-question": {"optionId": "x"}}}
    await create(client, INTERACTIONS_PATH, interaction(theirs, survey=secret), admin)
    await create(client, INTERACTIONS_PATH, interaction(mine), admin)
    await hide_unassigned(client, admin)

    response = await client.get(INTERACTIONS_PATH, headers={**tenant.headers("canvasser"), **CSV})

    assert len(table(response)) == 1
    assert not any("secret-question" in name for name in header(response))
