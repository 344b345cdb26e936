"""Great-circle miles between a canvasser and a door, against known distances."""

from __future__ import annotations

import math
from typing import Any

import pytest

from polis_api.workflow.distance import (
    EARTH_RADIUS_MILES,
    interaction_distance,
    miles_between,
)

NEW_YORK = (40.7128, -74.0060)
LOS_ANGELES = (34.0522, -118.2437)
LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)
HALF_WAY_ROUND = math.pi * EARTH_RADIUS_MILES  # ≈ 12436.8 mi

# (a, b) → miles, within 1 mile
KNOWN: list[tuple[tuple[float, float], tuple[float, float], float]] = [
    (NEW_YORK, LOS_ANGELES, 2445.6),
    (LONDON, PARIS, 213.5),
    (NEW_YORK, NEW_YORK, 0.0),
    ((0.0, 0.0), (0.0, 180.0), 12436.8),  # antipodes on the equator
    ((10.0, 20.0), (-10.0, -160.0), 12436.8),  # antipodes elsewhere
    ((90.0, 0.0), (-90.0, 0.0), 12436.8),  # pole to pole
    ((90.0, 0.0), (0.0, 0.0), 6218.4),  # pole to equator
    ((90.0, 0.0), (90.0, 123.0), 0.0),  # the north pole has every longitude
    ((-90.0, -45.0), (-90.0, 180.0), 0.0),  # so has the south pole
    ((0.0, 179.9), (0.0, -179.9), 13.8),  # across the antimeridian, not round the world
    ((0.0, 0.0), (1.0, 0.0), 69.1),  # one degree of latitude
]


@pytest.mark.parametrize(("a", "b", "miles"), KNOWN)
def test_known_distances(a: tuple[float, float], b: tuple[float, float], miles: float) -> None:
    assert miles_between(a, b) == pytest.approx(miles, abs=1.0)
    assert miles_between(b, a) == pytest.approx(miles_between(a, b))


def test_antipodes_are_half_way_round() -> None:
    antipodes = miles_between((0.0, 0.0), (0.0, 180.0))
    assert antipodes == pytest.approx(HALF_WAY_ROUND)
    assert antipodes == pytest.approx(12437, abs=1)


def test_integers_are_accepted() -> None:
    assert miles_between((0, 0), (0, 0)) == 0.0


INVALID: list[tuple[tuple[Any, Any], str]] = [
    ((90.0001, 0.0), "lat"),
    ((-90.5, 0.0), "lat"),
    ((0.0, 180.0001), "lng"),
    ((0.0, -181.0), "lng"),
    ((float("nan"), 0.0), "lat"),
    ((0.0, float("inf")), "lng"),
    (("40.7", 0.0), "lat"),
    ((0.0, None), "lng"),
    ((True, 0.0), "lat"),
]


@pytest.mark.parametrize(("point", "name"), INVALID)
def test_invalid_coordinates_raise(point: tuple[Any, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        miles_between(point, (0.0, 0.0))
    with pytest.raises(ValueError, match=name):
        miles_between((0.0, 0.0), point)


@pytest.mark.parametrize("edge", [(90.0, 180.0), (-90.0, -180.0), (0.0, 180.0), (-90.0, 0.0)])
def test_the_bounds_themselves_are_valid(edge: tuple[float, float]) -> None:
    assert miles_between(edge, edge) == 0.0


SEED_LOCATION = {"lat": 33.43174362182617, "lng": -84.18405151367188, "confidence": 0}
HOME = {"lat": 40.7128, "lng": -74.0060}


@pytest.mark.parametrize(
    ("location", "coords"),
    [
        (None, HOME),
        (SEED_LOCATION, None),
        (None, None),
        ({}, HOME),
        ({"lat": 33.4}, HOME),
        ({"lng": -84.1}, HOME),
        ({"lat": None, "lng": -84.1}, HOME),
        (SEED_LOCATION, {"lat": 40.7}),
        (SEED_LOCATION, {"lat": 40.7, "lng": None}),
        ({"confidence": 0}, HOME),
    ],
)
def test_interaction_distance_needs_both_points(
    location: dict[str, Any] | None, coords: dict[str, Any] | None
) -> None:
    assert interaction_distance(location, coords) is None


def test_interaction_distance_is_rounded_to_four_places() -> None:
    distance = interaction_distance(SEED_LOCATION, HOME)
    assert distance is not None
    assert distance == round(distance, 4)
    assert distance == pytest.approx(
        miles_between((SEED_LOCATION["lat"], SEED_LOCATION["lng"]), (40.7128, -74.0060)),
        abs=0.00005,
    )
    assert distance == 752.6344


def law_of_cosines(a: tuple[float, float], b: tuple[float, float]) -> float:
    """An independent formula for the same great circle, to check the haversine against."""
    lat1, lng1, lat2, lng2 = map(math.radians, (*a, *b))
    cosine = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(
        lng2 - lng1
    )
    return EARTH_RADIUS_MILES * math.acos(max(-1.0, min(1.0, cosine)))


@pytest.mark.parametrize(("a", "b", "_miles"), KNOWN)
def test_haversine_agrees_with_the_law_of_cosines(
    a: tuple[float, float], b: tuple[float, float], _miles: float
) -> None:
    assert miles_between(a, b) == pytest.approx(law_of_cosines(a, b), abs=1e-3)


def test_interaction_distance_at_the_door_is_zero() -> None:
    assert interaction_distance(HOME | {"confidence": 5}, HOME) == 0.0


@pytest.mark.parametrize(
    ("location", "coords"),
    [
        ({"lat": 91, "lng": 0}, HOME),
        (SEED_LOCATION, {"lat": 0, "lng": 200}),
        ({"lat": "x", "lng": 0}, HOME),
    ],
)
def test_interaction_distance_refuses_invalid_points(
    location: dict[str, Any], coords: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        interaction_distance(location, coords)
