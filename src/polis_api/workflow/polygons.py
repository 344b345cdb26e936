"""Turf boundaries: checking a GeoJSON Polygon, and writing it for PostgreSQL.

A boundary is a GeoJSON Polygon (RFC 7946): ``coordinates`` is a list of linear
rings, each a closed list of ``[lng, lat]`` positions; the first ring is the outer
boundary, any further ring a hole in it. What is refused, and why:

- a ring with fewer than four positions, or not closed (last position = first);
- a position that is not two numbers (a third, the altitude, is allowed and ignored),
  or a longitude/latitude out of range; a position repeating the one before it;
- a ring that crosses or touches itself, or two rings that cross or touch (a hole
  meeting the outer boundary or another hole);
- a ring without area (all its positions on one line);
- a hole that is not inside the outer boundary;
- an outer ring spanning more than 180° of longitude: GeoJSON draws the edge from
  lng 170 to lng -170 the long way round, so such a turf almost always means one
  that crosses the antimeridian; it is refused rather than silently inverted (cut
  such a turf in two, one on each side).

Everything here is pure and planar: longitude and latitude are treated as x and y,
as PostgreSQL's geometric types do (fine at turf scale, a few kilometres).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Position = tuple[float, float]  # (lng, lat)
Ring = tuple[Position, ...]
Segment = tuple[Position, Position]

MIN_RING_POSITIONS = 4
MAX_LONGITUDE_SPAN = 180.0


class PolygonError(ValueError):
    """What is wrong with a boundary, and where: ``path`` is a JSON pointer into it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Polygon:
    """A checked boundary: the outer ring and the holes, each closed."""

    outer: Ring
    holes: tuple[Ring, ...]


def check_polygon(boundary: Any, max_positions: int) -> Polygon:
    """The boundary as a Polygon, or PolygonError naming the first problem found."""
    if not isinstance(boundary, dict):
        raise PolygonError("", "must be a GeoJSON Polygon object")
    if boundary.get("type") != "Polygon":
        raise PolygonError("/type", 'must be "Polygon"')
    unknown = set(boundary) - {"type", "coordinates", "bbox"}
    if unknown:
        raise PolygonError(f"/{sorted(unknown)[0]}", "is not a member of a GeoJSON Polygon")
    coordinates = boundary.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise PolygonError("/coordinates", "must be a non-empty list of linear rings")
    total = sum(len(ring) if isinstance(ring, list) else 0 for ring in coordinates)
    if total > max_positions:
        raise PolygonError(
            "/coordinates",
            f"holds {total} positions; at most {max_positions} are allowed "
            "(POLIS_MAX_TURF_POSITIONS)",
        )
    rings = tuple(_ring(raw, index) for index, raw in enumerate(coordinates))
    _check_longitude_span(rings[0])
    _check_crossings(rings)
    _check_holes_inside(rings)
    return Polygon(outer=rings[0], holes=rings[1:])


def _ring(raw: Any, index: int) -> Ring:
    path = f"/coordinates/{index}"
    if not isinstance(raw, list):
        raise PolygonError(path, "must be a list of positions")
    if len(raw) < MIN_RING_POSITIONS:
        raise PolygonError(
            path,
            f"has {len(raw)} positions; a closed ring needs at least {MIN_RING_POSITIONS} "
            "(three corners and the first again)",
        )
    ring = tuple(_position(value, f"{path}/{n}") for n, value in enumerate(raw))
    if ring[0] != ring[-1]:
        raise PolygonError(f"{path}/{len(ring) - 1}", "must repeat the ring's first position")
    for n in range(1, len(ring)):
        if ring[n] == ring[n - 1]:
            raise PolygonError(f"{path}/{n}", "repeats the position before it")
    if _on_one_line(ring):
        raise PolygonError(path, "has no area: its positions lie on one line")
    return ring


def _position(value: Any, path: str) -> Position:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise PolygonError(path, "must be a position [lng, lat] (or [lng, lat, altitude])")
    for n, coordinate in enumerate(value):
        # bool is an int to Python, but `true` is no coordinate; NaN fails the range checks.
        if isinstance(coordinate, bool) or not isinstance(coordinate, int | float):
            raise PolygonError(f"{path}/{n}", "must be a number")
    lng, lat = float(value[0]), float(value[1])
    if not -180 <= lng <= 180:
        raise PolygonError(f"{path}/0", f"longitude {value[0]} is outside [-180, 180]")
    if not -90 <= lat <= 90:
        raise PolygonError(f"{path}/1", f"latitude {value[1]} is outside [-90, 90]")
    return lng, lat


def _on_one_line(ring: Ring) -> bool:
    first, second = ring[0], ring[1]  # distinct: repeats were refused before
    return all(_orientation(first, second, point) == 0 for point in ring[2:])


def _check_longitude_span(outer: Ring) -> None:
    longitudes = [lng for lng, _ in outer]
    span = max(longitudes) - min(longitudes)
    if span > MAX_LONGITUDE_SPAN:
        raise PolygonError(
            "/coordinates/0",
            f"spans {span:g}° of longitude; at most {MAX_LONGITUDE_SPAN:g}° are allowed, so a "
            "turf crossing the antimeridian (lng ±180) must be cut into two turfs, one on "
            "each side",
        )


# --- crossings -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edge:
    ring: int
    index: int  # the edge from position ``index`` to ``index + 1``
    segment: Segment


def _edges(rings: Sequence[Ring]) -> list[_Edge]:
    return [
        _Edge(r, n, (ring[n], ring[n + 1]))
        for r, ring in enumerate(rings)
        for n in range(len(ring) - 1)
    ]


