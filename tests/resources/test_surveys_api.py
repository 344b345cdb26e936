"""Surveys through HTTP: versions, the question graph, bounds, tenancy, and the
interactions answered against them (survey-mismatch)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx
import pytest

from tests.builders import assert_problem, create, if_match
from tests.canvassing import door, interaction, new_campaign, record_interaction
from tests.conftest import Tenant
from tests.surveys import new_survey, option, question, survey_body

SURVEYS = "/v1/surveys"


async def patch(
    client: httpx.AsyncClient, document: dict[str, Any], ops: list[Any], headers: dict[str, str]
) -> httpx.Response:
    return await client.patch(
        f"{SURVEYS}/{document['id']}", json={"data": ops}, headers={**headers, **if_match(document)}
    )


# --- versions ------------------------------------------------------------------------------


async def test_create_numbers_version_1_and_defaults_the_first_question(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    created = await new_survey(client, admin, campaign, version=99)
    data = created["data"]
    assert data["version"] == 1, "the server owns the version"
    assert data["firstQuestionId"] == data["questions"][0]["questionId"]
    first = await client.get(f"{SURVEYS}/{created['id']}/versions/1", headers=admin)
    assert first.status_code == 200
    assert first.json() == created
    assert first.headers["ETag"] == f'"{created["meta"]["etag"]}"'


async def test_every_write_is_a_new_version_and_old_ones_stay_readable(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    v1 = await new_survey(client, admin, campaign)
    response = await patch(
        client, v1, [{"op": "replace", "path": "/name", "value": "Take 2"}], admin
    )
    assert response.status_code == 200, response.text
    v2 = response.json()
    assert v2["data"]["version"] == 2 and v2["data"]["name"] == "Take 2"
    response = await patch(client, v2, [{"op": "replace", "path": "/version", "value": 1}], admin)
    v3 = response.json()
    assert v3["data"]["version"] == 3, "a client's version is replaced, and the write counts"

    old = await client.get(f"{SURVEYS}/{v1['id']}/versions/1", headers=admin)
    assert old.json()["data"] == v1["data"]
    second = await client.get(f"{SURVEYS}/{v1['id']}/versions/2", headers=admin)
    assert second.json() == v2
    missing = await client.get(f"{SURVEYS}/{v1['id']}/versions/4", headers=admin)
    assert_problem(missing, 404)
    for bad in ("0", "-1", "x", "2147483648"):
        response = await client.get(f"{SURVEYS}/{v1['id']}/versions/{bad}", headers=admin)
        assert_problem(response, 400)


async def test_a_deleted_survey_has_no_versions_to_show(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    created = await new_survey(client, admin, campaign)
    deleted = await client.delete(
        f"{SURVEYS}/{created['id']}", headers={**admin, **if_match(created)}
    )
    assert deleted.status_code == 204
    response = await client.get(f"{SURVEYS}/{created['id']}/versions/1", headers=admin)
    assert_problem(response, 404)


# --- the question graph --------------------------------------------------------------------


def _problem_paths(response: httpx.Response) -> list[str]:
    body = assert_problem(response, 400, "VALIDATION_ERROR")
    return [error["path"] for error in body.get("errors", [])]


async def test_graph_errors_name_their_path_and_nothing_is_stored(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    q1, q2 = question(), question()
    cases = {
        "/data/questions/1/questionId": [q1, {**q2, "questionId": q1["questionId"]}],
        "/data/questions/0/next": [{**q1, "next": str(uuid.uuid4())}],
        "/data/questions/0/options/0/next": [{**q1, "options": [option(next=str(uuid.uuid4()))]}],
        "/data/questions/1/options/0/optionId": [
            {**q1, "options": [option("3b1a2f6e-0000-4000-8000-000000000001")]},
            {**q2, "options": [option("3b1a2f6e-0000-4000-8000-000000000001")]},
        ],
    }
    for path, questions in cases.items():
        response = await client.post(
            SURVEYS, json=survey_body(campaign, questions=questions), headers=admin
        )
        assert _problem_paths(response) == [path]
    response = await client.post(
        SURVEYS,
        json=survey_body(campaign, questions=[q1], firstQuestionId=q2["questionId"]),
        headers=admin,
    )
    assert _problem_paths(response) == ["/data/firstQuestionId"]
    listed = await client.get(SURVEYS, headers=admin)
    assert listed.json()["data"] == []


async def test_a_cycle_is_refused_naming_a_question_on_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    q1, q2, q3 = question(), question(), question()
    q1["next"], q2["next"] = q2["questionId"], q3["questionId"]
    q3["options"] = [option(next=q2["questionId"]), option(next="end")]
    response = await client.post(
        SURVEYS, json=survey_body(campaign, questions=[q1, q2, q3]), headers=admin
    )
    body = assert_problem(response, 400)
    assert body["errors"][0]["path"] in {"/data/questions/1", "/data/questions/2"}
    assert "cycle" in body["detail"]


async def test_a_patch_that_makes_a_cycle_is_refused_and_the_version_stays(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    created = await new_survey(client, admin, campaign)
    first_id = created["data"]["questions"][0]["questionId"]
    response = await patch(
        client, created, [{"op": "replace", "path": "/questions/1/next", "value": first_id}], admin
    )
    assert _problem_paths(response)[0].startswith("/data/questions/")
    current = await client.get(f"{SURVEYS}/{created['id']}", headers=admin)
    assert current.json()["data"]["version"] == 1
    assert_problem(await client.get(f"{SURVEYS}/{created['id']}/versions/2", headers=admin), 404)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("/questions/0/type", "essay"),
        ("/questions/0/questionId", "not-a-uuid"),
        ("/questions/0/options/0/next", "finish"),
        ("/questions/0/options/0/success", "yes"),
        ("/questions/0/required", 1),
        ("/name", "  "),
        ("/campaignId", "nope"),
    ],
)
async def test_bad_fields_are_400_naming_them(
    client: httpx.AsyncClient, admin: dict[str, str], field: str, value: Any
) -> None:
    campaign = await new_campaign(client, admin)
    created = await new_survey(client, admin, campaign)
    response = await patch(client, created, [{"op": "add", "path": field, "value": value}], admin)
    assert f"/data{field}" in _problem_paths(response)


# --- bounds --------------------------------------------------------------------------------


async def test_question_text_is_at_most_512_characters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    at_bound = survey_body(campaign, questions=[question(text="x" * 512)])
    assert (await client.post(SURVEYS, json=at_bound, headers=admin)).status_code == 201
    past = survey_body(campaign, questions=[question(text="x" * 513)])
    assert _problem_paths(await client.post(SURVEYS, json=past, headers=admin)) == [
        "/data/questions/0/text"
    ]


def _chain(count: int) -> list[dict[str, Any]]:
    questions = [question() for _ in range(count)]
    for current, following in itertools.pairwise(questions):
        current["next"] = following["questionId"]
    return questions


async def test_questions_per_survey_and_options_per_question_are_bounded(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    at_bound = await client.post(
        SURVEYS, json=survey_body(campaign, questions=_chain(200)), headers=admin
    )
    assert at_bound.status_code == 201, at_bound.text
    past = await client.post(
        SURVEYS, json=survey_body(campaign, questions=_chain(201)), headers=admin
    )
    body = assert_problem(past, 400)
    assert body["errors"][0]["path"] == "/data/questions"
    assert "POLIS_MAX_SURVEY_QUESTIONS" in body["errors"][0]["message"]

    options = [option(next="end") for _ in range(50)]
    ok = survey_body(campaign, questions=[question(options=options)])
    assert (await client.post(SURVEYS, json=ok, headers=admin)).status_code == 201
    too_many = survey_body(campaign, questions=[question(options=[*options, option()])])
    assert _problem_paths(await client.post(SURVEYS, json=too_many, headers=admin)) == [
        "/data/questions/0/options"
    ]


# --- tenancy, roles, lists -----------------------------------------------------------------


async def test_a_campaign_of_another_tenant_or_none_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    theirs = await new_campaign(client, other_tenant.headers("admin"))
    for campaign in (theirs, str(uuid.uuid4())):
        response = await client.post(SURVEYS, json=survey_body(campaign), headers=admin)
        body = assert_problem(response, 400)
        assert body["errors"][0]["path"] == "/data/campaignId"
        assert campaign in body["detail"]


async def test_another_tenants_survey_and_versions_are_not_found(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = other_tenant.headers("admin")
    survey = await new_survey(client, theirs, await new_campaign(client, theirs))
    mine = tenant.headers("admin")
    assert_problem(await client.get(f"{SURVEYS}/{survey['id']}", headers=mine), 404)
    versions = await client.get(f"{SURVEYS}/{survey['id']}/versions/1", headers=mine)
    assert_problem(versions, 404)


async def test_viewers_and_canvassers_read_only_admins_write(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    created = await new_survey(client, admin, campaign)
    for role in ("viewer", "canvasser"):
        headers = tenant.headers(role)
        assert (await client.get(f"{SURVEYS}/{created['id']}", headers=headers)).status_code == 200
        versions = await client.get(f"{SURVEYS}/{created['id']}/versions/1", headers=headers)
        assert versions.status_code == 200
        refused = await client.post(SURVEYS, json=survey_body(campaign), headers=headers)
        assert "insert@surveys" in assert_problem(refused, 403)["detail"]


async def test_the_list_filters_by_campaign_and_follows_the_change_feed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first, second = await new_campaign(client, admin), await new_campaign(client, admin)
    mine = await new_survey(client, admin, first)
    await new_survey(client, admin, second)
    listed = await client.get(
        SURVEYS, params={"filter": f'/data/campaignId eq "{first}"'}, headers=admin
    )
    assert [doc["id"] for doc in listed.json()["data"]] == [mine["id"]]
    refused = await client.get(SURVEYS, params={"filter": '/data/questions eq "x"'}, headers=admin)
    assert_problem(refused, 400)

    feed = await client.get(SURVEYS, params={"since": ""}, headers=admin)
    assert feed.status_code == 200, feed.text
    assert len(feed.json()["data"]) == 2
    token = feed.json()["meta"]["next"]
    response = await patch(client, mine, [{"op": "replace", "path": "/name", "value": "B"}], admin)
    assert response.status_code == 200
    changes = await client.get(SURVEYS, params={"since": token}, headers=admin)
    assert [(doc["id"], doc["data"]["version"]) for doc in changes.json()["data"]] == [
        (mine["id"], 2)
    ]


# --- interactions answer a version ---------------------------------------------------------


def _answers(survey: dict[str, Any], *, option_index: int = 0) -> dict[str, Any]:
    first = survey["data"]["questions"][0]
    return {
        first["questionId"]: {
            "questionId": first["questionId"],
            "optionId": first["options"][option_index]["optionId"],
        }
    }


async def test_answers_that_fit_the_latest_version_are_stored_unflagged_with_that_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    survey = await new_survey(client, admin, at.campaign_id)
    answers = {"surveyId": survey["id"], "responses": _answers(survey)}
    recorded = await record_interaction(client, admin, at, survey=answers, qualityFlags=["ok"])
    assert recorded["data"]["survey"] == {**answers, "version": 1}
    assert "qualityFlags" not in recorded["data"], "a client's flags are not kept"


async def test_unknown_questions_options_or_versions_are_stored_and_flagged(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    survey = await new_survey(client, admin, at.campaign_id)
    question_id = survey["data"]["questions"][0]["questionId"]
    unknown_question = {str(uuid.uuid4()): {"fields": {"x": "1"}}}
    unknown_option = {question_id: {"optionId": str(uuid.uuid4())}}
    for survey_part in (
        {"surveyId": survey["id"], "responses": unknown_question},
        {"surveyId": survey["id"], "responses": unknown_option},
        {"surveyId": survey["id"], "version": 7, "responses": _answers(survey)},
    ):
        response = await client.post(
            "/v2/interactions", json=interaction(at, survey=survey_part), headers=admin
        )
        assert response.status_code == 201, response.text
        assert response.json()["data"]["qualityFlags"] == ["survey-mismatch"]
        assert response.json()["data"]["survey"]["responses"] == survey_part["responses"]


async def test_an_answer_to_an_older_version_is_held_against_that_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    v1 = await new_survey(client, admin, at.campaign_id)
    old_answers = _answers(v1, option_index=1)
    changed = await patch(client, v1, [{"op": "remove", "path": "/questions/0/options/1"}], admin)
    assert changed.status_code == 200, changed.text
    against_v1 = {"surveyId": v1["id"], "version": 1, "responses": old_answers}
    kept = await record_interaction(client, admin, at, survey=against_v1)
    assert "qualityFlags" not in kept["data"]
    against_latest = {"surveyId": v1["id"], "responses": old_answers}
    flagged = await record_interaction(client, admin, at, survey=against_latest)
    assert flagged["data"]["qualityFlags"] == ["survey-mismatch"]
    assert flagged["data"]["survey"]["version"] == 2


async def test_a_survey_this_server_does_not_know_is_stored_unflagged(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    theirs = other_tenant.headers("admin")
    foreign = await new_survey(client, theirs, await new_campaign(client, theirs))
    for survey_id in (str(uuid.uuid4()), foreign["id"]):
        answers = {"surveyId": survey_id, "responses": {"q": {"fields": {}}}}
        recorded = await record_interaction(client, admin, at, survey=answers)
        assert recorded["data"]["survey"] == answers, "no version is invented"
        assert "qualityFlags" not in recorded["data"]


async def test_a_patch_of_an_interaction_recomputes_its_flags(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    survey = await new_survey(client, admin, at.campaign_id)
    recorded = await record_interaction(
        client, admin, at, survey={"surveyId": survey["id"], "responses": _answers(survey)}
    )
    response = await client.patch(
        f"/v2/interactions/{recorded['id']}",
        json={"data": [{"op": "add", "path": "/survey/responses/extra", "value": {}}]},
        headers={**admin, **if_match(recorded)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["qualityFlags"] == ["survey-mismatch"]
    response = await client.patch(
        f"/v2/interactions/{recorded['id']}",
        json={"data": [{"op": "replace", "path": "/qualityFlags", "value": []}]},
        headers={**admin, **if_match(response.json())},
    )
    assert response.json()["data"]["qualityFlags"] == ["survey-mismatch"]


async def test_a_version_of_an_interaction_is_a_positive_integer(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    at = await door(client, admin, coords=None)  # no distance: no far-from-door
    for bad in (0, "1", 1.5, 2_147_483_648):
        body = interaction(at, survey={"surveyId": str(uuid.uuid4()), "version": bad})
        response = await client.post("/v2/interactions", json=body, headers=admin)
        assert assert_problem(response, 400)["errors"][0]["path"] == "/data/survey/version"
    ok = interaction(at, survey={"surveyId": str(uuid.uuid4()), "version": 2_147_483_647})
    assert (await create(client, "/v2/interactions", ok, admin))["data"]["survey"]["version"]
