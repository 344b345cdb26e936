"""Walk order: nearest neighbour from the first door (or the door nearest a start)."""

from __future__ import annotations

from polis_api.workflow.walk_order import walk_order


def test_a_street_is_walked_end_to_end_whatever_order_it_came_in() -> None:
    doors = [("c", (0.3, 0.0)), ("a", (0.1, 0.0)), ("d", (0.4, 0.0)), ("b", (0.2, 0.0))]
    assert walk_order(doors, start=(0.0, 0.0)) == ["a", "b", "c", "d"]


def test_without_a_start_the_walk_begins_at_the_first_door() -> None:
    doors = [("c", (0.3, 0.0)), ("a", (0.1, 0.0)), ("d", (0.35, 0.0)), ("b", (0.2, 0.0))]
    assert walk_order(doors) == ["c", "d", "b", "a"]


def test_a_door_east_counts_less_than_one_north_at_high_latitude() -> None:
    # At 60° N a degree of longitude is half a degree of latitude on the ground.
    doors = [("start", (0.0, 60.0)), ("east", (0.015, 60.0)), ("north", (0.0, 60.01))]
    assert walk_order(doors) == ["start", "east", "north"]


def test_doors_without_coordinates_come_last_in_the_order_given() -> None:
    doors = [("x", None), ("a", (0.1, 0.0)), ("y", None), ("b", (0.0, 0.0))]
    assert walk_order(doors) == ["a", "b", "x", "y"]


def test_no_doors() -> None:
    assert walk_order([]) == []
