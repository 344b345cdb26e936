"""Geography on lists (docs/geography.md): where a listed document's point is, and
``bbox=``, ``near=`` and ``radius=`` compiled to index-served SQL.

A document's point is the ``address.coords`` of a household: the document itself
(households) or one reached through references (a door record's contact-household's
household). Two GiST indexes on households serve the queries (migration 0013):

- ``ix_households_point`` on ``point(lng, lat)``: ``bbox`` as ``<@ box``;
- ``ix_households_earth`` on ``ll_to_earth(lat, lng)`` (the earthdistance
  extension): ``near`` as ``earth_box @>`` with an exact ``earth_distance`` recheck,
  and nearest first as KNN ``<->``. The 3-D chord distance ``<->`` grows with the
  great-circle distance, so its order is the order on the sphere.

Every expression below repeats its index's expression exactly: PostgreSQL only
uses an expression index for the same expression.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from polis_api.errors import FieldError, ValidationFailed
from polis_api.filtering.to_sql import Params

GEO_PARAMETERS = ("bbox", "near", "radius")
METERS_PER_MILE = 1609.344
_NUMBER = re.compile(r"\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*")


@dataclass(frozen=True, slots=True)
class Hop:
    """One reference on the way to the household: the live document of ``table`` whose
    id the previous document holds in ``data.<by>``."""

    table: str
    by: str


@dataclass(frozen=True, slots=True)
class GeoProperty:
    """A GeoJSON property: ``data.<field>`` of the listed document, or of the document
    it references through ``via`` (a door's status: its pinColor)."""

    name: str
    field: str
    via: Hop | None = None


@dataclass(frozen=True, slots=True)
class Geo:
    """Where a resource's documents are on the map (declared by the resource)."""

    # From the listed document to the household; () when it is the household.
    via: tuple[Hop, ...] = ()
    properties: tuple[GeoProperty, ...] = ()

    @property
    def household_data(self) -> str:
        """The column holding the household's data in a located list's rows."""
        return "geo_household" if self.via else "data"

    @property
    def household_id(self) -> str:
        return "geo_household_id" if self.via else "id"

    def _coordinate(self, key: str) -> str:
        return f"(({self.household_data} #>> '{{address,coords,{key}}}'))::float8"

    @property
    def lat(self) -> str:
        return self._coordinate("lat")

    @property
    def lng(self) -> str:
        return self._coordinate("lng")

    @property
    def point(self) -> str:
        # Exactly the expression of ix_households_point (turfs use it too).
        return f"point({self.lng}, {self.lat})"

    @property
    def earth(self) -> str:
        # Exactly the expression of ix_households_earth.
        return f"ll_to_earth({self.lat}, {self.lng})"

    @property
    def located(self) -> str:
        """The document has a point; the first half is the indexes' partial predicate."""
        return (
            f"{self.household_data} #> '{{address,coords}}' IS NOT NULL AND {self.lat} IS NOT NULL"
        )


@dataclass(frozen=True, slots=True)
class Box:
    south: float
    west: float
    north: float
    east: float

    @property
    def crosses_antimeridian(self) -> bool:
        return self.west > self.east


@dataclass(frozen=True, slots=True)
class Near:
    lat: float
    lng: float
    radius_miles: float | None


@dataclass(frozen=True, slots=True)
class GeoRequest:
    box: Box | None
    near: Near | None


def parse_geo(params: QueryParams, max_radius_miles: float) -> GeoRequest | None:
    """``bbox=swLat,swLng,neLat,neLng``, ``near=lat,lng`` and ``radius=<miles>``; None
    when none is given. Each bad value is a 400 naming its parameter."""
    if not any(name in params for name in GEO_PARAMETERS):
        return None
    box = _box(_single(params, "bbox")) if "bbox" in params else None
    near = None
    if "near" in params:
        lat, lng = _coordinates("near", _single(params, "near"), 2)
        near = Near(lat, lng, _radius(params, max_radius_miles))
    elif "radius" in params:
        raise _bad("radius", "'radius' needs 'near=lat,lng': it is measured from that point.")
    return GeoRequest(box, near)


def _single(params: QueryParams, name: str) -> str:
    values = params.getlist(name)
    if len(values) > 1:
        raise _bad(name, f"Send at most one '{name}'.")
    return values[0]


def _box(raw: str) -> Box:
    south, west, north, east = _coordinates("bbox", raw, 4)
    if south > north:
        raise _bad(
            "bbox",
            f"'bbox': the south-west latitude {south} is north of the north-east latitude "
            f"{north}; the order is swLat,swLng,neLat,neLng.",
        )
    return Box(south, west, north, east)


def _coordinates(name: str, raw: str, count: int) -> list[float]:
    shape = "swLat,swLng,neLat,neLng" if count == 4 else "lat,lng"
    parts = raw.split(",")
    if len(parts) != count or not all(_NUMBER.fullmatch(part) for part in parts):
        raise _bad(name, f"'{name}' must be {count} numbers, {shape}; got {raw!r}.")
    numbers = [float(part) for part in parts]
    for index, value in enumerate(numbers):
        is_lat = index % 2 == 0
        bound = 90 if is_lat else 180
        if not math.isfinite(value) or abs(value) > bound:
            what = "latitude" if is_lat else "longitude"
            raise _bad(name, f"'{name}': {what} {value} is outside -{bound} to {bound}.")
    return numbers


def _radius(params: QueryParams, max_miles: float) -> float | None:
    if "radius" not in params:
        return None
    raw = _single(params, "radius")
    value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
    if not 0 < value <= max_miles:
        raise _bad(
            "radius",
            f"'radius' must be a number of miles above 0 and at most {max_miles:g}; got {raw!r}.",
        )
    return value


def _bad(name: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[FieldError(path=name, message=detail)])


def geo_where(geo: Geo, request: GeoRequest | None, params: Params) -> str:
    """The conditions: the document has a point, inside the box, within the radius."""
    parts = [geo.located]
    if request is not None and request.box is not None:
        parts.append(_inside(geo, request.box, params))
    if request is not None and request.near is not None and request.near.radius_miles:
        parts.append(_within(geo, request.near, params))
    return " AND ".join(parts)


def _inside(geo: Geo, box: Box, params: Params) -> str:
    """``<@ box`` finds the candidates through the index; the plain comparisons then
    decide exactly (PostgreSQL's geometric operators compare with a 1e-6 tolerance).
    A box across the antimeridian is two boxes, one each side of it."""
    south, north = params.add(box.south), params.add(box.north)
    west, east = params.add(box.west), params.add(box.east)
    if box.crosses_antimeridian:
        boxes = [(west, "180"), ("-180", east)]
        lng_check = f"({geo.lng} >= {west}::float8 OR {geo.lng} <= {east}::float8)"
    else:
        boxes = [(west, east)]
        lng_check = f"{geo.lng} BETWEEN {west}::float8 AND {east}::float8"
    candidates = " OR ".join(
        f"{geo.point} <@ box({_corner(w, south)}, {_corner(e, north)})" for w, e in boxes
    )
    return (
        f"({candidates}) AND {geo.lat} BETWEEN {south}::float8 AND {north}::float8 AND {lng_check}"
    )


def _corner(lng: str, lat: str) -> str:
    return f"point({lng}::float8, {lat}::float8)"


def _centre(near: Near, params: Params) -> str:
    return f"ll_to_earth({params.add(near.lat)}::float8, {params.add(near.lng)}::float8)"


def _within(geo: Geo, near: Near, params: Params) -> str:
    """``earth_box`` holds every point within the radius (and a few more): the index
    finds those, ``earth_distance`` (great-circle metres) keeps the ones truly within."""
    assert near.radius_miles is not None
    centre = _centre(near, params)
    meters = f"{params.add(near.radius_miles * METERS_PER_MILE)}::float8"
    return (
        f"earth_box({centre}, {meters}) @> {geo.earth} "
        f"AND earth_distance({centre}, {geo.earth}) <= {meters}"
    )


def nearest_first(geo: Geo, near: Near, params: Params) -> str:
    """ORDER BY for nearest first: the KNN distance alone, so the GiST index walks in
    that order (with a tie-breaker PostgreSQL would sort every match instead)."""
    return f"{geo.earth} <-> {_centre(near, params)}"
