"""Geo lists through HTTP (docs/geography.md): bbox, near + radius and GeoJSON on
households and on a campaign's doors."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from polis_api.config import Settings
from polis_api.documents.listing import LIMIT_ALL
from tests.builders import assert_problem, create
from tests.canvassing import Door, door, new_campaign, put_door, status_ids
from tests.conftest import Tenant

HOUSEHOLDS = "/v2/households"
GEOJSON = {"Accept": "application/geo+json"}
# Decatur, GA: the seed's part of the world.
HOME = (33.7748, -84.2963)
EARTH_RADIUS_MILES = 6378168 / 1609.344  # earthdistance's sphere, in miles


async def household_at(
    client: httpx.AsyncClient, headers: dict[str, str], lat: float, lng: float, **data: Any
) -> str:
    address = {"city": "Decatur", "postalCode": "30030", "coords": {"lat": lat, "lng": lng}}
    document = await create(client, HOUSEHOLDS, {"data": {"address": address, **data}}, headers)
    return str(document["id"])


async def ids(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, params: dict[str, Any]
) -> list[str]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [document["id"] for document in response.json()["data"]]


def miles(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance by the haversine formula, on earthdistance's sphere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(a))


# --- filters on any /data path -----------------------------------------------------------


async def test_any_household_data_path_filters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    inside = await household_at(client, admin, 33.75, -84.29)
    await household_at(client, admin, 33.85, -84.29)
    await create(client, HOUSEHOLDS, {"data": {"address": {"city": "Atlanta"}}}, admin)

    in_decatur = '/data/address/city eq "Decatur"'
    between = "/data/address/coords/lat between 33.7, 33.8"
    found = await ids(client, admin, HOUSEHOLDS, {"filter": f"{in_decatur} and {between}"})

    assert found == [inside]
    assert len(await ids(client, admin, HOUSEHOLDS, {"filter[/data/address/city]": "Decatur"})) == 2


# --- bbox --------------------------------------------------------------------------------


async def test_bbox_includes_points_on_its_edges_and_corners_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    on_south_edge = await household_at(client, admin, 33.7, -84.25)
    on_north_east_corner = await household_at(client, admin, 33.8, -84.2)
    on_west_edge = await household_at(client, admin, 33.75, -84.3)
    middle = await household_at(client, admin, 33.75, -84.25)
    await household_at(client, admin, 33.8000001, -84.25)  # a hair north of the box
    await household_at(client, admin, 33.75, -84.3000001)  # a hair west of it
    await household_at(client, admin, 40.7, -74.0)

    found = await ids(client, admin, HOUSEHOLDS, {"bbox": "33.7,-84.3,33.8,-84.2"})

    assert set(found) == {on_south_edge, on_north_east_corner, on_west_edge, middle}


async def test_bbox_across_the_antimeridian_is_the_two_sides_of_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    west_of_it = await household_at(client, admin, -17.7, 179.5)  # Fiji
    east_of_it = await household_at(client, admin, -17.7, -179.5)
    on_it = await household_at(client, admin, -17.7, 180.0)
    await household_at(client, admin, -17.7, 0.0)
    await household_at(client, admin, -17.7, 178.0)

    found = await ids(client, admin, HOUSEHOLDS, {"bbox": "-20,179,-15,-179"})

    assert set(found) == {west_of_it, east_of_it, on_it}


async def test_households_without_coordinates_never_match_a_bbox_or_near(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create(client, HOUSEHOLDS, {"data": {"address": {"city": "Decatur"}}}, admin)
    located = await household_at(client, admin, *HOME)

    assert await ids(client, admin, HOUSEHOLDS, {"bbox": "-90,-180,90,180"}) == [located]
    assert await ids(client, admin, HOUSEHOLDS, {"near": "0,0"}) == [located]


# --- near and radius ---------------------------------------------------------------------


async def test_near_lists_nearest_first_on_the_sphere(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # At 60° north a degree of longitude is half a degree of latitude: 0.5° east is
    # about 17 miles, 0.3° north about 21. Planar degrees would order them the other way.
    north = await household_at(client, admin, 60.3, 10.0)
    east = await household_at(client, admin, 60.0, 10.5)
    close = await household_at(client, admin, 60.01, 10.0)
    far = await household_at(client, admin, 61.0, 10.0)

    found = await ids(client, admin, HOUSEHOLDS, {"near": "60,10"})

    assert found == [close, east, north, far]
    assert miles(60, 10, 60, 10.5) < miles(60, 10, 60.3, 10)


async def test_radius_keeps_the_points_within_it_in_great_circle_miles(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    lat, lng = HOME
    one_mile_north = lat + 1 / EARTH_RADIUS_MILES * 180 / math.pi
    at_a_mile = await household_at(client, admin, one_mile_north, lng)
    here = await household_at(client, admin, lat, lng)
    await household_at(client, admin, lat + 0.1, lng)
    near = f"{lat},{lng}"

    assert await ids(client, admin, HOUSEHOLDS, {"near": near, "radius": "1.001"}) == [
        here,
        at_a_mile,
    ]
    assert await ids(client, admin, HOUSEHOLDS, {"near": near, "radius": "0.999"}) == [here]


async def test_radius_at_the_setting_is_taken_and_past_it_refused(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    bound = settings.max_near_radius_miles
    here = await household_at(client, admin, *HOME)
    near = f"{HOME[0]},{HOME[1]}"

    assert await ids(client, admin, HOUSEHOLDS, {"near": near, "radius": str(bound)}) == [here]
    response = await client.get(
        HOUSEHOLDS, params={"near": near, "radius": str(bound + 0.001)}, headers=admin
    )
    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "radius" in problem["detail"] and f"{bound:g}" in problem["detail"]


async def test_sort_given_with_near_orders_by_the_sort(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    far = await household_at(client, admin, HOME[0] + 0.05, HOME[1], unitNum="A")
    close = await household_at(client, admin, *HOME, unitNum="B")
    params = {"near": f"{HOME[0]},{HOME[1]}", "radius": "10"}

    assert await ids(client, admin, HOUSEHOLDS, params) == [close, far]
    sorted_params = {**params, "sort": "/data/unitNum"}
    assert await ids(client, admin, HOUSEHOLDS, sorted_params) == [far, close]


# --- bad parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bbox": "33.7,-84.3,33.8"}, "bbox"),
        ({"bbox": "33.7,-84.3,33.8,-84.2,1"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "91,-84.3,92,-84.2"}, "bbox"),
        ({"bbox": "33.7,-181,33.8,-84.2"}, "bbox"),
        ({"bbox": "33.8,-84.3,33.7,-84.2"}, "bbox"),
        ({"bbox": "nan,-84.3,33.8,-84.2"}, "bbox"),
        ({"near": ""}, "near"),
        ({"near": "33.7"}, "near"),
        ({"near": "-90.5,0"}, "near"),
        ({"near": "0,180.5"}, "near"),
        ({"near": "33.7,-84.3", "radius": "0"}, "radius"),
        ({"near": "33.7,-84.3", "radius": "-1"}, "radius"),
        ({"near": "33.7,-84.3", "radius": "far"}, "radius"),
        ({"radius": "1"}, "radius"),
        ({"since": "", "bbox": "33.7,-84.3,33.8,-84.2"}, "bbox"),
        ({"since": "", "near": "33.7,-84.3"}, "near"),
    ],
)
async def test_bad_geo_parameters_are_a_400_naming_the_parameter(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str], named: str
) -> None:
    response = await client.get(HOUSEHOLDS, params=params, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert f"'{named}'" in problem["detail"], problem


async def test_lists_without_a_map_refuse_geo_parameters(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/campaigns", params={"bbox": "0,0,1,1"}, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "'bbox'" in problem["detail"]
    csv = await client.get("/v1/campaigns", headers={**admin, "Accept": "application/geo+json"})
    assert_problem(csv, 406, "NOT_ACCEPTABLE")


# --- GeoJSON -----------------------------------------------------------------------------


def assert_feature_collection(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        lng, lat = feature["geometry"]["coordinates"]
        assert -180 <= lng <= 180 and -90 <= lat <= 90
    features: list[dict[str, Any]] = body["features"]
    return features


async def test_geojson_households_are_points_in_lng_lat_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    located = await household_at(client, admin, 33.7748, -84.2963)
    await create(client, HOUSEHOLDS, {"data": {"address": {"city": "Decatur"}}}, admin)

    response = await client.get(HOUSEHOLDS, headers={**admin, **GEOJSON})

    features = assert_feature_collection(response)
    assert features == [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [-84.2963, 33.7748]},
            "properties": {"id": located, "householdId": located},
        }
    ]


async def test_geojson_takes_bbox_and_count(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    inside = await household_at(client, admin, 33.75, -84.25)
    await household_at(client, admin, 40.7, -74.0)

    response = await client.get(
        HOUSEHOLDS,
        params={"bbox": "33.7,-84.3,33.8,-84.2", "count": "true"},
        headers={**admin, **GEOJSON},
    )

    features = assert_feature_collection(response)
    assert [feature["properties"]["id"] for feature in features] == [inside]
    assert response.json()["meta"] == {"total": 1}


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/geo+json", "application/geo+json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("application/json;q=0.5, application/geo+json", "application/geo+json"),
        ("application/geo+json;q=0.2, application/*;q=0.9", "application/json"),
    ],
)
async def test_the_accept_header_chooses_the_representation(
    client: httpx.AsyncClient, admin: dict[str, str], accept: str, media_type: str
) -> None:
    response = await client.get(HOUSEHOLDS, headers={**admin, "Accept": accept})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)


@pytest.mark.parametrize("accept", ["application/xml", "application/geo+json;q=0, text/html"])
async def test_an_accept_the_list_cannot_answer_is_a_406(
    client: httpx.AsyncClient, admin: dict[str, str], accept: str
) -> None:
    response = await client.get(HOUSEHOLDS, headers={**admin, "Accept": accept})

    problem = assert_problem(response, 406, "NOT_ACCEPTABLE")
    assert "application/geo+json" in problem["detail"]


async def test_geojson_refuses_the_change_feed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get(HOUSEHOLDS, params={"since": ""}, headers={**admin, **GEOJSON})

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "'since'" in problem["detail"]


async def test_geojson_for_all_is_streamed_whole(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    rows = settings.max_page_size + 5
    batch = [
        {"data": {"address": {"coords": {"lat": -10 + n / 1000, "lng": 20 + n / 1000}}}}
        for n in range(rows)
    ]
    response = await client.post(f"{HOUSEHOLDS}/bulk", json={"data": batch}, headers=admin)
    assert response.status_code == 200, response.text
    created = {document["id"] for document in response.json()["data"]}

    async with client.stream(
        "GET", HOUSEHOLDS, params={"limit": str(LIMIT_ALL)}, headers={**admin, **GEOJSON}
    ) as streamed:
        body = b"".join([chunk async for chunk in streamed.aiter_bytes()])
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("application/geo+json")

    collection = json.loads(body)
    assert collection["type"] == "FeatureCollection"
    assert {feature["properties"]["id"] for feature in collection["features"]} == created


# --- tenancy -----------------------------------------------------------------------------


async def test_another_tenants_households_never_appear(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    mine = await household_at(client, admin, *HOME)
    theirs = other_tenant.headers("admin")
    await household_at(client, theirs, *HOME)
    near = f"{HOME[0]},{HOME[1]}"

    assert await ids(client, admin, HOUSEHOLDS, {"bbox": "33,-85,34,-84"}) == [mine]
    assert await ids(client, admin, HOUSEHOLDS, {"near": near}) == [mine]
    assert await ids(client, admin, HOUSEHOLDS, {"near": near, "radius": "5"}) == [mine]
    features = assert_feature_collection(await client.get(HOUSEHOLDS, headers={**admin, **GEOJSON}))
    assert [feature["properties"]["id"] for feature in features] == [mine]


# --- a campaign's doors ------------------------------------------------------------------


def doors_of(campaign_id: str) -> str:
    return f"/v1/campaigns/{campaign_id}/contact-households"


async def door_at(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, lat: float, lng: float
) -> tuple[Door, str]:
    """A door at (lat, lng) with its record in the campaign; returns the record's id."""
    at = await door(client, headers, campaign_id=campaign_id, coords={"lat": lat, "lng": lng})
    record = await put_door(client, headers, at, {"type": "normal"})
    return at, str(record["id"])


