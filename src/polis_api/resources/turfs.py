"""Turfs — /v1/turfs: an area of a campaign drawn as a polygon (docs/turfs.md).

The boundary is checked by ``workflow.polygons`` (a pure module) on every write;
its doors are listed by ``resources.turf_routes``.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from polis_api.config import get_settings
from polis_api.documents.envelope import DataModel
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.documents.validation import validation_failed
from polis_api.errors import FieldError
from polis_api.resources import references as refs
from polis_api.resources.common import NonEmptyText
from polis_api.workflow.polygons import PolygonError, check_polygon

BOUNDARY_PATH = "/data/boundary"


class TurfData(DataModel):
    campaignId: uuid.UUID
    name: NonEmptyText
    boundary: dict[str, Any] = Field(
        description="A GeoJSON Polygon: [lng, lat] positions in closed rings, the first the "
        "outer boundary, any further ring a hole; not self-intersecting, at most "
        "POLIS_MAX_TURF_POSITIONS positions, spanning at most 180° of longitude."
    )


def checked_boundary(boundary: Any, max_positions: int) -> None:
    """400 naming the problem and where it is (``/data/boundary/coordinates/0/3``)."""
    try:
        check_polygon(boundary, max_positions)
    except PolygonError as exc:
        error = FieldError(path=BOUNDARY_PATH + exc.path, message=exc.message)
        raise validation_failed([error], "The turf's boundary") from exc


class TurfHooks(DocumentHooks):
    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        await refs.require_campaign(ctx.conn, ctx.principal, data["campaignId"], "/data/campaignId")
        checked_boundary(data["boundary"], get_settings().max_turf_positions)
        return data


TURFS = Resource(
    name="turfs",
    title="turf",
    prefix="/v1/turfs",
    table="turfs",
    data_model=TurfData,
    hooks=TurfHooks(),
    create_example={
        "data": {
            "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
            "name": "Oakhurst, north of College Ave",
            "boundary": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [-84.30, 33.76],
                        [-84.28, 33.76],
                        [-84.28, 33.78],
                        [-84.30, 33.78],
                        [-84.30, 33.76],
                    ]
                ],
            },
        }
    },
    patch_example=[{"op": "replace", "path": "/name", "value": "Oakhurst north"}],
)