def _check_crossings(rings: Sequence[Ring]) -> None:
    """No two edges meet, except neighbours on one ring at their shared corner."""
    edges = _edges(rings)
    for first, second in _candidate_pairs(edges):
        if _adjacent(first, second, rings):
            if _folds_back(first, second):
                raise _crossing(first, second)
        elif _segments_meet(first.segment, second.segment):
            raise _crossing(first, second)


def _crossing(first: _Edge, second: _Edge) -> PolygonError:
    a, b = sorted((first, second), key=lambda edge: (edge.ring, edge.index))
    if a.ring == b.ring:
        return PolygonError(
            f"/coordinates/{a.ring}/{b.index}",
            f"the ring intersects itself: the edge from position {b.index} meets the edge "
            f"from position {a.index}",
        )
    return PolygonError(
        f"/coordinates/{b.ring}/{b.index}",
        f"ring {b.ring} meets ring {a.ring}: the edge from position {b.index} touches or "
        f"crosses ring {a.ring}'s edge from position {a.index}",
    )


def _adjacent(first: _Edge, second: _Edge, rings: Sequence[Ring]) -> bool:
    if first.ring != second.ring:
        return False
    last = len(rings[first.ring]) - 2  # the ring's last edge closes it onto the first
    low, high = sorted((first.index, second.index))
    return high - low == 1 or (low == 0 and high == last)


def _folds_back(first: _Edge, second: _Edge) -> bool:
    """Neighbours share a corner; they overlap only if collinear and turning back."""
    (a, b), (c, d) = first.segment, second.segment
    shared = b if b in (c, d) else a
    far_first = a if shared == b else b
    far_second = d if shared == c else c
    if _orientation(far_first, shared, far_second) != 0:
        return False
    return _on_segment(far_second, (shared, far_first)) or _on_segment(
        far_first, (shared, far_second)
    )


def _candidate_pairs(edges: list[_Edge]) -> Iterator[tuple[_Edge, _Edge]]:
    """Pairs of edges whose bounding boxes share a grid cell (each pair once).

    Comparing every edge with every other is quadratic (10,000 positions: 50 million
    checks); a grid of about one cell per edge keeps it near linear for real turfs.
    """
    xs = [x for edge in edges for x, _ in edge.segment]
    ys = [y for edge in edges for _, y in edge.segment]
    width = max(max(xs) - min(xs), 1e-12)
    height = max(max(ys) - min(ys), 1e-12)
    side = max(1, math.isqrt(len(edges)))
    origin = (min(xs), min(ys))
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for n, edge in enumerate(edges):
        (x1, y1), (x2, y2) = edge.segment
        col = [_cell(v, origin[0], width, side) for v in (min(x1, x2), max(x1, x2))]
        row = [_cell(v, origin[1], height, side) for v in (min(y1, y2), max(y1, y2))]
        for i in range(col[0], col[1] + 1):
            for j in range(row[0], row[1] + 1):
                cells[(i, j)].append(n)
    seen: set[tuple[int, int]] = set()
    for members in cells.values():
        for p, first in enumerate(members):
            for second in members[p + 1 :]:
                if (first, second) not in seen:
                    seen.add((first, second))
                    yield edges[first], edges[second]


def _cell(value: float, origin: float, extent: float, side: int) -> int:
    return min(side - 1, int((value - origin) / extent * side))


def _orientation(a: Position, b: Position, c: Position) -> int:
    cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (cross > 0) - (cross < 0)


def _on_segment(point: Position, segment: Segment) -> bool:
    """``point`` (known collinear with ``segment``) lies within it."""
    (a, b) = segment
    return min(a[0], b[0]) <= point[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= point[1] <= max(
        a[1], b[1]
    )


def _segments_meet(first: Segment, second: Segment) -> bool:
    """Whether two segments share any point (crossing, touching or overlapping)."""
    a, b = first
    c, d = second
    o1, o2 = _orientation(a, b, c), _orientation(a, b, d)
    o3, o4 = _orientation(c, d, a), _orientation(c, d, b)
    if o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4):
        return True
    return (
        (o1 == 0 and _on_segment(c, first))
        or (o2 == 0 and _on_segment(d, first))
        or (o3 == 0 and _on_segment(a, second))
        or (o4 == 0 and _on_segment(b, second))
    )


# --- holes ---------------------------------------------------------------------------


def _check_holes_inside(rings: Sequence[Ring]) -> None:
    """Rings do not meet (checked before), so a hole is wholly inside or wholly outside
    the outer ring, and one position tells which; the same for a hole in a hole."""
    outer, holes = rings[0], rings[1:]
    for n, hole in enumerate(holes, start=1):
        if not contains(outer, hole[0]):
            raise PolygonError(f"/coordinates/{n}", "is a hole outside the outer boundary")
        for m, other in enumerate(holes[: n - 1], start=1):
            if contains(other, hole[0]) or contains(hole, other[0]):
                raise PolygonError(f"/coordinates/{n}", f"is a hole inside hole {m}")


def contains(ring: Ring, point: Position) -> bool:
    """Whether ``point`` is inside ``ring`` (even-odd ray casting; edges not special)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


# --- for PostgreSQL ------------------------------------------------------------------


def polygon_text(ring: Ring) -> str:
    """The ring as PostgreSQL ``polygon`` input: ``((lng,lat),...)``, closing point left out
    (a polygon is implicitly closed)."""
    return "(" + ",".join(f"({lng!r},{lat!r})" for lng, lat in ring[:-1]) + ")"


def path_text(ring: Ring) -> str:
    """The ring as a closed PostgreSQL ``path`` (its edges, for distance to the edge)."""
    return polygon_text(ring)  # "(...)" is a closed path; "[...]" would be an open one