async def test_a_campaigns_doors_take_bbox_and_near(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    _, close = await door_at(client, admin, campaign, *HOME)
    _, farther = await door_at(client, admin, campaign, HOME[0] + 0.01, HOME[1])
    _, away = await door_at(client, admin, campaign, 40.7, -74.0)
    other_campaign = await new_campaign(client, admin)
    await door_at(client, admin, other_campaign, *HOME)
    near = f"{HOME[0]},{HOME[1]}"

    assert set(await ids(client, admin, doors_of(campaign), {"bbox": "33,-85,34,-84"})) == {
        close,
        farther,
    }
    assert await ids(client, admin, doors_of(campaign), {"near": near}) == [close, farther, away]
    assert await ids(client, admin, doors_of(campaign), {"near": near, "radius": "1"}) == [
        close,
        farther,
    ]
    assert await ids(client, admin, doors_of(campaign), {"near": near, "radius": "0.5"}) == [close]


async def test_a_campaigns_doors_as_geojson_carry_state_status_and_pin_colour(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    at, record_id = await door_at(client, admin, campaign, *HOME)
    status_id = next(iter((await status_ids(client, admin)).values()))
    status = (await client.get(f"/v1/statuses/{status_id}", headers=admin)).json()
    record = await put_door(client, admin, at, {"statusId": status_id})

    response = await client.get(doors_of(campaign), headers={**admin, **GEOJSON})

    features = assert_feature_collection(response)
    assert features == [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]},
            "properties": {
                "id": record_id,
                "householdId": at.household_id,
                "state": record["data"]["state"],
                "statusId": status_id,
                "pinColor": status["data"].get("pinColor"),
            },
        }
    ]
    assert status["data"].get("pinColor")


async def test_doors_whose_household_has_no_coordinates_are_left_out_of_geojson(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    campaign = await new_campaign(client, admin)
    _, located = await door_at(client, admin, campaign, *HOME)
    nowhere = await door(client, admin, campaign_id=campaign, coords=None)
    await put_door(client, admin, nowhere, {"type": "normal"})

    response = await client.get(doors_of(campaign), headers={**admin, **GEOJSON})

    assert [f["properties"]["id"] for f in assert_feature_collection(response)] == [located]
    assert len(await ids(client, admin, doors_of(campaign), {})) == 2


async def test_another_tenants_doors_never_appear(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    campaign = await new_campaign(client, admin)
    _, mine = await door_at(client, admin, campaign, *HOME)
    theirs = other_tenant.headers("admin")
    their_campaign = await new_campaign(client, theirs)
    await door_at(client, theirs, their_campaign, *HOME)

    assert await ids(client, admin, doors_of(campaign), {"near": "33.7,-84.3"}) == [mine]
    response = await client.get(doors_of(their_campaign), headers=admin)
    assert response.status_code == 404
