"""How far a canvasser stood from the door: great-circle miles.

The server computes an interaction's ``distance`` itself (Polis uses it as a fraud
check, so a client's figure is never trusted) from the interaction's ``location`` and
the household's ``address.coords``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# IUGG mean Earth radius, 6371.0088 km, in statute miles.
EARTH_RADIUS_MILES = 3958.7613
DECIMALS = 4  # as Polis reports it: 936.2361

Point = tuple[float, float]


def _coordinate(name: str, value: float, limit: float) -> float:
    # bool is an int to Python, but `true` is no latitude.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    # The chained comparison is False for NaN, so NaN is refused here too.
    if not -limit <= value <= limit:
        raise ValueError(f"{name} {value} is outside [-{limit:g}, {limit:g}]")
    return float(value)


def check_point(point: Point) -> Point:
    lat, lng = point
    return _coordinate("lat", lat, 90), _coordinate("lng", lng, 180)


def miles_between(a: Point, b: Point) -> float:
    """Haversine distance between two (lat, lng) points in degrees, in statute miles."""
    lat1, lng1 = (math.radians(c) for c in check_point(a))
    lat2, lng2 = (math.radians(c) for c in check_point(b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    )
    # Rounding can push h a hair above 1 for antipodal points; asin would then fail.
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(min(1.0, h)))


def _point_of(place: Mapping[str, Any] | None) -> Point | None:
    if place is None:
        return None
    lat, lng = place.get("lat"), place.get("lng")
    if lat is None or lng is None:
        return None
    return lat, lng


def interaction_distance(
    location: Mapping[str, Any] | None, coords: Mapping[str, Any] | None
) -> float | None:
    """Miles from ``location`` to ``coords`` rounded to 4 places; None unless both are known.

    Raises ValueError when a lat or lng is present but not a number in range.
    """
    here, there = _point_of(location), _point_of(coords)
    if here is None or there is None:
        return None
    return round(miles_between(here, there), DECIMALS)
