"""POST {prefix} through the fast path (documents/fastpath.py).

A well-formed create is answered before the router; anything else (a body that is
not JSON, one the model refuses, an Idempotency-Key) goes to the routed create, so
each answer is the one the routed create always gave. That no resource's own create
is shadowed is checked beside the lists' (test_list_fastpath_api.py).
"""

from __future__ import annotations

import uuid

import httpx

from tests.builders import assert_problem, campaign
from tests.test_metrics import sample, scrape

CAMPAIGNS = "/v1/campaigns"


async def test_a_create_is_stored_counted_under_its_route_and_read_back(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    labels = {"route": CAMPAIGNS, "method": "POST", "status": "201"}
    before = sample(await scrape(client), "polis_http_requests_total", **labels)

    created = await client.post(CAMPAIGNS, json=campaign(name="Fast"), headers=admin)

    assert created.status_code == 201, created.text
    assert created.headers["etag"] == f'"{created.json()["meta"]["etag"]}"'
    assert created.headers["x-request-id"]
    after = sample(await scrape(client), "polis_http_requests_total", **labels)
    assert after - before == 1
    read = await client.get(f"{CAMPAIGNS}/{created.json()['id']}", headers=admin)
    assert read.json() == created.json()


async def test_refused_bodies_get_the_routed_creates_answers(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    unknown = campaign(name="Typo")
    unknown["data"]["nmae"] = "x"
    problem = assert_problem(await client.post(CAMPAIGNS, json=unknown, headers=admin), 400)
    assert any(error["path"] == "/data/nmae" for error in problem["errors"]), problem

    malformed = await client.post(
        CAMPAIGNS, content=b'{"data": {', headers={**admin, "content-type": "application/json"}
    )
    assert "not valid JSON" in assert_problem(malformed, 400)["detail"]

    unauthenticated = await client.post(CAMPAIGNS, json=campaign(name="Who"))
    body = assert_problem(unauthenticated, 401)
    assert body["instance"] == unauthenticated.headers["x-request-id"]


async def test_an_idempotent_create_is_replayed_not_written_twice(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    first = await client.post(CAMPAIGNS, json=campaign(name="Once"), headers=headers)
    again = await client.post(CAMPAIGNS, json=campaign(name="Once"), headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    listed = await client.get(CAMPAIGNS, params={"filter": '/data/name eq "Once"'}, headers=admin)
    assert len(listed.json()["data"]) == 1
