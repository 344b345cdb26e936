"""The order a canvasser walks a list's doors: nearest neighbour first.

Greedy nearest neighbour is not the shortest walk, but it never sends a canvasser
across town and back, which is what matters on foot; it costs O(n²) for n doors
(a walk list is a few hundred doors at most).

Distances are planar in degrees with longitude shrunk by cos(latitude), so a step
east counts as much as the same number of metres north.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

Key = TypeVar("Key", bound=Hashable)
LngLat = tuple[float, float]


def walk_order(
    doors: Sequence[tuple[Key, LngLat | None]], start: LngLat | None = None
) -> list[Key]:
    """The doors' keys in walk order.

    With ``start`` the walk begins at the door nearest it; without, at the first door
    given. Doors without coordinates cannot be placed: they follow, in the order given.
    """
    placed = [(key, point) for key, point in doors if point is not None]
    unplaced = [key for key, point in doors if point is None]
    if not placed:
        return unplaced
    scale = math.cos(math.radians(sum(point[1] for _, point in placed) / len(placed)))
    remaining = list(placed)
    here = start if start is not None else remaining[0][1]
    walk: list[Key] = []
    while remaining:
        nearest = min(range(len(remaining)), key=lambda n: _distance(here, remaining[n][1], scale))
        key, here = remaining.pop(nearest)
        walk.append(key)
    return walk + unplaced


def _distance(a: LngLat, b: LngLat, scale: float) -> float:
    return math.hypot((a[0] - b[0]) * scale, a[1] - b[1])
