"""Segments through HTTP: unique precedence per campaign, the swap, bounds, tenancy,
and the survey a contact gets in a campaign."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.builders import assert_problem, create, if_match
from tests.canvassing import new_campaign
from tests.conftest import Tenant
from tests.surveys import new_segment, new_survey, segment_body

SEGMENTS = "/v1/segments"
SWAP = "/v1/segments/swap-precedences"


async def campaign_and_survey(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[str, str]:
    campaign = await new_campaign(client, headers)
    survey = await new_survey(client, headers, campaign)
    return campaign, survey["id"]


def swap_body(*segments: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"segments": [{"id": s["id"], "etag": s["meta"]["etag"]} for s in segments]}}


async def current(
    client: httpx.AsyncClient, segment: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.get(f"{SEGMENTS}/{segment['id']}", headers=headers)
    assert response.status_code == 200
    return response.json()


# --- precedence ----------------------------------------------------------------------------


async def test_polis_default_target_is_stored_as_sent(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    body = segment_body(campaign, survey, 0, description="Everyone")
    created = await create(client, SEGMENTS, body, admin)
    assert created["data"] == body["data"]
    assert created["meta"]["resource"] == "segments"


async def test_a_precedence_taken_in_the_campaign_is_a_409_naming_the_holder(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    first = await new_segment(client, admin, campaign, survey, 1)
    clash = await client.post(SEGMENTS, json=segment_body(campaign, survey, 1), headers=admin)
    assert first["id"] in assert_problem(clash, 409)["detail"]

    other_campaign, other_survey = await campaign_and_survey(client, admin)
    await new_segment(client, admin, other_campaign, other_survey, 1)  # another campaign: fine

    second = await new_segment(client, admin, campaign, survey, 2)
    response = await client.patch(
        f"{SEGMENTS}/{second['id']}",
        json={"data": [{"op": "replace", "path": "/precedence", "value": 1}]},
        headers={**admin, **if_match(second)},
    )
    assert_problem(response, 409)
    renamed = await client.patch(
        f"{SEGMENTS}/{second['id']}",
        json={"data": [{"op": "replace", "path": "/name", "value": "Renamed"}]},
        headers={**admin, **if_match(second)},
    )
    assert renamed.status_code == 200, "keeping one's own precedence is no clash"


async def test_a_deleted_segment_frees_its_precedence(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    first = await new_segment(client, admin, campaign, survey, 5)
    deleted = await client.delete(f"{SEGMENTS}/{first['id']}", headers={**admin, **if_match(first)})
    assert deleted.status_code == 204
    await new_segment(client, admin, campaign, survey, 5)


# --- bounds and bad input ------------------------------------------------------------------


def _clauses(count: int) -> dict[str, Any]:
    clause = {"source": "/data/profile/age", "operator": "gte", "value": 18}
    return {"filter": "all", "clauses": [clause] * count}


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("precedence", 2_147_483_647, True),
        ("precedence", 2_147_483_648, False),
        ("precedence", -1, False),
        ("precedence", "1", False),
        ("precedence", 1.5, False),
        ("criteria", _clauses(50), True),
        ("criteria", _clauses(51), False),
        ("criteria", _clauses(0), False),
        ("criteria", {"filter": "some", "clauses": _clauses(1)["clauses"]}, False),
        (
            "criteria",
            {"filter": "any", "clauses": [{"source": "", "operator": "eq", "value": 1}]},
            False,
        ),
        (
            "criteria",
            {
                "filter": "any",
                "clauses": [{"source": "/" + "a" * 499, "operator": "eq", "value": 1}],
            },
            True,
        ),
        (
            "criteria",
            {
                "filter": "any",
                "clauses": [{"source": "/" + "a" * 500, "operator": "eq", "value": 1}],
            },
            False,
        ),
        (
            "criteria",
            {"filter": "any", "clauses": [{"source": "1", "operator": "like", "value": 1}]},
            False,
        ),
        (
            "criteria",
            {"filter": "any", "clauses": [{"source": "1", "operator": "in", "value": "1"}]},
            False,
        ),
        (
            "criteria",
            {"filter": "any", "clauses": [{"source": "1", "operator": "in", "value": ["1"]}]},
            True,
        ),
        ("name", "", False),
        ("description", "d" * 10_000, True),
        ("description", "d" * 10_001, False),
    ],
)
async def test_fields_at_and_past_their_bounds(
    client: httpx.AsyncClient, admin: dict[str, str], field: str, value: Any, ok: bool
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    body = segment_body(campaign, survey, 3)
    body["data"][field] = value
    response = await client.post(SEGMENTS, json=body, headers=admin)
    if ok:
        assert response.status_code == 201, response.text
    else:
        problem = assert_problem(response, 400)
        assert problem["errors"][0]["path"].startswith(f"/data/{field}")


async def test_the_clause_bound_names_its_setting(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    response = await client.post(
        SEGMENTS, json=segment_body(campaign, survey, 1, criteria=_clauses(51)), headers=admin
    )
    assert "POLIS_MAX_SEGMENT_CLAUSES" in assert_problem(response, 400)["detail"]


# --- tenancy and roles ---------------------------------------------------------------------


async def test_references_outside_the_tenant_or_campaign_are_400s(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    their_campaign, their_survey = await campaign_and_survey(client, other_tenant.headers("admin"))
    _, survey_of_another_campaign = await campaign_and_survey(client, admin)
    cases = [
        (segment_body(their_campaign, survey, 1), "/data/campaignId"),
        (segment_body(campaign, their_survey, 1), "/data/surveyId"),
        (segment_body(str(uuid.uuid4()), survey, 1), "/data/campaignId"),
        (segment_body(campaign, str(uuid.uuid4()), 1), "/data/surveyId"),
        (segment_body(campaign, survey_of_another_campaign, 1), "/data/surveyId"),
    ]
    for body, path in cases:
        response = await client.post(SEGMENTS, json=body, headers=admin)
        assert assert_problem(response, 400)["errors"][0]["path"] == path


async def test_viewers_and_canvassers_read_only(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    a = await new_segment(client, admin, campaign, survey, 1)
    b = await new_segment(client, admin, campaign, survey, 2)
    for role in ("viewer", "canvasser"):
        headers = tenant.headers(role)
        assert (await client.get(f"{SEGMENTS}/{a['id']}", headers=headers)).status_code == 200
        refused = await client.post(
            SEGMENTS, json=segment_body(campaign, survey, 9), headers=headers
        )
        assert "insert@segments" in assert_problem(refused, 403)["detail"]
        swap = await client.post(SWAP, json=swap_body(a, b), headers=headers)
        assert "modify@segments" in assert_problem(swap, 403)["detail"]


async def test_the_list_filters_by_campaign_and_follows_the_change_feed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    mine = await new_segment(client, admin, campaign, survey, 1)
    other, other_survey = await campaign_and_survey(client, admin)
    await new_segment(client, admin, other, other_survey, 1)
    listed = await client.get(
        SEGMENTS, params={"filter": f'/data/campaignId eq "{campaign}"'}, headers=admin
    )
    assert [doc["id"] for doc in listed.json()["data"]] == [mine["id"]]
    feed = await client.get(SEGMENTS, params={"since": ""}, headers=admin)
    assert len(feed.json()["data"]) == 2
    deleted = await client.delete(f"{SEGMENTS}/{mine['id']}", headers={**admin, **if_match(mine)})
    assert deleted.status_code == 204
    changes = await client.get(
        SEGMENTS, params={"since": feed.json()["meta"]["next"]}, headers=admin
    )
    [tombstone] = changes.json()["data"]
    assert tombstone["id"] == mine["id"] and tombstone["meta"]["isDeleted"] is True


# --- swap ----------------------------------------------------------------------------------


async def test_swap_exchanges_two_precedences_with_new_etags(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    a = await new_segment(client, admin, campaign, survey, 1)
    b = await new_segment(client, admin, campaign, survey, 2)
    response = await client.post(SWAP, json=swap_body(b, a), headers=admin)
    assert response.status_code == 200, response.text
    swapped = response.json()["data"]
    assert [(s["id"], s["data"]["precedence"]) for s in swapped] == [(b["id"], 1), (a["id"], 2)]
    assert swapped[0]["meta"]["etag"] != b["meta"]["etag"]
    assert swapped[1]["meta"]["etag"] != a["meta"]["etag"]
    assert await current(client, a, admin) == swapped[1]
    assert await current(client, b, admin) == swapped[0]


async def test_a_stale_etag_swaps_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    a = await new_segment(client, admin, campaign, survey, 1)
    b = await new_segment(client, admin, campaign, survey, 2)
    renamed = await client.patch(
        f"{SEGMENTS}/{b['id']}",
        json={"data": [{"op": "replace", "path": "/name", "value": "B"}]},
        headers={**admin, **if_match(b)},
    )
    assert renamed.status_code == 200
    response = await client.post(SWAP, json=swap_body(a, b), headers=admin)
    problem = assert_problem(response, 412)
    assert b["id"] in problem["detail"]
    assert (await current(client, a, admin)) == a
    assert (await current(client, b, admin))["data"]["precedence"] == 2


async def test_swap_refuses_unknown_foreign_same_or_cross_campaign_segments(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    a = await new_segment(client, admin, campaign, survey, 1)
    b = await new_segment(client, admin, campaign, survey, 2)
    other, other_survey = await campaign_and_survey(client, admin)
    elsewhere = await new_segment(client, admin, other, other_survey, 3)
    theirs = other_tenant.headers("admin")
    their_campaign, their_survey = await campaign_and_survey(client, theirs)
    foreign = await new_segment(client, theirs, their_campaign, their_survey, 1)

    unknown = {"id": str(uuid.uuid4()), "meta": {"etag": "x"}}
    assert_problem(await client.post(SWAP, json=swap_body(a, unknown), headers=admin), 404)
    assert_problem(await client.post(SWAP, json=swap_body(a, foreign), headers=admin), 404)
    assert_problem(await client.post(SWAP, json=swap_body(a, a), headers=admin), 400)
    cross = assert_problem(
        await client.post(SWAP, json=swap_body(a, elsewhere), headers=admin), 400
    )
    assert "campaign" in cross["detail"]
    assert_problem(await client.post(SWAP, json=swap_body(a), headers=admin), 400)
    assert_problem(await client.post(SWAP, json=swap_body(a, b, a), headers=admin), 400)
    assert (await current(client, a, admin)) == a and (await current(client, b, admin)) == b


# --- a contact's survey --------------------------------------------------------------------


async def new_contact(client: httpx.AsyncClient, headers: dict[str, str], **profile: Any) -> str:
    name = {"given": "Ada", "surname": str(uuid.uuid4())}
    body = {"data": {"profile": {"name": {"anglican": name}, **profile}}}
    return str((await create(client, "/v2/contacts", body, headers))["id"])


def survey_path(campaign: str, contact: str) -> str:
    return f"/v1/campaigns/{campaign}/contacts/{contact}/survey"


async def test_a_contact_gets_the_survey_of_the_first_matching_segment(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    seniors = await new_survey(client, admin, campaign, name="Seniors")
    everyone = await new_survey(client, admin, campaign, name="Everyone")
    older = {
        "filter": "all",
        "clauses": [{"source": "/data/profile/age", "operator": "gte", "value": "65"}],
    }
    await new_segment(client, admin, campaign, everyone["id"], 10)
    await new_segment(client, admin, campaign, seniors["id"], 1, criteria=older)
    old = await new_contact(client, admin, age=70)
    young = await new_contact(client, admin, age=30)

    response = await client.get(survey_path(campaign, old), headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == seniors["id"]
    assert response.headers["ETag"] == f'"{seniors["meta"]["etag"]}"'
    response = await client.get(survey_path(campaign, young), headers=admin)
    assert response.json()["id"] == everyone["id"]


async def test_swapping_precedences_changes_the_survey_a_contact_gets(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    first = await new_survey(client, admin, campaign, name="First")
    second = await new_survey(client, admin, campaign, name="Second")
    a = await new_segment(client, admin, campaign, first["id"], 1)
    b = await new_segment(client, admin, campaign, second["id"], 2)
    contact = await new_contact(client, admin)
    before = await client.get(survey_path(campaign, contact), headers=admin)
    assert before.json()["id"] == first["id"]
    assert (await client.post(SWAP, json=swap_body(a, b), headers=admin)).status_code == 200
    after = await client.get(survey_path(campaign, contact), headers=admin)
    assert after.json()["id"] == second["id"]


async def test_no_match_unknown_ids_and_deleted_surveys_are_404s(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    campaign = await new_campaign(client, admin)
    survey = await new_survey(client, admin, campaign)
    nobody = {
        "filter": "any",
        "clauses": [{"source": "/data/profile/age", "operator": "lt", "value": 0}],
    }
    await new_segment(client, admin, campaign, survey["id"], 1, criteria=nobody)
    contact = await new_contact(client, admin, age=40)
    assert_problem(await client.get(survey_path(campaign, contact), headers=admin), 404)

    theirs = other_tenant.headers("admin")
    their_contact = await new_contact(client, theirs)
    their_campaign = await new_campaign(client, theirs)
    for path in (
        survey_path(str(uuid.uuid4()), contact),
        survey_path(campaign, str(uuid.uuid4())),
        survey_path(campaign, their_contact),
        survey_path(their_campaign, contact),
    ):
        assert_problem(await client.get(path, headers=admin), 404)

    everyone_survey = await new_survey(client, admin, campaign)
    await new_segment(client, admin, campaign, everyone_survey["id"], 2)
    found = await client.get(survey_path(campaign, contact), headers=admin)
    assert found.json()["id"] == everyone_survey["id"]
    deleted = await client.delete(
        f"/v1/surveys/{everyone_survey['id']}", headers={**admin, **if_match(everyone_survey)}
    )
    assert deleted.status_code == 204
    assert_problem(await client.get(survey_path(campaign, contact), headers=admin), 404)


async def test_a_viewer_may_ask_which_survey_a_contact_gets(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign, survey = await campaign_and_survey(client, admin)
    await new_segment(client, admin, campaign, survey, 1)
    contact = await new_contact(client, admin)
    response = await client.get(survey_path(campaign, contact), headers=tenant.headers("viewer"))
    assert response.status_code == 200
    only_surveys = tenant.headers(permissions=["read@surveys"])
    refused = await client.get(survey_path(campaign, contact), headers=only_surveys)
    assert_problem(refused, 403)
