"""Turf boundaries: what a valid GeoJSON Polygon is, and what each refusal names."""

from __future__ import annotations

import math
from typing import Any

import pytest

from polis_api.workflow.polygons import (
    PolygonError,
    check_polygon,
    contains,
    path_text,
    polygon_text,
)

SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
HOLE = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def refusal(boundary: Any, max_positions: int = 10_000) -> PolygonError:
    with pytest.raises(PolygonError) as caught:
        check_polygon(boundary, max_positions)
    return caught.value


def test_a_square_with_a_hole_is_accepted() -> None:
    checked = check_polygon(polygon(SQUARE, HOLE), 10_000)
    assert checked.outer[0] == (0.0, 0.0)
    assert len(checked.holes) == 1


def test_either_winding_is_accepted() -> None:
    check_polygon(polygon(list(reversed(SQUARE))), 10_000)


def test_an_altitude_is_allowed_and_ignored() -> None:
    checked = check_polygon(polygon([[*p, 300] for p in SQUARE]), 10_000)
    assert checked.outer[1] == (10.0, 0.0)


def test_a_ring_must_be_closed() -> None:
    error = refusal(polygon([*SQUARE[:-1], [0, 1]]))
    assert error.path == "/coordinates/0/4"
    assert "first position" in error.message


def test_a_ring_needs_four_positions() -> None:
    error = refusal(polygon([[0, 0], [1, 1], [0, 0]]))
    assert error.path == "/coordinates/0"
    assert "at least 4" in error.message


def test_a_self_intersecting_ring_is_refused_naming_the_edges() -> None:
    bow_tie = [[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]
    error = refusal(polygon(bow_tie))
    assert error.path == "/coordinates/0/2"
    assert "intersects itself" in error.message


def test_a_ring_touching_itself_at_a_corner_is_refused() -> None:
    figure_eight = [[0, 0], [2, 0], [1, 1], [2, 2], [0, 2], [1, 1], [0, 0]]
    assert "intersects itself" in refusal(polygon(figure_eight)).message


def test_a_spike_folding_back_on_its_edge_is_refused() -> None:
    spike = [[0, 0], [10, 0], [5, 0], [5, 5], [0, 0]]
    assert "intersects itself" in refusal(polygon(spike)).message


def test_a_repeated_position_is_refused() -> None:
    error = refusal(polygon([[0, 0], [10, 0], [10, 0], [10, 10], [0, 0]]))
    assert error.path == "/coordinates/0/2"


def test_a_ring_on_one_line_has_no_area() -> None:
    assert "no area" in refusal(polygon([[0, 0], [1, 1], [2, 2], [0, 0]])).message


def test_a_hole_outside_the_outer_ring_is_refused() -> None:
    outside = [[20, 20], [22, 20], [22, 22], [20, 22], [20, 20]]
    error = refusal(polygon(SQUARE, outside))
    assert error.path == "/coordinates/1"
    assert "outside the outer boundary" in error.message


def test_a_hole_crossing_the_outer_ring_is_refused() -> None:
    crossing = [[8, 4], [12, 4], [12, 6], [8, 6], [8, 4]]
    error = refusal(polygon(SQUARE, crossing))
    assert error.path.startswith("/coordinates/1/")
    assert "meets ring 0" in error.message


def test_a_hole_inside_another_hole_is_refused() -> None:
    inner = [[4.5, 4.5], [5.5, 4.5], [5.5, 5.5], [4.5, 5.5], [4.5, 4.5]]
    assert "inside hole 1" in refusal(polygon(SQUARE, HOLE, inner)).message


@pytest.mark.parametrize(
    ("position", "path", "words"),
    [
        ([181, 0], "/coordinates/0/1/0", "longitude 181"),
        ([-180.5, 0], "/coordinates/0/1/0", "longitude"),
        ([0, 90.1], "/coordinates/0/1/1", "latitude 90.1"),
        ([0, -91], "/coordinates/0/1/1", "latitude"),
        ([True, 0], "/coordinates/0/1/0", "number"),
        (["1", 0], "/coordinates/0/1/0", "number"),
        ([1], "/coordinates/0/1", "position"),
        ([1, 2, 3, 4], "/coordinates/0/1", "position"),
    ],
)
def test_positions_out_of_range_or_malformed(position: list[Any], path: str, words: str) -> None:
    ring = [[0, 0], position, [10, 10], [0, 10], [0, 0]]
    error = refusal(polygon(ring))
    assert error.path == path
    assert words in error.message


def test_the_extreme_coordinates_are_in_range() -> None:
    check_polygon(polygon([[170, -90], [180, -90], [180, 90], [170, -90]]), 10_000)


def test_a_turf_spanning_more_than_180_degrees_is_refused_as_crossing_the_antimeridian() -> None:
    across = [[170, 0], [-170, 0], [-170, 10], [170, 10], [170, 0]]
    error = refusal(polygon(across))
    assert error.path == "/coordinates/0"
    assert "antimeridian" in error.message


@pytest.mark.parametrize(
    "boundary",
    [None, [], {"type": "Point", "coordinates": [0, 0]}, {"type": "Polygon"}],
)
def test_not_a_polygon(boundary: Any) -> None:
    refusal(boundary)


def test_unknown_members_are_refused() -> None:
    error = refusal({**polygon(SQUARE), "properties": {}})
    assert error.path == "/properties"


def circle(positions: int) -> list[list[float]]:
    """A closed ring of exactly ``positions`` positions."""
    corners = positions - 1
    ring = [
        [
            round(math.cos(2 * math.pi * n / corners), 9),
            round(math.sin(2 * math.pi * n / corners), 9),
        ]
        for n in range(corners)
    ]
    return [*ring, ring[0]]


def test_the_position_bound_counts_every_ring() -> None:
    check_polygon(polygon(circle(96), [[0, 0], [0.1, 0], [0.1, 0.1], [0, 0]]), 100)
    error = refusal(polygon(circle(97), [[0, 0], [0.1, 0], [0.1, 0.1], [0, 0]]), 100)
    assert "holds 101 positions; at most 100" in error.message


def test_a_large_ring_is_checked() -> None:
    assert len(check_polygon(polygon(circle(10_000)), 10_000).outer) == 10_000


def test_point_in_ring() -> None:
    square = tuple((float(x), float(y)) for x, y in SQUARE)
    assert contains(square, (5, 5))
    assert not contains(square, (15, 5))


def test_postgres_text_leaves_out_the_closing_position() -> None:
    ring = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0))
    assert polygon_text(ring) == "((0.0,0.0),(1.0,0.0),(1.0,1.0))"
    assert path_text(ring) == polygon_text(ring)
