"""The organiser's dashboard (/dashboard) in a real browser, against a live server.

The data is made through the public API; the page must show what the API says.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, Request, Response, expect

from polis_api.auth import mint_token
from polis_api.config import Settings
from tests.browser.conftest import OfflinePage
from tests.builders import SEED_CAMPAIGN, create
from tests.canvassing import Door, door, new_campaign, put_door, record_interaction
from tests.conftest import Tenant

pytestmark = pytest.mark.slow
# A busy two-core machine can take more than Playwright's default 5 s to render.
expect.set_options(timeout=20_000)

# Five doors around a park in Decatur, GA, and one whose household has no coordinates.
PLACES = [
    {"lat": 33.7748, "lng": -84.2963},
    {"lat": 33.7752, "lng": -84.2950},
    {"lat": 33.7760, "lng": -84.2971},
    {"lat": 33.7739, "lng": -84.2958},
    {"lat": 33.7744, "lng": -84.2977},
]
FAR_AWAY = {"lat": 33.90, "lng": -84.10, "confidence": 10}  # miles from every door


@dataclass
class Campaign:
    id: str
    doors: list[Door]
    canvassers: list[dict[str, str]]


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


def canvasser(settings: Settings, tenant: Tenant) -> dict[str, str]:
    """A canvasser of the tenant with a user id of its own (the board groups by it)."""
    token = mint_token(
        settings, roles=["canvasser"], customer_id=tenant.customer_id, sub=uuid.uuid4()
    )
    return {"Authorization": f"Bearer {token}"}


def knock(timestamp: str, outcome: str) -> dict[str, Any]:
    outcomes: dict[str, dict[str, Any]] = {
        "successful": {"unavailable": False, "successful": True, "unavailableReason": None},
        "not-home": {"unavailable": True, "successful": False, "unavailableReason": "Not Home"},
    }
    return {"timestamp": timestamp, **outcomes[outcome]}


@pytest.fixture
async def campaign(
    api: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str], settings: Settings
) -> Campaign:
    """Six doors (five on the map), three knocked by two canvassers over two days."""
    campaign_id = await new_campaign(api, admin)
    doors = [await door(api, admin, campaign_id=campaign_id, coords=place) for place in PLACES]
    doors.append(await door(api, admin, campaign_id=campaign_id, coords=None))
    for at, kind in zip(doors, ["normal", "high-priority"] * 3, strict=True):
        await put_door(api, admin, at, {"type": kind})
    alice, bob = canvasser(settings, tenant), canvasser(settings, tenant)
    near_door = {**PLACES[0], "confidence": 10}
    knocks = [
        (alice, doors[0], knock("2026-11-20T10:00:00.000Z", "successful")),
        (alice, doors[1], knock("2026-11-21T10:05:00.000Z", "not-home")),
        (bob, doors[2], knock("2026-11-21T11:00:00.000Z", "successful")),
    ]
    for headers, at, fields in knocks:
        location = near_door if headers is alice else FAR_AWAY
        await record_interaction(api, headers, at, location=location, **fields)
    return Campaign(campaign_id, doors, [alice, bob])


async def progress_of(api: httpx.AsyncClient, admin: dict[str, str], campaign_id: str) -> Any:
    response = await api.get(f"/v1/campaigns/{campaign_id}/progress", headers=admin)
    if response.status_code == 404:
        pytest.skip("this branch has no GET /v1/campaigns/{id}/progress yet")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def open_board(page: Page, live_server: str, token: str, campaign_id: str) -> None:
    """Paste the token, pick the campaign, wait until the numbers are in."""
    await page.goto(f"{live_server}/dashboard?refresh=1")
    await page.fill("#token", token)
    await page.click("#token-form button[type=submit]")
    await page.locator(f'#campaign option[value="{campaign_id}"]').wait_for(state="attached")
    await page.select_option("#campaign", campaign_id)
    await expect(page.locator("#board")).to_be_visible()


def count(n: int) -> str:
    return f"{n:,}"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


async def test_the_board_shows_what_progress_says(
    offline_page: OfflinePage,
    live_server: str,
    api: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    campaign: Campaign,
    tmp_path: Path,
) -> None:
    page = offline_page.page
    asked: list[str] = []
    page.on("request", lambda request: asked.append(urlsplit(request.url).path))
    progress = await progress_of(api, admin, campaign.id)
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)
    await expect(page.locator("#freshness")).to_contain_text("Updated")

    for metric in ("doors", "contacted", "successful"):
        await expect(page.locator(f'[data-metric="{metric}"]')).to_have_text(
            count(progress[metric])
        )
    await expect(page.locator('[data-metric="contactRate"]')).to_have_text(
        percent(progress["contactRate"])
    )
    shown_states = {
        await item.get_attribute("data-state"): await item.locator(".count").inner_text()
        for item in await page.locator("#state-legend li").all()
    }
    expected_states = {state: count(n) for state, n in progress["byState"].items() if n}
    assert shown_states == expected_states
    for day in progress["byDay"]:
        cells = page.locator(f'#by-day tr[data-date="{day["date"]}"] td')
        await expect(cells.nth(1)).to_have_text(count(day["interactions"]))
        await expect(cells.nth(2)).to_have_text(count(day["contacted"]))
    for person in progress["byCanvasser"]:
        cells = page.locator(f'#by-canvasser tr[data-user-id="{person["userId"]}"] td')
        await expect(cells.nth(1)).to_have_text(count(person["interactions"]))
        await expect(cells.nth(3)).to_have_text(count(person["successful"]))
    await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    assert progress["doors"] == len(campaign.doors)
    assert len(progress["byCanvasser"]) == len(campaign.canvassers)
    assert offline_page.blocked == []
    assert offline_page.console_errors == []
    # The page itself, its two files, and then only the public REST API.
    assert {path for path in asked if not path.startswith("/v1/")} == {
        "/dashboard",
        "/dashboard/static/dashboard.css",
        "/dashboard/static/dashboard.js",
    }
    assert (tmp_path / "dashboard.png").stat().st_size > 0


async def test_the_map_has_one_mark_per_door_in_its_pin_colour(
    offline_page: OfflinePage,
    live_server: str,
    api: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    campaign: Campaign,
) -> None:
    page = offline_page.page
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)
    doors = await api.get(
        f"/v1/campaigns/{campaign.id}/contact-households",
        params={"limit": 1000},
        headers={**admin, "Accept": "application/geo+json"},
    )
    features = doors.json()["features"]
    statuses = await api.get(f"/v1/campaigns/{campaign.id}/statuses", headers=admin)
    state_colours: dict[str, str] = {}
    for status in statuses.json()["data"]:  # the first status of a state gives its colour
        state_colours.setdefault(status["data"]["contactState"], status["data"]["pinColor"])

    marks = page.locator("#map circle")
    await expect(marks).to_have_count(len(PLACES))
    drawn = {
        await mark.get_attribute("data-door-id"): await mark.get_attribute("fill")
        for mark in await marks.all()
    }
    # A door's own pin, else (no status yet) the colour of its state's status.
    assert drawn == {
        f["properties"]["id"]: f["properties"]["pinColor"]
        or state_colours[f["properties"]["state"]]
        for f in features
    }
    assert len(features) == len(PLACES)  # the door without coordinates is not on the map
    await expect(page.locator("#map-caption")).to_contain_text("5 doors with coordinates")


async def test_a_refused_token_is_explained(offline_page: OfflinePage, live_server: str) -> None:
    page = offline_page.page
    await page.goto(f"{live_server}/dashboard")
    await page.fill("#token", "not-a-token")
    await page.click("#token-form button[type=submit]")

    message = page.locator("#message")
    await expect(message).to_be_visible()
    await expect(message).to_contain_text("The server refused the token (401")
    await expect(message).to_contain_text("polis-api token --role viewer")
    await expect(page.locator("#campaign")).to_be_disabled()


async def test_an_expired_token_is_explained(
    offline_page: OfflinePage, live_server: str, settings: Settings, tenant: Tenant
) -> None:
    page = offline_page.page
    # Well past polis-api's default clock-skew allowance of 30 s.
    expired = mint_token(
        settings,
        roles=["viewer"],
        customer_id=tenant.customer_id,
        sub=tenant.user_id,
        ttl_seconds=-120,
    )
    await page.goto(f"{live_server}/dashboard")
    await page.fill("#token", expired)
    await page.click("#token-form button[type=submit]")

    message = page.locator("#message")
    await expect(message).to_contain_text("The server refused the token (401")
    await expect(message).to_contain_text("expired")


async def test_a_token_expiring_while_the_board_is_open_stops_the_refresh(
    offline_page: OfflinePage,
    live_server: str,
    settings: Settings,
    tenant: Tenant,
    campaign: Campaign,
) -> None:
    page = offline_page.page
    # The live server allows 30 s of clock skew: this token is good for about 18 s more.
    expiring = mint_token(
        settings,
        roles=["viewer"],
        customer_id=tenant.customer_id,
        sub=tenant.user_id,
        ttl_seconds=-12,
    )
    await open_board(page, live_server, expiring, campaign.id)
    await expect(page.locator("#map circle")).to_have_count(len(PLACES))

    message = page.locator("#message")
    await expect(message).to_contain_text("The server refused the token (401", timeout=45_000)
    await expect(page.locator("#freshness")).to_have_text("Not refreshing: the token was refused.")
    await expect(page.locator("#map circle")).to_have_count(len(PLACES))  # the view stays


async def test_refresh_revalidates_with_if_none_match_and_keeps_the_view(
    offline_page: OfflinePage,
    live_server: str,
    api: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    campaign: Campaign,
) -> None:
    page = offline_page.page
    progress_path = re.compile(rf"/v1/campaigns/{campaign.id}/progress$")
    answers: list[tuple[str | None, int, str | None]] = []

    async def on_response(response: Response) -> None:
        request: Request = response.request
        if progress_path.search(request.url):
            sent = await request.header_value("if-none-match")
            answers.append((sent, response.status, await response.header_value("etag")))

    await progress_of(api, admin, campaign.id)  # skips without the endpoint
    page.on("response", on_response)
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)
    await expect(page.locator("#freshness")).to_contain_text("nothing changed")

    first_sent, first_status, first_etag = answers[0]
    revalidated = [answer for answer in answers[1:] if answer[1] == 304]
    assert (first_sent, first_status) == (None, 200)
    assert revalidated and revalidated[0][0] == first_etag
    await expect(page.locator('[data-metric="contacted"]')).to_have_text("3")

    # A new knock changes progress: the next refresh gets a 200 and shows it.
    await record_interaction(
        api,
        campaign.canvassers[0],
        campaign.doors[3],
        **knock("2026-11-21T12:00:00.000Z", "successful"),
    )
    await expect(page.locator('[data-metric="contacted"]')).to_have_text("4")


async def test_a_missing_endpoint_is_named_and_the_rest_still_works(
    offline_page: OfflinePage,
    live_server: str,
    tenant: Tenant,
    campaign: Campaign,
) -> None:
    """A server older than the review list (or a proxy that hides it) answers 404."""
    page = offline_page.page

    async def no_review(route: Any) -> None:
        await route.fulfill(
            status=404,
            content_type="application/problem+json",
            body='{"title": "Not found", "status": 404, "detail": "No route matches."}',
        )

    await page.route(re.compile(r"/review$"), no_review)
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)

    notice = page.locator("#review .notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("The review list is not available from this server (404)")
    await expect(page.locator("#map circle")).to_have_count(len(PLACES))


async def test_the_review_list_shows_what_review_says(
    offline_page: OfflinePage,
    live_server: str,
    api: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
    campaign: Campaign,
) -> None:
    response = await api.get(f"/v1/campaigns/{campaign.id}/review", headers=admin)
    if response.status_code == 404:
        pytest.skip("this branch has no GET /v1/campaigns/{id}/review yet")
    review = response.json()["data"]
    page = offline_page.page
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)

    rows = page.locator("#review tbody tr")
    await expect(rows).to_have_count(len(review))
    for position, person in enumerate(review):  # in the API's order: most flagged first
        cells = rows.nth(position).locator("td")
        await expect(cells.nth(0)).to_have_text(person["userId"])
        await expect(cells.nth(1)).to_have_text(count(person["interactions"]))
        await expect(cells.nth(2)).to_have_text(count(person["flagged"]))
        await expect(cells.nth(3)).to_have_text(percent(person["flaggedShare"]))
        for flag, n in person["flags"].items():
            await expect(cells.nth(4)).to_contain_text(f"{flag} {n}")
    # Bob knocked miles from his door: the review list has something to show.
    assert any(person["flagged"] for person in review)


async def test_names_from_the_api_are_shown_as_text(
    offline_page: OfflinePage,
    live_server: str,
    api: httpx.AsyncClient,
    tenant: Tenant,
    admin: dict[str, str],
) -> None:
    name = '<img src="x" data-injected="yes"> Spring drive'
    body = {"data": {**SEED_CAMPAIGN["data"], "name": name}}
    created = await create(api, "/v1/campaigns", body, admin)
    page = offline_page.page
    await open_board(page, live_server, tenant.token("viewer"), created["id"])

    await expect(page.locator("#campaign option:checked")).to_have_text(name)
    assert await page.locator("[data-injected]").count() == 0


async def test_a_reload_opens_the_same_campaign_again(
    offline_page: OfflinePage, live_server: str, tenant: Tenant, campaign: Campaign
) -> None:
    page = offline_page.page
    await open_board(page, live_server, tenant.token("viewer"), campaign.id)
    assert page.url.endswith(f"#campaign={campaign.id}")

    await page.reload()

    await expect(page.locator("#board")).to_be_visible()
    await expect(page.locator("#campaign")).to_have_value(campaign.id)
    await expect(page.locator("#map circle")).to_have_count(len(PLACES))
